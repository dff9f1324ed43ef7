import autocannon from 'autocannon';
import type { BenchChild } from './children.ts';

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** The server's CPU milliseconds per request, when the server was a child we can ask. */
  cpuMsPerRequest?: number;
}

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Seconds. */
  duration: number;
  connections?: number;
  /** A fixed number of requests instead of a duration. */
  maxRequests?: number;
  /** Read the child's CPU time around the run. */
  child?: BenchChild;
}

/** One bounded autocannon run (in this process) against a server in another. */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const before = options.child ? await options.child.cpu() : undefined;
  const started = performance.now();
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    ...(options.body !== undefined ? { body: options.body } : {}),
    duration: options.duration,
    connections: options.connections ?? 16,
    pipelining: 1,
    timeout: 10,
    // autocannon ignores `duration` when `amount` is set: a run is bounded by one or the other.
    ...(options.maxRequests !== undefined ? { amount: options.maxRequests } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  const after = options.child ? await options.child.cpu() : undefined;
  const ok = result.requests.total - result.non2xx;
  return {
    requests: result.requests.total,
    seconds,
    rps: ok / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    ...(before && after && ok > 0 ? { cpuMsPerRequest: (after.ms - before.ms) / ok } : {}),
  };
}

/** Several runs as one: rates from the totals, latencies averaged over the runs (weighted by requests). */
export function combine(runs: LoadResult[]): LoadResult {
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const seconds = runs.reduce((s, r) => s + r.seconds, 0);
  const ok = runs.reduce((s, r) => s + r.requests - r.non2xx, 0);
  const weighted = (pick: (r: LoadResult) => number) => runs.reduce((s, r) => s + pick(r) * r.requests, 0) / Math.max(1, requests);
  const cpu = runs.every((r) => r.cpuMsPerRequest !== undefined) ? weighted((r) => r.cpuMsPerRequest!) : undefined;
  return {
    requests,
    seconds,
    rps: ok / seconds,
    p50: weighted((r) => r.p50),
    p99: weighted((r) => r.p99),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    ...(cpu !== undefined ? { cpuMsPerRequest: cpu } : {}),
  };
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
