import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/index.ts';

/*
 * No Docker engine runs here, so the Dockerfile and docker-compose.yml are checked as files: the
 * contract's environment variables, ports and health checks, a small non-root production image,
 * no secret baked in, and a proxy/IdP/participant wiring that fits together.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { op: op.toUpperCase(), args: rest.trim() };
    if (instruction.op === 'FROM') {
      const [, image = '', name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args) ?? [];
      stages.push({ from: image, name, instructions: [] });
    } else if (stages.length === 0 && instruction.op === 'ARG') {
      const [key = '', value = ''] = instruction.args.split('=');
      args.set(key, value);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/** The final stage and the stages it builds on, nearest first. */
function lineage(stages: Stage[], stage: Stage): Stage[] {
  const chain = [stage];
  let current = stage;
  for (;;) {
    const parent = stages.find((s) => s.name === current.from);
    if (!parent || chain.includes(parent)) return chain;
    chain.push(parent);
    current = parent;
  }
}

/** The .dockerignore patterns as regular expressions (enough of Docker's syntax for this file). */
function ignored(patterns: string[], file: string): boolean {
  let out = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = negate ? raw.slice(1) : raw;
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '.*')}(/.*)?$`);
    if (re.test(file)) out = !negate;
  }
  return out;
}

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const { args, stages } = parseDockerfile(text);
  const final = stages.at(-1)!;
  const chain = lineage(stages, final);
  const all = (op: string, in_: Stage[] = chain) => in_.flatMap((s) => s.instructions.filter((i) => i.op === op));
  const resolve = (image: string) => image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => args.get(name) ?? '');
  const dockerignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('is multi-stage, on a small Node 24 base', () => {
    assert.ok(stages.length >= 2, 'a dependencies stage and a runtime stage');
    const base = resolve(chain.at(-1)!.from);
    assert.match(base, /^node:24(\.\d+)*-(slim|alpine)/, `the runtime image's base: ${base}`);
    for (const stage of stages) {
      const image = resolve(stage.from);
      assert.ok(stages.some((s) => s.name === stage.from) || /^node:24/.test(image), `stage ${stage.name} is on Node 24: ${image}`);
    }
  });

  it('installs production dependencies only, from the lock file, in a build stage', () => {
    const installs = stages.flatMap((s) => s.instructions.filter((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args)).map((i) => ({ stage: s, i })));
    const install = installs.filter(({ i }) => /--omit=dev\b/.test(i.args));
    assert.equal(install.length, 1, 'one npm ci of the production dependencies');
    // Any other install is the build stage's (TypeScript for dist/): none of its node_modules reaches the image.
    for (const other of installs.filter((x) => !install.includes(x))) {
      assert.ok(!chain.includes(other.stage), `the full npm ci runs in a stage the runtime image does not build on (${other.stage.name})`);
      const copied = all('COPY').filter((c) => c.args.includes(`--from=${other.stage.name}`));
      assert.ok(copied.every((c) => /\/dist\s+\S*dist$/.test(c.args)), `only dist/ comes from ${other.stage.name}: ${copied.map((c) => c.args).join('; ')}`);
    }
    assert.doesNotMatch(text, /npm install\b/, 'npm ci, never npm install');
    assert.ok(!chain.includes(install[0]!.stage), 'npm ci runs in a stage the runtime image does not build on (no npm cache, no build tools)');
    assert.ok(all('COPY').some((c) => /--from=\S+\s+\S*node_modules/.test(c.args)), 'the runtime copies node_modules from it');
    assert.ok(all('COPY', stages).some((c) => /package-lock\.json/.test(c.args)), 'the lock file is used');
  });

  it('runs as a non-root user', () => {
    const users = all('USER');
    assert.ok(users.length > 0, 'USER is set for the runtime image');
    const user = users[0]!.args; // the nearest one wins
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user}`);
  });

  it('exposes the contract ports, checks /readyz, starts src/main.ts', () => {
    const exposed = all('EXPOSE').flatMap((e) => e.args.split(/\s+/));
    assert.ok(exposed.includes('3000') && exposed.includes('9090'), `EXPOSE ${exposed.join(' ')}`);
    const health = all('HEALTHCHECK');
    assert.equal(health.length, 1);
    assert.match(health[0]!.args, /CMD .*\/readyz/);
    assert.match(health[0]!.args, /CONCORD_PORT/, 'the health check follows CONCORD_PORT');
    const cmd = all('CMD')[0]!;
    assert.deepEqual(JSON.parse(cmd.args), ['node', 'src/main.ts']);
    assert.ok(existsSync(path.join(ROOT, 'src/main.ts')));
  });

  it('carries the compiled CLI: bin/ and the dist/ it runs', () => {
    const copies = all('COPY').map((c) => c.args);
    assert.ok(copies.some((c) => /^bin\s/.test(c)), 'bin/ is in the image');
    assert.ok(copies.some((c) => /--from=\S+\s+\S*\/dist\s+\S*dist$/.test(c)), 'dist/ (the CLI\'s JavaScript) is in the image');
    assert.match(read('bin/concord.js'), /dist\/cli\/main\.js/, 'the bin runs dist/');
  });

  it('bakes in no secret and no demo client or participant', () => {
    for (const i of [...all('ENV', stages), ...all('ARG', stages), ...[...args.keys()].map((k) => ({ op: 'ARG', args: k }))]) {
      assert.doesNotMatch(i.args, /TOKEN|SECRET|PASSWORD|PASSWD|_KEY\b|PRIVATE/i, `${i.op} ${i.args}`);
    }
    for (const copy of all('COPY', stages)) {
      assert.doesNotMatch(copy.args, /\.env\b|config\/clients|config\/participants|(^|\s)config\/?\s/, `COPY ${copy.args}`);
      assert.doesNotMatch(copy.args, /^\.\s|\s\.\s+\.\/?$/, `COPY ${copy.args}: not the whole context`);
    }
    for (const file of ['.env', '.env.local', 'config/clients/demo-service.yaml', 'config/participants/acme.yaml', 'node_modules/x', '.git/config', 'test/unit/x.ts', 'bench/x.ts']) {
      assert.ok(ignored(dockerignore, file), `.dockerignore keeps ${file} out of the build context`);
    }
  });

  it('copies what exists and what .dockerignore lets through', () => {
    for (const copy of all('COPY', stages)) {
      if (/--from=/.test(copy.args)) continue;
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        assert.ok(existsSync(path.join(ROOT, source)), `COPY source ${source} exists`);
        assert.ok(!ignored(dockerignore, source), `COPY source ${source} is not in .dockerignore`);
      }
    }
    for (const needed of ['src/main.ts', 'views/layout.html', 'package.json', 'package-lock.json', 'demo/partner-idp.ts']) {
      assert.ok(!ignored(dockerignore, needed), `${needed} reaches the build`);
    }
  });

  it('has a demo target with the partner IdPs for docker-compose.yml', () => {
    const demo = stages.find((s) => s.name === 'demo');
    assert.ok(demo, 'a stage named demo');
    assert.notEqual(final, demo, 'the default target is the production image');
    assert.ok(lineage(stages, demo).flatMap((s) => s.instructions).some((i) => i.op === 'COPY' && /\bdemo\b/.test(i.args)));
    assert.ok(!chain.flatMap((s) => s.instructions).some((i) => i.op === 'COPY' && /\bdemo\b/.test(i.args)), 'the production image has no demo');
  });
});

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/** The environment variables src/config/load.ts maps onto settings (ENV_OVERRIDES), read from its source. */
function envOverrides(): Set<string> {
  const source = read('src/config/load.ts');
  const block = /const ENV_OVERRIDES[\s\S]*?\n\];/.exec(source)?.[0] ?? '';
  const names = new Set([...block.matchAll(/\['([A-Z_]+)',/g)].map((m) => m[1]!));
  assert.ok(names.size >= 8, `ENV_OVERRIDES found in src/config/load.ts (${[...names].join(', ')})`);
  return names;
}

/** Compose's interpolation: ${VAR:-default}, ${VAR:?error} (here: a test value), ${VAR}, $$. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{(\w+)(?::?([-?])([^}]*))?\}/g, (whole, name: string | undefined, kind: string | undefined, rest: string | undefined) => {
    if (whole === '$$') return '$';
    const given = env[name!];
    if (given !== undefined && given !== '') return given;
    if (kind === '-') return rest ?? '';
    if (kind === '?') throw new Error(`${name} is required: ${rest}`);
    return '';
  });
}

type Service = {
  image?: string;
  build?: { context: string; target?: string };
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  network_mode?: string;
  ports?: string[];
  volumes?: string[];
};

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
  const services = compose.services;
  const concords = Object.entries(services).filter(([, s]) => s.build?.target === 'runtime');
  const idps = Object.entries(services).filter(([, s]) => s.build?.target === 'demo');
  const proxy = services.proxy!;
  const nginx = read('deploy/proxy/nginx.conf');
  const secrets = { CONCORD_ADMIN_TOKEN: 'compose-test-admin-token-0123456789', CONCORD_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') };

  it('runs two Concord instances, Redis, a proxy and the three demo IdPs', () => {
    assert.equal(concords.length, 2, 'two instances of the production image');
    assert.ok(services.redis?.image?.startsWith('redis:'), 'Redis');
    assert.match(proxy.image ?? '', /^(nginx|caddy|haproxy|traefik)/);
    assert.deepEqual(idps.map(([, s]) => s.command?.slice(0, 3)).sort(), [
      ['node', 'demo/partner-idp.ts', 'acme'],
      ['node', 'demo/partner-idp.ts', 'globex'],
      ['node', 'demo/saml-idp.ts', 'initech'],
    ]);
  });

  it('gives every service a health check: /readyz for Concord, redis-cli ping for Redis', () => {
    for (const [name, service] of concords) assert.match(service.healthcheck?.test.join(' ') ?? '', /\/readyz/, name);
    assert.deepEqual(services.redis!.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
    for (const [name, service] of [...idps, ['proxy', proxy] as const]) assert.ok(service.healthcheck?.test.length, `${name} has a health check`);
    for (const [name, service] of concords) {
      assert.equal(service.depends_on?.redis?.condition, 'service_healthy', `${name} waits for a healthy Redis`);
    }
  });

  it('configures Concord with the contract environment variables only', () => {
    const known = envOverrides();
    for (const [name, service] of concords) {
      const env = service.environment ?? {};
      for (const key of Object.keys(env)) {
        if (!key.startsWith('CONCORD_') && key !== 'LOG_LEVEL') continue;
        assert.ok(known.has(key) || key === 'CONCORD_CONFIG_DIR', `${name}: ${key} is a setting src/config/load.ts reads`);
      }
      for (const required of ['CONCORD_ISSUER', 'CONCORD_STORE', 'CONCORD_ADMIN_TOKEN', 'CONCORD_SECRETS_KEY', 'CONCORD_TRUST_PROXY']) {
        assert.ok(required in env, `${name} sets ${required}`);
      }
      assert.equal(env.CONCORD_STORE, 'redis://redis:6379');
      assert.equal(String(env.CONCORD_TRUST_PROXY), 'true');
      // Secrets come from the operator's environment: required, never a literal default.
      for (const secret of ['CONCORD_ADMIN_TOKEN', 'CONCORD_SECRETS_KEY']) assert.match(String(env[secret]), /^\$\{\w+:\?[^}]+\}$/, `${name}: ${secret}`);
    }
    const ports = concords.map(([, s]) => String(s.environment?.CONCORD_PORT));
    assert.equal(new Set(ports).size, 2, `distinct CONCORD_PORT (${ports.join(', ')}) in the shared namespace`);
    const adminPorts = concords.map(([, s]) => String(s.environment?.CONCORD_ADMIN_PORT));
    assert.equal(new Set(adminPorts).size, 2, 'distinct CONCORD_ADMIN_PORT');
  });

  it('gives settings Concord accepts: loadConfig with each instance environment and the mounted config/', async () => {
    for (const [name, service] of concords) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), secrets)]));
      const mount = service.volumes?.find((v) => v.split(':')[1] === env.CONCORD_CONFIG_DIR);
      assert.ok(mount, `${name}: CONCORD_CONFIG_DIR is a mounted directory`);
      const dir = path.join(ROOT, mount.split(':')[0]!);
      const config = await loadConfig({ dir, env });
      assert.equal(config.settings.store, 'redis://redis:6379', name);
      assert.equal(config.settings.trustProxy, true);
      assert.equal(config.settings.issuer, 'http://localhost:3000');
      assert.equal(config.settings.admin.token, secrets.CONCORD_ADMIN_TOKEN);
      assert.equal(String(config.settings.port), env.CONCORD_PORT);
    }
    assert.throws(() => interpolate(String(concords[0]![1].environment!.CONCORD_ADMIN_TOKEN), {}), /required/, 'compose refuses to start without the token');
  });

  it('the proxy balances over both instances and is the one published address', () => {
    const upstream = /upstream concord \{([^}]*)\}/.exec(nginx)?.[1] ?? '';
    const servers = [...upstream.matchAll(/server 127\.0\.0\.1:(\d+)/g)].map((m) => m[1]).sort();
    assert.deepEqual(servers, concords.map(([, s]) => String(s.environment?.CONCORD_PORT)).sort(), 'nginx upstream = the instances');
    const adminUpstream = /upstream concord_admin \{([^}]*)\}/.exec(nginx)?.[1] ?? '';
    assert.deepEqual([...adminUpstream.matchAll(/server 127\.0\.0\.1:(\d+)/g)].map((m) => m[1]).sort(), concords.map(([, s]) => String(s.environment?.CONCORD_ADMIN_PORT)).sort());
    for (const [name, service] of [...concords, ...idps]) {
      assert.equal(service.network_mode, 'service:proxy', `${name} shares the proxy's namespace`);
      assert.equal(service.ports, undefined, `${name} publishes nothing itself`);
    }
    const issuerPort = new URL(String(concords[0]![1].environment?.CONCORD_ISSUER)).port;
    assert.ok(proxy.ports?.includes(`${issuerPort}:3000`) && /listen 3000;/.test(nginx), 'the issuer port reaches the proxy');
    const admin = proxy.ports?.find((p) => p.endsWith(':9090'));
    assert.match(admin ?? '', /^127\.0\.0\.1:/, 'the admin API is published on the host loopback only');
    assert.match(nginx, /proxy_set_header X-Forwarded-For \$remote_addr;/, 'the client IP Concord trusts is set by the proxy');
    const mounted = proxy.volumes?.map((v) => v.split(':')[0]!) ?? [];
    assert.ok(mounted.includes('./deploy/proxy/nginx.conf'));
  });

  it('each participant issuer is an IdP of the compose file, reachable through the proxy', () => {
    const dir = path.join(ROOT, 'config/participants');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
    assert.ok(files.length >= 2, 'the demo participants are in config/participants');
    for (const file of files) {
      const participant = parseYaml(readFileSync(path.join(dir, file), 'utf8')) as { id: string; upstream: { issuer?: string; idpMetadataUrl?: string } };
      // An OIDC issuer, or a SAML IdP's metadata URL.
      const issuer = new URL(participant.upstream.issuer ?? participant.upstream.idpMetadataUrl ?? '');
      assert.ok(['localhost', '127.0.0.1'].includes(issuer.hostname), `${file}: a loopback issuer (${issuer.href})`);
      const idp = idps.find(([, s]) => s.command?.[2] === participant.id);
      assert.ok(idp, `an IdP service for ${participant.id}`);
      assert.equal(idp[1].command?.[3], issuer.port, `${participant.id}'s IdP listens on its issuer's port`);
      assert.equal(idp[1].environment?.CONCORD_ISSUER, concords[0]![1].environment?.CONCORD_ISSUER, `${participant.id}'s IdP sends users back to Concord`);
      // Browser -> host port -> proxy port -> the IdP on 127.0.0.1 in the shared namespace.
      const published = proxy.ports?.find((p) => p.split(':').at(-2) === issuer.port);
      assert.ok(published, `the proxy publishes ${issuer.port}`);
      const inner = published.split(':').at(-1)!;
      const server = new RegExp(`listen ${inner};\\s*location / \\{\\s*proxy_pass http://127\\.0\\.0\\.1:${issuer.port};`).exec(nginx);
      assert.ok(server, `nginx forwards ${inner} to the ${participant.id} IdP`);
    }
  });
});
