/**
 * Client-credentials token issuance: Concord against a bare oidc-provider with the same store
 * backend (Concord's own MemoryStore / RedisStore adapters), the same algorithm (ES256) and the same
 * token format (RFC 9068 JWT for one audience). Both run as child processes started the same way;
 * autocannon runs here. The two are measured in alternating rounds so drift hits both alike.
 *
 *   node bench/parts/tokens.ts
 */
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { basic, combine, load, type LoadResult } from '../lib/cannon.ts';
import { startChild, type BenchChild } from '../lib/children.ts';
import { benchRedis, commandStats } from '../lib/redis.ts';
import { fmtMs, ratio, runAlone, type Row, type Section } from '../lib/report.ts';

/**
 * Rate limits stay on (their cost is part of Concord's), with budgets a load test cannot exhaust:
 * the defaults allow one client 600 tokens a minute and one IP 300 browser requests a minute.
 */
export const UNLIMITED = { token: { points: 1_000_000, duration: 60 }, browser: { points: 1_000_000, duration: 60 } };

export const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };
const BODY = 'grant_type=client_credentials';

/** Token issuance at least this fraction of bare oidc-provider's (issue 17). */
export const ISSUANCE_GOAL = 0.95;

export interface TokenOptions {
  /** Seconds per measured round. */
  seconds?: number;
  rounds?: number;
  warmup?: number;
  /** Also measure Concord without request logging and rate limiting (memory store). Default true. */
  diagnose?: boolean;
}

export function tokenRequest(child: BenchChild, seconds: number) {
  return load({
    url: `${child.url}/token`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE.client_id, MACHINE.client_secret) },
    body: BODY,
    duration: seconds,
    connections: 16,
    child,
  });
}

/** One token by hand: the server answers, with a JWT in the expected algorithm. */
export async function checkIssues(child: BenchChild, alg: string): Promise<void> {
  const response = await fetch(`${child.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE.client_id, MACHINE.client_secret) },
    body: BODY,
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || !body.access_token) throw new Error(`${child.url}/token answered ${response.status}: ${JSON.stringify(body)}`);
  const header = decodeProtectedHeader(body.access_token);
  if (header.alg !== alg || header.typ !== 'at+jwt') throw new Error(`unexpected token header ${JSON.stringify(header)}`);
}

export async function tokensPart(options: TokenOptions = {}): Promise<Section> {
  const seconds = options.seconds ?? 2;
  const rounds = options.rounds ?? 6;
  const warmup = options.warmup ?? 2;
  const redis = await benchRedis();
  const rows: Row[] = [];
  const figures: Record<string, number> = {};

  for (const store of ['memory', 'redis'] as const) {
    const url = store === 'memory' ? 'memory' : redis.url;
    const prefix = `bench-tokens-${randomBytes(3).toString('hex')}:`;
    const servers: Record<string, BenchChild> = {};
    const starting: Array<Promise<void>> = [
      startChild({ kind: 'concord', settings: { store: url, storePrefix: prefix, keys: { algorithm: 'ES256' }, rateLimits: UNLIMITED }, clients: [MACHINE] }).then((c) => void (servers.concord = c)),
      startChild({ kind: 'bare', store: url, storePrefix: `${prefix}bare:`, algorithm: 'ES256', client: { client_id: MACHINE.client_id, client_secret: MACHINE.client_secret } }).then((c) => void (servers.bare = c)),
    ];
    // Where Concord's extra cost goes: the same Concord without its per-request log line and rate limiter.
    if (store === 'memory' && options.diagnose !== false) {
      starting.push(
        startChild({ kind: 'concord', settings: { store: url, storePrefix: `${prefix}lean:`, keys: { algorithm: 'ES256' }, logLevel: 'warn', rateLimits: { enabled: false } }, clients: [MACHINE] }).then(
          (c) => void (servers.lean = c),
        ),
      );
    }
    const settled = await Promise.allSettled(starting);
    try {
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      const names = Object.keys(servers).sort();
      for (const name of names) await checkIssues(servers[name]!, 'ES256');
      for (const name of names) await tokenRequest(servers[name]!, warmup);
      const runs: Record<string, LoadResult[]> = Object.fromEntries(names.map((n) => [n, []]));
      const commandsBefore = store === 'redis' ? await commandStats(redis) : undefined;
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? names : [...names].reverse();
        for (const name of order) runs[name]!.push(await tokenRequest(servers[name]!, seconds));
      }
      const commandsAfter = store === 'redis' ? await commandStats(redis) : undefined;
      const c = combine(runs.concord!);
      const b = combine(runs.bare!);
      // The goal's figure: the median over rounds of Concord's rate / bare's in the same round pair.
      const perRound = runs.concord!.map((r, i) => r.rps / runs.bare![i]!.rps).sort((x, y) => x - y);
      const medianRatio = perRound[Math.floor(perRound.length / 2)]!;
      figures[`concord_${store}_ratio_median`] = medianRatio;
      const bad = (r: LoadResult) => (r.non2xx || r.errors ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : '');
      let redisNote = '';
      if (commandsBefore && commandsAfter) {
        // Both servers share the Redis, but the bare one sends nothing for a JWT client-credentials
        // token (its client is static, the token is not stored): every command is Concord's (the
        // rate limiter's; a client-credentials token has no record, provider/access-tokens.ts).
        const perToken = (commandsAfter.total - commandsBefore.total) / Math.max(1, c.requests - c.non2xx);
        redisNote = `, ${perToken.toFixed(2)} Redis commands/token (the rate limiter's script and what runs inside it)`;
        figures.redis_commands_per_cc_token = perToken;
      }
      rows.push({
        name: `client_credentials, Concord, ${store} store, ES256`,
        rate: c.rps,
        unit: 'tokens/s',
        p50: c.p50,
        p99: c.p99,
        ratio: `${medianRatio.toFixed(2)} of bare`,
        note: `median of ${perRound.length} round ratios (${perRound.map((r) => r.toFixed(2)).join(' ')}); ${fmtMs(c.cpuMsPerRequest)} ms CPU/token (${ratio(b.cpuMsPerRequest ?? NaN, c.cpuMsPerRequest ?? NaN)} of bare's CPU efficiency)${redisNote}${bad(c)}`,
      });
      if (runs.lean) {
        const l = combine(runs.lean);
        rows.push({
          name: `  diagnostic: Concord, ${store} store, log level warn, rate limits off`,
          rate: l.rps,
          unit: 'tokens/s',
          p50: l.p50,
          p99: l.p99,
          ratio: `${ratio(l.rps, b.rps)} of bare`,
          note: `${fmtMs(l.cpuMsPerRequest)} ms CPU/token${bad(l)}`,
        });
        figures.concord_lean_rps = l.rps;
        figures.concord_lean_cpu_ms = l.cpuMsPerRequest ?? NaN;
      }
      rows.push({
        name: `client_credentials, bare oidc-provider, ${store} store, ES256`,
        rate: b.rps,
        unit: 'tokens/s',
        p50: b.p50,
        p99: b.p99,
        ratio: '1.00',
        note: `${fmtMs(b.cpuMsPerRequest)} ms CPU/token${bad(b)}`,
      });
      figures[`concord_${store}_rps`] = c.rps;
      figures[`bare_${store}_rps`] = b.rps;
      figures[`concord_${store}_cpu_ms`] = c.cpuMsPerRequest ?? NaN;
      figures[`bare_${store}_cpu_ms`] = b.cpuMsPerRequest ?? NaN;
    } finally {
      await Promise.all(Object.values(servers).map((s) => s.stop()));
    }
  }

  const extra: string[] = [];
  const ratios = (['memory', 'redis'] as const).map((st) => [st, figures[`concord_${st}_ratio_median`]!] as const);
  extra.push(
    `Goal: Concord at least ${ISSUANCE_GOAL} of bare oidc-provider (median of the alternating rounds' ratios). Measured: ${ratios.map(([st, r]) => `${r.toFixed(2)} (${st})`).join(', ')}: ${ratios.every(([, r]) => r >= ISSUANCE_GOAL) ? 'met' : 'not met'}.`,
  );
  const [c, lean, b] = [figures.concord_memory_cpu_ms!, figures.concord_lean_cpu_ms, figures.bare_memory_cpu_ms!];
  if (lean !== undefined && Number.isFinite(lean)) {
    extra.push(
      `CPU per token, memory store: Concord ${fmtMs(c)} ms, bare ${fmtMs(b)} ms, Concord with log level warn and the rate limiter off ${fmtMs(lean)} ms (diagnostic row). ` +
        `In this run the per-request log line and the rate limiter account for ${fmtMs(Math.max(0, c - lean))} ms of the ${fmtMs(c - b)} ms difference; the rest is Concord's other per-request work around the same oidc-provider token code ` +
        `(request id and the request line, request-size checks that read the /token body, metrics, security headers, routing). ` +
        `On this shared 2-core machine these per-token figures move by 10-20 % from run to run.`,
    );
  }

  return {
    title: 'Client-credentials tokens: Concord vs bare oidc-provider',
    method:
      `POST /token (client_secret_basic, grant_type=client_credentials) with autocannon, 16 connections, in this process; each server in its own child process ` +
      `(Concord at log level info, lines written to /dev/null; bare oidc-provider with a static client and the same store adapter, ES256 and RFC 9068 JWT format). ` +
      `${warmup} s warm-up each, then ${rounds} alternating rounds of ${seconds} s; p50/p99 are request-weighted means over the rounds. ` +
      `CPU/token is the server process's own CPU time (user+system) divided by tokens issued; on a shared 2-core machine it is steadier than the rate. ` +
      `Concord runs with its rate limiter on (budgets raised so it never refuses). A client-credentials JWT has no record: introspection and revocation work from the verified JWT and a revocation marker written only when one is revoked (provider/access-tokens.ts); with Redis, Concord's commands per token are the rate limiter's.`,
    rows,
    extra,
    figures,
  };
}

if (import.meta.main) await runAlone(() => tokensPart());
