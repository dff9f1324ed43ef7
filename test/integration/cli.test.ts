import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startConcord, type TestConcord } from '../support/concord.ts';
import { startDnsServer, type TestDns } from '../support/dns-server.ts';
import { ADMIN_TOKEN, clientDoc, participantDoc, startDiscoveryServer, UPSTREAM_SECRET, type DiscoveryServer } from './admin-fixtures.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The CLI runs on the system's Node (Debian's, v20 here), not the Node 24 that runs Concord and
 * these tests: the README promises it works on any Node from 20.19 on (package.json `engines`).
 */
const SYSTEM_NODE = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
/** Set in before(): bin/concord.js of an installed copy of the package (see installPackage). */
let BIN = '';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real binary, in a child process (asynchronously: the instance it talks to runs in this one). */
function concord(args: string[], env: Record<string, string | undefined> = {}, bin = BIN): Promise<Run> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
    execFile(SYSTEM_NODE, [bin, ...args], { env: childEnv, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Compiles src/ as `npm run build` does (tsconfig.build.json), into `outDir`. */
function build(outDir: string): Promise<void> {
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', outDir], { cwd: REPO, timeout: 300_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`tsc failed: ${stdout}${stderr}`)) : resolve(),
    );
  });
}

/**
 * The package as npm installs it (bin, dist, views, package.json; no TypeScript run), inside a
 * node_modules folder whose parent's node_modules holds the dependencies; dist/ as `npm run build`
 * makes it from the sources of this checkout, not whatever the checkout's dist/ holds.
 */
async function installPackage(): Promise<{ root: string; bin: string }> {
  const root = await mkdtemp(path.join(REPO, 'node_modules', '.concord-install-'));
  const pkg = path.join(root, 'node_modules', 'concord');
  await mkdir(pkg, { recursive: true });
  await build(path.join(pkg, 'dist'));
  for (const entry of ['bin', 'views', 'package.json']) await cp(path.join(REPO, entry), path.join(pkg, entry), { recursive: true });
  return { root, bin: path.join(pkg, 'bin', 'concord.js') };
}

describe('concord CLI', () => {
  let installed: { root: string; bin: string };
  let instance: TestConcord;
  let upstream: DiscoveryServer;
  let dns: TestDns;
  let dir: string;
  let env: Record<string, string>;
  const file = async (name: string, content: unknown) => {
    const target = path.join(dir, name);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, name.endsWith('.json') ? JSON.stringify(content) : stringify(content));
    return target;
  };

  // Compiling dist/ takes a while on a busy machine.
  before(async () => {
    installed = await installPackage();
    BIN = installed.bin;
    upstream = await startDiscoveryServer();
    dns = await startDnsServer();
    // The timer off: the domain tests check on request.
    instance = await startConcord({ settings: { domainProof: { resolvers: [dns.address], checkInterval: 0 } } });
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-cli-'));
    env = { CONCORD_ADMIN_URL: instance.adminUrl, CONCORD_ADMIN_TOKEN: ADMIN_TOKEN };
  }, { timeout: 600_000 });
  after(async () => {
    await instance.close();
    await upstream.close();
    await dns.close();
    await rm(dir, { recursive: true, force: true });
    await rm(installed.root, { recursive: true, force: true });
  });

  describe('validate (offline)', () => {
    it('accepts a valid configuration directory', async () => {
      const config = path.join(dir, 'good');
      await file('good/participants/acme.yaml', participantDoc('acme', 'https://login.acme.example', 'acme.example'));
      await file('good/clients/portal.yaml', clientDoc('portal', { participants: ['acme'] }));
      const run = await concord(['validate', config]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /valid: 1 participant\(s\), 1 client\(s\)/);
    });

    it('lists every problem, with participant, rule index and field, and exits non-zero', async () => {
      const config = path.join(dir, 'bad');
      await file('bad/participants/acme.yaml', participantDoc('acme', 'https://login.acme.example', 'acme.example', {
        mapping: { rules: [{ claim: 'ok', from: 'sub' }, { claim: 'team', cel: 'claims.groups.exists(g, ' }, { claim: 'user', from: 'upn', regex: { pattern: '(a)\\1' } }] },
      }));
      // A rule the schema refuses must not hide another rule's expression error in the same file.
      await file('bad/participants/globex.yaml', participantDoc('globex', 'https://login.globex.example', 'globex.example', { mapping: [{ claim: 'x' }, { claim: 'y', cel: '1 +' }] }));
      await file('bad/participants/initech.yaml', participantDoc('initech', 'https://login.initech.example', 'acme.example'));
      await file('bad/clients/portal.yaml', clientDoc('portal', { participants: ['nobody'] }));
      const run = await concord(['validate', config], { CONCORD_ADMIN_TOKEN: undefined });
      assert.equal(run.code, 1);
      const lines = run.stderr.trim().split('\n');
      assert.ok(lines.some((l) => /acme\.yaml.*participant acme, mapping\.rules\[1\]\.cel/.test(l)), run.stderr);
      assert.ok(lines.some((l) => /acme\.yaml.*participant acme, mapping\.rules\[2\]\.regex/.test(l)), run.stderr);
      assert.ok(lines.some((l) => /initech\.yaml.*domains.*acme\.example/.test(l)), run.stderr);
      assert.ok(lines.some((l) => /globex\.yaml \(participant globex, mapping\.rules\[0\]\): a rule needs one of/.test(l)), run.stderr);
      assert.ok(lines.some((l) => /globex\.yaml \(participant globex, mapping\.rules\[1\]\.cel\)/.test(l)), run.stderr);
      assert.ok(lines.some((l) => /portal\.yaml.*participants.*nobody/.test(l)), run.stderr);
      assert.match(lines.at(-1)!, /^concord: .*6 problem\(s\) found$/);

      const json = await concord(['validate', config, '--json']);
      assert.equal(json.code, 1);
      const report = JSON.parse(json.stdout);
      assert.equal(report.valid, false);
      assert.equal(report.issues.length, 6);
    });

    it('lists every problem of every kind in one run: syntax, schema, environment, across files, mapping', async () => {
      const config = path.join(dir, 'everything');
      const raw = async (name: string, text: string) => {
        await mkdir(path.dirname(path.join(config, name)), { recursive: true });
        await writeFile(path.join(config, name), text);
      };
      await raw('concord.yaml', stringify({ logLevel: 'loud', pages: { branding: { colors: { primary: '#aaccff' } } } }));
      // The pages' words: a translation with another placeholder than the English one.
      await raw('messages/fr.yaml', 'login.heading: "Connexion à {service}"\n');
      // Not YAML: an unclosed flow sequence, and a key twice.
      await raw('participants/broken.yaml', 'id: broken\ndomains: [broken.example\nid: again\n');
      await file('everything/participants/acme.yaml', participantDoc('acme', 'https://login.acme.example', 'acme.example', { mapping: { rules: [{ claim: 'team', cel: 'claims.groups.exists(g, ' }] } }));
      // The same id in another file.
      await file('everything/participants/acme-again.yaml', participantDoc('acme', 'https://login.acme-two.example', 'acme-two.example'));
      // A schema error, and a domain another participant owns: both told, not one after the other.
      await file('everything/participants/initech.yaml', participantDoc('initech', 'https://login.initech.example', 'acme.example', { displayName: '' }));
      // A schema error only: a client may still name globex without a "no participant".
      await file('everything/participants/globex.yaml', participantDoc('globex', 'https://login.globex.example', 'globex.example', { colour: 'blue' }));
      await file('everything/clients/portal.yaml', clientDoc('portal', { client_secret: 'short', participants: ['globex', 'nobody'] }));
      await file('everything/clients/portal-again.yaml', clientDoc('portal'));
      await raw('clients/shop.json', '{"client_id": "shop",}');
      const run = await concord(['validate', config], { CONCORD_ADMIN_PORT: '99999' });
      assert.equal(run.code, 1, run.stderr);
      const lines = run.stderr.trim().split('\n');
      const summary = lines.pop()!;
      const expected: Array<[file: string, field: RegExp, reason: RegExp]> = [
        ['concord.yaml', /^logLevel$/, /Invalid option/i],
        ['environment CONCORD_ADMIN_PORT', /^admin\.port$/, /65535/],
        ['broken.yaml', /^$/, /not valid YAML: line 3, column \d+: Flow sequence/],
        ['broken.yaml', /^$/, /not valid YAML: line 3, column 1: Map keys must be unique$/],
        ['acme.yaml', /^participant acme, mapping\.rules\[0\]\.cel$/, /./],
        ['acme.yaml', /^participant acme, id$/, /participant "acme" is defined twice \(also in .*acme-again\.yaml\)/],
        ['initech.yaml', /^participant initech, displayName$/, /./],
        ['initech.yaml', /^participant initech, domains\.0$/, /domain acme\.example is already owned by participant "acme"/],
        ['globex.yaml', /^participant globex$/, /colour/],
        ['portal.yaml', /^client_secret$/, /16 characters/],
        ['portal.yaml', /^participants\.1$/, /no participant "nobody"/],
        ['portal.yaml', /^client_id$/, /client "portal" is defined twice \(also in .*portal-again\.yaml\)/],
        ['shop.json', /^$/, /not valid JSON: line 1, column 22: /],
        ['concord.yaml', /^pages\.branding\.colors\.primary$/, /below WCAG AA/],
        ['fr.yaml', /^login\.heading$/, /placeholders differ from English: missing \{client\}, unknown \{service\}/],
      ];
      const parsed = lines.map((line) => /^(.*?)(?: \((.*)\))?: (.*)$/.exec(line) ?? [line, line, '', '']);
      for (const [fileName, field, reason] of expected) {
        assert.ok(
          parsed.some(([, source = '', f = '', message = '']) => (source === fileName || source.endsWith(`/${fileName}`)) && field.test(f) && reason.test(message)),
          `${fileName} (${field}): ${reason} in\n${run.stderr}`,
        );
      }
      assert.equal(lines.length, expected.length, run.stderr);
      assert.ok(lines.every((line) => !/:\s*$/.test(line)), 'no message ends in a colon');
      assert.ok(!lines.some((line) => /globex"/.test(line) && /no participant/.test(line)), 'a participant whose file has another error still exists for the clients');
      assert.match(summary, new RegExp(`${expected.length} problem\\(s\\) found$`));
    });

    it('refuses a directory that does not exist', async () => {
      const run = await concord(['validate', path.join(dir, 'nope')]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /is not a directory/);
    });

    it('runs from an installed copy on the system Node: --help is its own, validate works', async () => {
      const version = await new Promise<string>((resolve) => execFile(SYSTEM_NODE, ['--version'], (_e, out) => resolve(out.trim())));
      const help = await concord(['--help']);
      assert.equal(help.code, 0, `${version}: ${help.stderr}`);
      assert.match(help.stdout, /^concord: manage a running Concord/);
      assert.match(help.stdout, /validate\s+\[DIR\]/);
      const config = path.join(dir, 'installed');
      await file('installed/participants/acme.yaml', participantDoc('acme', 'https://login.acme.example', 'acme.example'));
      const run = await concord(['validate', config]);
      assert.equal(run.code, 0, `${version}: ${run.stderr}`);
      assert.match(run.stdout, /valid: 1 participant\(s\), 0 client\(s\)/);
    });

    it('says in one line what to do when run from a checkout that was never built', async () => {
      const checkout = await mkdtemp(path.join(os.tmpdir(), 'concord-unbuilt-'));
      try {
        await cp(path.join(REPO, 'bin'), path.join(checkout, 'bin'), { recursive: true });
        await cp(path.join(REPO, 'package.json'), path.join(checkout, 'package.json'));
        const run = await concord(['--help'], {}, path.join(checkout, 'bin', 'concord.js'));
        assert.equal(run.code, 1);
        assert.equal(run.stdout, '');
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
        assert.match(run.stderr, /^concord: dist\/ is missing .*npm run build/);
      } finally {
        await rm(checkout, { recursive: true, force: true });
      }
    });

    it('declares the Node it needs in package.json `engines`, as the bin enforces it', async () => {
      const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { engines: { node: string }; files: string[]; scripts: Record<string, string> };
      const bin = await readFile(path.join(REPO, 'bin', 'concord.js'), 'utf8');
      const minimum = /const MINIMUM = \[(\d+), (\d+)\]/.exec(bin);
      assert.ok(minimum, 'the bin states its minimum');
      assert.equal(pkg.engines.node, `>=${minimum[1]}.${minimum[2]}`);
      const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
      assert.ok(readme.includes(`Node ≥ ${minimum[1]}.${minimum[2]}`), 'the README states the same minimum');
      assert.ok(pkg.files.includes('dist') && pkg.files.includes('bin'), 'the package ships bin/ and dist/');
      assert.match(pkg.scripts.prepare ?? '', /tsconfig\.build\.json/, 'prepare compiles dist/');
    });
  });

  describe('against a running instance', () => {
    it('adds, lists and shows participants, without their secret', async () => {
      const doc = await file('acme.yaml', participantDoc('acme', upstream.issuer, 'acme.example'));
      const add = await concord(['participants', 'add', '-f', doc], env);
      assert.equal(add.code, 0, add.stderr);
      assert.match(add.stdout, /participant acme added/);

      const list = await concord(['participants', 'list'], env);
      assert.equal(list.code, 0);
      const [header, row] = list.stdout.trim().split('\n');
      assert.match(header!, /^ID\s+NAME\s+DOMAINS\s+ENABLED\s+STATUS\s+UPSTREAM$/);
      // STATUS: what the check of its upstream found (it runs in the background as the participant is added).
      assert.match(row!, /^acme\s+acme Corp\s+acme\.example\s+yes\s+(ok|unknown)\s+http:\/\/127\.0\.0\.1/);

      const json = await concord(['participants', 'list', '--json'], env);
      assert.deepEqual(JSON.parse(json.stdout).participants.map((p: { id: string }) => p.id), ['acme']);
      const show = await concord(['participants', 'show', 'acme'], env);
      assert.match(show.stdout, /clientSecretSet: true/);
      for (const out of [add, list, json, show]) assert.ok(!out.stdout.includes(UPSTREAM_SECRET));
    });

    it('fails with one line naming the reason: bad upstream, taken domain, unreachable API, wrong or missing token', async () => {
      upstream.issuerMismatch = true;
      const spoof = await concord(['participants', 'add', '-f', await file('spoof.json', participantDoc('spoof', upstream.issuer, 'spoof.example'))], env);
      upstream.issuerMismatch = false;
      assert.equal(spoof.code, 1);
      assert.equal(spoof.stderr.trim().split('\n').length, 1);
      assert.match(spoof.stderr, /^concord: upstream_invalid: .*issuer/);

      const taken = await concord(['participants', 'add', '-f', await file('taken.yaml', participantDoc('taken', upstream.issuer, 'acme.example'))], env);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /^concord: domain_conflict: domain acme\.example/);

      const down = await concord(['participants', 'list', '--url', 'http://127.0.0.1:9'], env);
      assert.equal(down.code, 1);
      assert.match(down.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);

      const wrong = await concord(['participants', 'list', '--token', 'not-the-token-0123456789'], { CONCORD_ADMIN_URL: instance.adminUrl });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^concord: unauthorized: /);

      const none = await concord(['participants', 'list'], { CONCORD_ADMIN_URL: instance.adminUrl });
      assert.equal(none.code, 2);
      assert.match(none.stderr, /CONCORD_ADMIN_TOKEN/);

      const usage = await concord(['participants', 'frobnicate'], env);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /expected one of list/);
    });

    it('updates, disables and enables a participant', async () => {
      const doc = await file('acme-v2.yaml', { ...participantDoc('acme', upstream.issuer, 'acme.example'), displayName: 'Acme Two' });
      const update = await concord(['participants', 'update', '-f', doc], env);
      assert.equal(update.code, 0, update.stderr);
      assert.equal(instance.concord.registry.participant('acme')?.config.displayName, 'Acme Two');
      assert.equal((await concord(['participants', 'disable', 'acme'], env)).code, 0);
      assert.equal(instance.concord.registry.participant('acme')?.config.enabled, false);
      const enable = await concord(['participants', 'enable', 'acme', '--json'], env);
      assert.equal(JSON.parse(enable.stdout).enabled, true);
    });

    it('lists, shows and checks domains: pending with what to publish, 4 until proven, 0 once the TXT record is there', async () => {
      const list = await concord(['domains', 'list'], env);
      assert.equal(list.code, 0, list.stderr);
      const [header, row] = list.stdout.trim().split('\n');
      assert.match(header!, /^DOMAIN\s+PARTICIPANT\s+STATE\s+PROOF MISSING SINCE\s+LAST CHECK\s+TXT VALUE$/);
      assert.match(row!, /^acme\.example\s+acme\s+pending\s+-\s+-\s+[\w-]{43}$/);
      const challenge = row!.split(/\s+/).at(-1)!;

      const show = await concord(['domains', 'show', 'acme.example'], env);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^acme\.example \(participant acme\): pending$/m);
      assert.ok(show.stdout.includes(`TXT _concord-challenge.acme.example "${challenge}"`), show.stdout);
      assert.ok(show.stdout.includes(`https://acme.example/.well-known/concord-challenge/${challenge}`), show.stdout);

      const unproven = await concord(['domains', 'check', 'acme.example'], env);
      assert.equal(unproven.code, 4, unproven.stderr);
      assert.match(unproven.stdout, /dns absent \(no TXT record at _concord-challenge\.acme\.example/);
      assert.match(unproven.stderr.trim(), /^concord: acme\.example is not proven \(pending\)$/);

      dns.setTxt('_concord-challenge.acme.example', [challenge]);
      const proven = await concord(['domains', 'check', 'acme.example', '-p', 'acme', '--json'], env);
      assert.equal(proven.code, 0, proven.stderr);
      assert.equal(JSON.parse(proven.stdout).state, 'verified');
      assert.equal(JSON.parse(proven.stdout).verifiedBy, 'dns');
      assert.equal(instance.concord.registry.participantForDomain('acme.example')?.config.id, 'acme');
      assert.match((await concord(['domains', 'list', '--state', 'pending'], env)).stdout.trim(), /^DOMAIN[^\n]*$/, 'no pending domain left');

      const nobody = await concord(['domains', 'show', 'nobody.example'], env);
      assert.equal(nobody.code, 1);
      assert.match(nobody.stderr, /no participant claims the domain nobody\.example/);
    });

    it('dry-runs a mapping: 0 when released, 3 when a rule rejects', async () => {
      const good = await file('claims-good.json', { sub: 'u1', email: 'u1@acme.example', email_verified: true, dept: 'R&D', active: true });
      const released = await concord(['mapping', 'dry-run', '--participant', 'acme', '--claims', good], env);
      assert.equal(released.code, 0, released.stderr);
      assert.match(released.stdout, /^released:/);
      assert.match(released.stdout, /department: R&D/);

      const bad = await file('claims-bad.json', { sub: 'u2', active: false });
      const rejected = await concord(['mapping', 'dry-run', '--participant', 'acme', '--claims', bad], env);
      assert.equal(rejected.code, 3);
      assert.match(rejected.stdout, /rejected by rules\[1\] \(active-only\): Your account is not active\./);

      const rules = await file('rules.yaml', [{ claim: 'team', value: 'everyone' }]);
      const unsaved = await concord(['mapping', 'dry-run', '-p', 'acme', '--claims', bad, '--mapping', rules, '--json'], env);
      assert.equal(unsaved.code, 0);
      assert.equal(JSON.parse(unsaved.stdout).claims.team, 'everyone');

      const missing = await concord(['mapping', 'dry-run', '--participant', 'acme'], env);
      assert.equal(missing.code, 2);
    });

    it('adds, lists and removes clients', async () => {
      const add = await concord(['clients', 'add', '-f', await file('portal.yaml', clientDoc('portal'))], env);
      assert.equal(add.code, 0, add.stderr);
      const list = await concord(['clients', 'list'], env);
      assert.match(list.stdout, /^portal\s+Client portal\s+client_secret_basic\s+authorization_code,refresh_token\s+all$/m);
      assert.equal((await concord(['clients', 'remove', 'portal'], env)).code, 0);
      assert.equal(instance.concord.registry.client('portal'), undefined);
      const again = await concord(['clients', 'remove', 'portal'], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^concord: not_found: no client "portal"/);
    });

    it('lists and rotates keys', async () => {
      const rotate = await concord(['keys', 'rotate'], env);
      assert.equal(rotate.code, 0, rotate.stderr);
      assert.match(rotate.stdout, /^new RS256 key \S+ published; it signs from .+\nnew ES256 key \S+ published; it signs from /);
      const list = await concord(['keys', 'list'], env);
      assert.match(list.stdout, /^ALG\s+KID\s+STATE/);
      for (const alg of ['RS256', 'ES256']) {
        assert.match(list.stdout, new RegExp(`^${alg}\\s+\\S+\\s+current\\s`, 'm'));
        assert.match(list.stdout, new RegExp(`^${alg}\\s+\\S+\\s+next\\s`, 'm'));
      }
      assert.match(list.stdout, /^ES256\s.*access tokens$/m);
    });

    it('removes a participant, reporting the revocations, and shows the audit log', async () => {
      const remove = await concord(['participants', 'remove', 'acme'], env);
      assert.equal(remove.code, 0, remove.stderr);
      assert.match(remove.stdout, /participant acme removed; 0 grant\(s\) and 0 session\(s\) of 0 account\(s\) revoked/);

      const audit = await concord(['audit', '--limit', '3'], env);
      assert.equal(audit.code, 0, audit.stderr);
      const lines = audit.stdout.trim().split('\n');
      assert.match(lines[0]!, /^SEQ\s+AT\s+ACTOR\s+ACTION\s+OBJECT\s+CHANGED$/);
      assert.match(lines[1]!, /\sadmin\s+participant\.delete\s+participant\/acme\s/);
      assert.match(lines[2]!, /\sadmin\s+domain\.release\s+domain\/acme\.example\s/);
      assert.match(lines[3]!, /keys\.rotate/);
      assert.match(lines.at(-1)!, /^\(older: concord audit --before \d+\)$/);
      const json = JSON.parse((await concord(['audit', '--json'], env)).stdout);
      assert.ok(json.entries.length >= 8);
    });
  });
});
