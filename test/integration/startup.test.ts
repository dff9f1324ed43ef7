import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createConcord } from '../../src/app.ts';
import { ConcordSettingsSchema } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { startConcord } from '../support/concord.ts';
import { freePort } from '../support/ports.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REDIS = 'redis://127.0.0.1:6379';
const quiet = () => createLogger({ level: 'silent' });

/** Runs `node src/main.ts` until it exits; returns its exit code and stderr. */
function runMain(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.CONCORD_SECRETS_KEY;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['src/main.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** What must hold before Concord serves: secrets never in the clear in a store that outlives it. */
describe('start-up: secrets at rest', () => {
  const prefixes: string[] = [];
  after(async () => {
    for (const prefix of prefixes) await dropRedisPrefix(prefix);
  });

  it('refuses a Redis store without CONCORD_SECRETS_KEY, before connecting to it', async () => {
    // Nothing listens on port 1: had Concord tried the store first, the error would be store_unavailable.
    const settings = ConcordSettingsSchema.parse({ issuer: 'http://127.0.0.1:1', store: 'redis://127.0.0.1:1', admin: { port: 0 } });
    await assert.rejects(createConcord({ config: { dir: '(test)', settings, participants: [], clients: [] }, logger: quiet() }), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'secrets_key_required');
      assert.match(err.message ?? '', /CONCORD_SECRETS_KEY/);
      return true;
    });
  });

  it('the process says why in one line and exits non-zero', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'concord-startup-'));
    try {
      const port = await freePort();
      const { code, stderr } = await runMain({
        CONCORD_CONFIG_DIR: dir,
        CONCORD_STORE: REDIS,
        CONCORD_STORE_PREFIX: `test-startup-${randomBytes(4).toString('hex')}:`,
        CONCORD_PORT: String(port),
        CONCORD_ADMIN_PORT: '0',
        CONCORD_ISSUER: `http://127.0.0.1:${port}`,
      });
      assert.equal(code, 1);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0]!, /^concord: failed to start: CONCORD_SECRETS_KEY is not set/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the signing keys, cookie keys and pairwise salt sealed in Redis', async () => {
    const prefix = `test-startup-${randomBytes(4).toString('hex')}:`;
    prefixes.push(prefix);
    const instance = await startConcord({ settings: { store: REDIS, storePrefix: prefix } });
    const redis = new Redis(REDIS);
    try {
      const signingKeys = await redis.hgetall(`${prefix}rec:{signing-keys}`);
      assert.ok(Object.keys(signingKeys).length >= 1, 'a signing key in the store');
      for (const raw of Object.values(signingKeys)) {
        const stored = JSON.parse(raw) as { sealedPrivateJwk: string };
        assert.match(stored.sealedPrivateJwk, /^v2\./);
        assert.doesNotMatch(raw, /"d"\s*:/, 'no private key member in the clear');
      }
      for (const collection of ['cookie-keys', 'pairwise-salt']) {
        const [value] = JSON.parse((await redis.hget(`${prefix}rec:{${collection}}`, 'current'))!) as string[];
        assert.match(value!, /^v2\./, `${collection} sealed`);
      }
    } finally {
      redis.disconnect();
      await instance.close();
    }
  });
});
