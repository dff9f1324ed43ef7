import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildSpec } from '../servers/child.ts';
import { freePort } from '../../test/support/ports.ts';

export type { ChildSpec };

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'servers', 'child.ts');
const START_TIMEOUT_MS = 60_000;

export interface Cpu {
  /** CPU time (user + system) in milliseconds since the process started. */
  ms: number;
  rss: number;
  /** V8's heap in use, bytes. */
  heap: number;
  /** Writes to Redis sockets so far (round trips; Concord children with a Redis store only). */
  redisWrites: number;
  /** Rounds of those writes: writes in one turn of the event loop, to one or several Cluster nodes, count once. */
  redisRounds: number;
}

export interface BenchChild {
  readonly url: string;
  readonly pid: number;
  /** Refresh tokens a bare server minted at start (spec mintRefreshTokens). */
  readonly refreshTokens: string[];
  /** The child's own CPU time so far. */
  cpu(): Promise<Cpu>;
  /** Starts a V8 CPU profile in the child; `file` given: stops it and writes it there (.cpuprofile, bench/profile.ts). */
  profile(file?: string): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A child's spec; the port is picked when absent. */
export type StartSpec = ChildSpec extends infer S ? (S extends ChildSpec ? Omit<S, 'port'> & { port?: number } : never) : never;

/** Starts one server (Concord, bare oidc-provider or partner IdP) in its own Node process. */
export async function startChild(spec: StartSpec): Promise<BenchChild> {
  const port = spec.port ?? (await freePort());
  const child = fork(CHILD, [], {
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // BENCH_CPU_PROF=dir: Concord children write a V8 CPU profile there when they stop (node --cpu-prof);
    // with BENCH_CPU_PROF_BARE=1 the bare oidc-provider children too, in dir/bare (to compare profiles).
    execArgv: process.env.BENCH_CPU_PROF && (spec.kind === 'concord' || (spec.kind === 'bare' && process.env.BENCH_CPU_PROF_BARE === '1'))
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}${spec.kind === 'bare' ? '/bare' : ''}`]
      : [],
  });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + String(chunk)).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => live.delete(child));

  child.send({ type: 'spec', spec: { ...spec, port } });
  const { url, refreshTokens } = await new Promise<{ url: string; refreshTokens: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.kind} child did not start within ${START_TIMEOUT_MS} ms\n${stderr}`)), START_TIMEOUT_MS);
    child.on('message', (m: { type: string; url?: string; refreshTokens?: string[] }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve({ url: m.url!, refreshTokens: m.refreshTokens ?? [] });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.kind} child exited (${code}) before it was ready\n${stderr}`));
    });
  });

  let nextId = 1;
  return {
    url,
    pid: child.pid!,
    refreshTokens,
    cpu() {
      const id = nextId++;
      return new Promise<Cpu>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child did not report its CPU time')), 5000);
        const onMessage = (m: { type: string; id?: number; user?: number; system?: number; rss?: number; heap?: number; redisWrites?: number; redisRounds?: number }) => {
          if (m.type !== 'cpu' || m.id !== id) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve({ ms: ((m.user ?? 0) + (m.system ?? 0)) / 1000, rss: m.rss ?? 0, heap: m.heap ?? 0, redisWrites: m.redisWrites ?? 0, redisRounds: m.redisRounds ?? 0 });
        };
        child.on('message', onMessage);
        child.send({ type: 'cpu', id });
      });
    },
    profile(file?: string) {
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child did not answer the profile request')), 30_000);
        const onMessage = (m: { type: string; id?: number; error?: string }) => {
          if (m.type !== 'profile' || m.id !== id) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          if (m.error) reject(new Error(m.error));
          else resolve();
        };
        child.on('message', onMessage);
        child.send({ type: 'profile', id, ...(file ? { file } : {}) });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
