/**
 * Real processes for the fault tests (test/integration/faults*.test.ts): Concord started as
 * `node src/main.ts` with CONCORD_* settings and a temporary CONFIG_DIR, killable with any signal,
 * and a tiny loopback load balancer that sends every request to the first backend that accepts the
 * connection (as a load balancer whose health check has noticed a dead instance).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../support/ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADMIN_TOKEN = 'faults-admin-token-0123456789';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface ConcordProcessOptions {
  /** CONCORD_ISSUER: the URL users and clients see (the balancer's when there is one). */
  issuer?: string;
  /** CONCORD_STORE */
  store: string;
  /** CONCORD_STORE_PREFIX */
  prefix: string;
  /** CONCORD_SECRETS_KEY: the same on every instance of a deployment. */
  secretsKey: string;
  /** config/participants/*.yaml */
  participants?: Array<Record<string, unknown> & { id: string }>;
  /** config/clients/*.yaml */
  clients?: Array<Record<string, unknown> & { client_id: string }>;
  /** config/concord.yaml (the environment wins over it). */
  settings?: Record<string, unknown>;
  /** CONCORD_PORT; a free one when absent. */
  port?: number;
  /** A name for the assertion messages. */
  name?: string;
}

export interface ConcordProcess {
  readonly name: string;
  /** http://127.0.0.1:{port}: the instance itself (not the issuer when behind the balancer). */
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  readonly pid: number;
  /** Whether the process is still running. */
  readonly running: boolean;
  /** What it wrote to stdout and stderr (JSON log lines), for failure messages. */
  output(): string;
  /** Sends a signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s) and removes the config directory. */
  stop(): Promise<void>;
}

/** Starts `node src/main.ts` as a child process and waits until /readyz answers 200. */
export async function startConcordProcess(options: ConcordProcessOptions): Promise<ConcordProcess> {
  const name = options.name ?? 'concord';
  const [port, adminPort] = [options.port ?? (await freePort()), await freePort()];
  const url = `http://127.0.0.1:${port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `concord-faults-${name}-`));
  fs.mkdirSync(path.join(dir, 'participants'));
  fs.mkdirSync(path.join(dir, 'clients'));
  fs.writeFileSync(path.join(dir, 'concord.yaml'), stringify({ shutdown: { drainDelayMs: 0 }, ...options.settings }));
  for (const p of options.participants ?? []) fs.writeFileSync(path.join(dir, 'participants', `${p.id}.yaml`), stringify(p));
  for (const c of options.clients ?? []) fs.writeFileSync(path.join(dir, 'clients', `${c.client_id}.yaml`), stringify(c));

  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      CONCORD_CONFIG_DIR: dir,
      CONCORD_ISSUER: options.issuer ?? url,
      CONCORD_PORT: String(port),
      CONCORD_HOST: '127.0.0.1',
      CONCORD_ADMIN_PORT: String(adminPort),
      CONCORD_ADMIN_HOST: '127.0.0.1',
      CONCORD_ADMIN_TOKEN: ADMIN_TOKEN,
      CONCORD_STORE: options.store,
      CONCORD_STORE_PREFIX: options.prefix,
      CONCORD_SECRETS_KEY: options.secretsKey,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + String(chunk)).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitCode: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitCode = signal ?? String(code);
      live.delete(child);
      resolve();
    });
  });

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${name} exited (${exitCode}) before it was ready:\n${output}`);
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not ready within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (exitCode !== undefined) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return {
    name,
    url,
    port,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    pid: child.pid!,
    get running() {
      return exitCode === undefined;
    },
    output: () => output,
    kill,
    async stop() {
      await kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Served {
  method: string;
  path: string;
  /** Index of the backend that answered; -1 when none did (502). */
  backend: number;
  status: number;
}

export interface Balancer {
  readonly url: string;
  /** Backends, in order of preference: http://host:port. */
  backends: string[];
  /** Every request with the backend that answered it. */
  readonly served: Served[];
  close(): Promise<void>;
}

/**
 * A loopback load balancer: each request goes to the first backend that accepts a connection
 * (a fresh one per request); a refused or reset connection before any answer moves on to the next.
 * The Host header is passed through, so the instances see the issuer's host.
 */
export async function startBalancer(backends: string[] = []): Promise<Balancer> {
  const served: Served[] = [];
  const balancer = {
    url: '',
    backends,
    served,
    close: async () => {},
  };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    for (let i = 0; i < balancer.backends.length; i++) {
      const target = new URL(balancer.backends[i]!);
      const answered = await new Promise<boolean>((resolve) => {
        const upstream = http.request(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false },
          (response) => {
            served.push({ method: req.method!, path: req.url!.split('?')[0]!, backend: i, status: response.statusCode! });
            res.writeHead(response.statusCode!, response.headers);
            response.pipe(res);
            resolve(true);
          },
        );
        upstream.once('error', () => resolve(false));
        upstream.end(body);
      });
      if (answered) return;
    }
    served.push({ method: req.method!, path: req.url!.split('?')[0]!, backend: -1, status: 502 });
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('no backend answered');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  balancer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  balancer.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return balancer;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 50 ms until it is true, for at most `ms`. */
export async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export async function status(url: string): Promise<number> {
  const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
  await response.body?.cancel();
  return response.status;
}
