import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, CLIENT_SECRET, clientDoc, participantDoc, startDiscoveryServer, type DiscoveryServer } from './admin-fixtures.ts';
import { freePort } from '../support/ports.ts';

/*
 * `npm start` (node src/main.ts) as a person runs it: what it says on start-up, on stdout and
 * stderr, with a configuration directory of the test's own. Each notice once, and nothing else
 * (no library's console warnings) when the set-up is sound.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Started {
  child: ChildProcess;
  /** Every line written so far, stdout and stderr. */
  lines: string[];
  /** Resolves with the first line matching `pattern` (rejects after 30 s). */
  waitFor(pattern: RegExp): Promise<string>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

function start(configDir: string, env: Record<string, string>): Started {
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CONCORD_CONFIG_DIR: configDir, CONCORD_HOST: '127.0.0.1', ...env };
  const child = spawn(process.execPath, ['src/main.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onLine = (line: string) => {
    lines.push(line);
    for (const w of waiters.filter((w) => w.pattern.test(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      parts.filter(Boolean).forEach(onLine);
    });
    stream.on('end', () => rest && onLine(rest));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  return {
    child,
    lines,
    exited,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const found = lines.find((l) => pattern.test(l));
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no line like ${pattern} in:\n${lines.join('\n')}`)), 30_000);
        waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        void exited.then(() => setTimeout(() => reject(new Error(`exited without a line like ${pattern}:\n${lines.join('\n')}`)), 200));
      }),
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const json = (line: string) => {
  try {
    return JSON.parse(line) as { level?: number; msg?: string; notice?: string };
  } catch {
    return undefined;
  }
};
const noticesOf = (lines: string[], code: string) => lines.filter((l) => json(l)?.notice === code);

describe('npm start: what start-up says', () => {
  let dir: string;
  let idp: DiscoveryServer;

  const configDir = async (name: string, participants: Array<Record<string, unknown>>, clients: Array<Record<string, unknown>> = []) => {
    const root = path.join(dir, name);
    await mkdir(path.join(root, 'participants'), { recursive: true });
    await mkdir(path.join(root, 'clients'), { recursive: true });
    // No drain on shutdown: the tests stop it at once.
    await writeFile(path.join(root, 'concord.yaml'), stringify({ logLevel: 'info', shutdown: { drainDelayMs: 0 } }));
    for (const p of participants) await writeFile(path.join(root, 'participants', `${String(p.id)}.yaml`), stringify(p));
    for (const c of clients) await writeFile(path.join(root, 'clients', `${String(c.client_id)}.yaml`), stringify(c));
    return root;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'concord-start-'));
    idp = await startDiscoveryServer();
  });
  after(async () => {
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a sound set-up starts without a single warning, also after form posts to /token and /request', async () => {
    const config = await configDir('sound', [participantDoc('acme', idp.issuer, 'acme.example')], [clientDoc('portal')]);
    const [port, adminPort] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${port}`;
    const concord = start(config, { CONCORD_PORT: String(port), CONCORD_ADMIN_PORT: String(adminPort), CONCORD_ISSUER: issuer, CONCORD_ADMIN_TOKEN: ADMIN_TOKEN });
    try {
      await concord.waitFor(/"msg":"concord started"/);
      await concord.waitFor(/upstream IdP checked: ready for logins/);
      const form = (params: Record<string, string>) => ({
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: 'portal', client_secret: CLIENT_SECRET, ...params }).toString(),
      });
      // oidc-provider reads these forms itself, after the edge check read them: the code is looked up (so the form arrived).
      const token = await fetch(`${issuer}/token`, form({ grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: 'http://127.0.0.1:9999/callback', code_verifier: 'v'.repeat(43) }));
      assert.equal(token.status, 400);
      assert.equal(((await token.json()) as { error: string }).error, 'invalid_grant');
      const par = await fetch(
        `${issuer}/request`,
        form({ response_type: 'code', scope: 'openid', redirect_uri: 'http://127.0.0.1:9999/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }),
      );
      assert.equal(par.status, 201, await par.clone().text());
      assert.match(((await par.json()) as { request_uri: string }).request_uri, /^urn:ietf:params:oauth:request_uri:/);
    } finally {
      assert.equal(await concord.stop(), 0);
    }
    const unexpected = concord.lines.filter((l) => {
      const entry = json(l);
      return entry === undefined || (entry.level ?? 0) >= 40;
    });
    assert.deepEqual(unexpected, [], 'no warnings, and no line that is not the log (oidc-provider prints plain text)');
  });

  it('warns once each: issuer not the listener, admin API off, IdPs on this machine not running', async () => {
    // Two partners whose IdPs are on this machine and down (as the shipped demo partners are without `npm run demo`).
    const down = [await freePort(), await freePort()];
    const config = await configDir('demo-like', [
      participantDoc('acme', `http://localhost:${down[0]}`, 'acme.example'),
      participantDoc('globex', `http://127.0.0.1:${down[1]}`, 'globex.example'),
      participantDoc('initech', idp.issuer, 'initech.example'),
    ]);
    const [port, adminPort] = [await freePort(), await freePort()];
    // CONCORD_PORT changed, CONCORD_ISSUER not: the default issuer http://localhost:3000 stays.
    const concord = start(config, { CONCORD_PORT: String(port), CONCORD_ADMIN_PORT: String(adminPort) });
    try {
      await concord.waitFor(/"msg":"concord started"/);
      const idle = json(await concord.waitFor(/"notice":"local_idps_not_running"/))!;
      assert.match(idle.msg!, new RegExp(`acme \\(http://localhost:${down[0]}\\), globex \\(http://127.0.0.1:${down[1]}\\)`));
      assert.doesNotMatch(idle.msg!, /initech/, 'a running IdP is not named');
      assert.match(idle.msg!, /npm run demo/);
    } finally {
      assert.equal(await concord.stop(), 0);
    }
    const issuer = noticesOf(concord.lines, 'issuer_listener_mismatch');
    assert.equal(issuer.length, 1, concord.lines.join('\n'));
    assert.match(json(issuer[0]!)!.msg!, new RegExp(`issuer http://localhost:3000 is not the public listener \\(port ${port}\\).*set CONCORD_ISSUER=http://localhost:${port}`));
    const admin = noticesOf(concord.lines, 'admin_api_off');
    assert.equal(admin.length, 1);
    assert.match(json(admin[0]!)!.msg!, new RegExp(`admin API at http://127.0.0.1:${adminPort} is off: CONCORD_ADMIN_TOKEN is not set`));
    assert.equal(noticesOf(concord.lines, 'local_idps_not_running').length, 1);
  });

  for (const listener of ['public', 'admin'] as const) {
    it(`a ${listener} port in use: one line with the fix on stderr, exit 1`, async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const busy = (taken.address() as net.AddressInfo).port;
      const free = await freePort();
      const config = await configDir(`busy-${listener}`, []);
      const [port, adminPort] = listener === 'public' ? [busy, free] : [free, busy];
      const concord = start(config, { CONCORD_PORT: String(port), CONCORD_ADMIN_PORT: String(adminPort), CONCORD_ISSUER: `http://127.0.0.1:${port}`, CONCORD_ADMIN_TOKEN: ADMIN_TOKEN });
      try {
        assert.equal(await concord.exited, 1);
      } finally {
        taken.close();
      }
      const plain = concord.lines.filter((l) => json(l) === undefined);
      const variable = listener === 'public' ? 'CONCORD_PORT' : 'CONCORD_ADMIN_PORT';
      assert.equal(plain.length, 1, concord.lines.join('\n'));
      assert.equal(plain[0], `concord: failed to start: port ${busy} of the ${listener} listener (127.0.0.1:${busy}) is in use: stop what holds it, or set ${variable} to a free port`);
      assert.ok(!concord.lines.some((l) => /"msg":"concord started"/.test(l)));
    });
  }
});
