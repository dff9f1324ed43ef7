import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createConcord } from '../../src/app.ts';
import { ConcordSettingsSchema } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { createStore } from '../../src/store/index.ts';
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

/**
 * A server that speaks enough RESP to pass for an old Redis: INFO answers `redis_version` and
 * every other command +OK (ioredis' ready check reads INFO too).
 */
async function oldRedis(version: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        // One command: *N\r\n then N bulk strings $len\r\n...\r\n.
        const args: string[] = [];
        let at = 0;
        const line = () => {
          const end = buffer.indexOf('\r\n', at);
          if (end < 0) return undefined;
          const text = buffer.subarray(at, end).toString();
          at = end + 2;
          return text;
        };
        const head = line();
        if (head === undefined) return;
        let complete = true;
        for (let i = 0; i < Number(head.slice(1)); i++) {
          const len = line();
          if (len === undefined || buffer.length < at + Number(len.slice(1)) + 2) {
            complete = false;
            break;
          }
          args.push(buffer.subarray(at, at + Number(len.slice(1))).toString());
          at += Number(len.slice(1)) + 2;
        }
        if (!complete) return;
        buffer = buffer.subarray(at);
        if (args[0]?.toLowerCase() === 'info') {
          const info = `# Server\r\nredis_version:${version}\r\nredis_mode:standalone\r\n\r\n# Persistence\r\nloading:0\r\n`;
          socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
        } else socket.write('+OK\r\n');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://:hunter2@127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('start-up: Redis version', () => {
  it('refuses a Redis older than 7.0 in one line that names the version found and the one needed', async () => {
    const old = await oldRedis('6.2.14');
    try {
      await assert.rejects(createStore({ url: old.url }), (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'redis_too_old');
        assert.match(err.message ?? '', /is version 6\.2\.14; Concord needs Redis 7\.0 or later/);
        assert.doesNotMatch(err.message ?? '', /hunter2|\n/);
        return true;
      });
    } finally {
      await old.close();
    }
  });

  it('starts on Redis 7.0 and later (Valkey answers a Redis version too)', async () => {
    for (const version of ['7.0.15', '7.2.4', '8.0.2']) {
      const server = await oldRedis(version);
      try {
        const store = await createStore({ url: server.url });
        await store.close();
      } finally {
        await server.close();
      }
    }
  });
});
