/**
 * What a refresh costs: Concord's refresh grant when the participant's re-check is not due (a
 * session read, the policy, a refresh note), Concord's when every refresh asks the partner's IdP
 * again (session.revalidateAfter 0: the partner's own refresh grant, its ID token verified, the
 * claims mapped again), and bare oidc-provider's refresh grant with the same rotation, token format
 * and store, in the same run. Refresh tokens rotate, so each worker follows its own chain.
 *
 *   node bench/parts/refresh.ts
 */
import { randomBytes } from 'node:crypto';
import { basic } from '../lib/cannon.ts';
import { startChild, type BenchChild } from '../lib/children.ts';
import { BENCH_RP, login, startLoginRig, type LoginRig } from '../lib/login-driver.ts';
import { benchRedis } from '../lib/redis.ts';
import { fmtMs, percentile, ratio, runAlone, type Row, type Section } from '../lib/report.ts';
import { MACHINE } from './tokens.ts';

interface Target {
  name: string;
  url: string;
  client: { client_id: string; client_secret: string };
  /** One refresh token per worker; each refresh replaces its own. */
  chains: string[];
  children: BenchChild[];
}

interface RefreshRun {
  refreshes: number;
  failures: number;
  firstError?: string;
  seconds: number;
  /** Milliseconds, per refresh. */
  times: number[];
}

/** Every chain refreshed back to back for `seconds`. */
async function refreshLoad(target: Target, seconds: number): Promise<RefreshRun> {
  const times: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  const authorization = basic(target.client.client_id, target.client.client_secret);
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    target.chains.map(async (_, i) => {
      while (performance.now() < deadline && failures < 50) {
        const started = performance.now();
        const response = await fetch(`${target.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: target.chains[i]! }).toString(),
        });
        const body = (await response.json()) as { refresh_token?: string; access_token?: string; error?: string };
        if (response.status !== 200 || !body.refresh_token || !body.access_token) {
          failures++;
          firstError ??= `${response.status} ${body.error ?? ''}`;
          return;
        }
        target.chains[i] = body.refresh_token;
        times.push(performance.now() - started);
      }
    }),
  );
  return { refreshes: times.length, failures, ...(firstError ? { firstError } : {}), seconds: (performance.now() - t0) / 1000, times };
}

/** Refresh tokens from real brokered logins, one per chain. */
async function loginChains(rig: LoginRig, chains: number): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < chains; i++) {
    const { tokens: t } = await login(rig.issuer, rig.users[i]!);
    if (!t.refresh_token) throw new Error('a login gave no refresh token');
    tokens.push(t.refresh_token);
  }
  return tokens;
}

/** A refresh at least this fraction of bare oidc-provider's, same store (issue 17). */
export const REFRESH_GOAL = 0.9;

export interface RefreshOptions {
  seconds?: number;
  rounds?: number;
  warmup?: number;
  chains?: number;
  /** Default both. */
  stores?: Array<'memory' | 'redis'>;
  /** Also measure refreshes that ask the partner every time. Default true. */
  checked?: boolean;
}

export async function refreshPart(options: RefreshOptions = {}): Promise<Section> {
  const seconds = options.seconds ?? 2;
  const rounds = options.rounds ?? 4;
  const warmup = options.warmup ?? 1;
  const chains = options.chains ?? 8;
  const redis = await benchRedis();
  const rows: Row[] = [];
  const figures: Record<string, number> = {};

  for (const store of options.stores ?? (['memory', 'redis'] as const)) {
    const url = store === 'memory' ? 'memory' : redis.url;
    const prefix = `bench-refresh-${randomBytes(3).toString('hex')}:`;
    const rigs: LoginRig[] = [];
    const bares: BenchChild[] = [];
    try {
      // Not due: revalidateAfter longer than the run. Checked: every refresh asks the partner, which issues refresh tokens.
      const unchecked = await startLoginRig({ store: url, storePrefix: `${prefix}a:`, users: chains, participant: { session: { revalidateAfter: '1h' } } });
      rigs.push(unchecked);
      const withChecked = options.checked !== false;
      const checked = withChecked ? await startLoginRig({ store: url, storePrefix: `${prefix}b:`, users: chains, participant: { session: { revalidateAfter: 0 } }, partnerRefreshTokens: true }) : undefined;
      if (checked) rigs.push(checked);
      // The same signatures as Concord's refresh for BENCH_RP: an ES256 access token (keys.accessTokenAlgorithm's
      // default) and an RS256 ID token (the client names no id_token_signed_response_alg: OIDC Registration 2).
      const bare = await startChild({ kind: 'bare', store: url, storePrefix: `${prefix}bare:`, algorithm: 'ES256', idTokenAlgorithm: 'RS256', client: MACHINE, mintRefreshTokens: chains });
      bares.push(bare);
      const targets: Partial<Record<'unchecked' | 'checked' | 'bare', Target>> & Record<'unchecked' | 'bare', Target> = {
        unchecked: { name: 'unchecked', url: unchecked.issuer, client: BENCH_RP, chains: await loginChains(unchecked, chains), children: [unchecked.concord] },
        ...(checked ? { checked: { name: 'checked', url: checked.issuer, client: BENCH_RP, chains: await loginChains(checked, chains), children: [checked.concord, checked.partner] } } : {}),
        bare: { name: 'bare', url: bare.url, client: MACHINE, chains: [...bare.refreshTokens], children: [bare] },
      };
      const names = Object.keys(targets) as Array<keyof typeof targets>;
      const target = (name: keyof typeof targets) => targets[name]!;
      for (const name of names) {
        const warm = await refreshLoad(target(name), warmup);
        if (warm.refreshes === 0) throw new Error(`${name}: no refresh succeeded (${warm.firstError})`);
      }
      const runs = Object.fromEntries(names.map((n) => [n, [] as RefreshRun[]])) as Record<keyof typeof targets, RefreshRun[]>;
      const cpu = Object.fromEntries(names.map((n) => [n, target(n).children.map(() => 0)])) as Record<keyof typeof targets, number[]>;
      for (let round = 0; round < rounds; round++) {
        for (const name of round % 2 === 0 ? names : [...names].reverse()) {
          const before = await Promise.all(target(name).children.map((c) => c.cpu()));
          runs[name].push(await refreshLoad(target(name), seconds));
          const after = await Promise.all(target(name).children.map((c) => c.cpu()));
          after.forEach((a, i) => (cpu[name][i]! += a.ms - before[i]!.ms));
        }
      }
      const summary = (name: keyof typeof targets) => {
        const all = runs[name];
        const refreshes = all.reduce((n, r) => n + r.refreshes, 0);
        const secs = all.reduce((n, r) => n + r.seconds, 0);
        const sorted = Float64Array.from(all.flatMap((r) => r.times)).sort();
        return {
          rate: refreshes / secs,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          failures: all.reduce((n, r) => n + r.failures, 0),
          firstError: all.find((r) => r.firstError)?.firstError,
          cpu: cpu[name].map((ms) => ms / Math.max(1, refreshes)),
        };
      };
      const [u, c, b] = [summary('unchecked'), checked ? summary('checked') : undefined, summary('bare')];
      const failed = (s: ReturnType<typeof summary>) => (s.failures ? `; ${s.failures} failed (${s.firstError})` : '');
      // The goal's figure: the median of the rounds' ratios (each round pair ran back to back).
      const perRound = runs.unchecked.map((r, i) => r.refreshes / r.seconds / (runs.bare[i]!.refreshes / runs.bare[i]!.seconds)).sort((x, y) => x - y);
      const medianRatio = perRound[Math.floor(perRound.length / 2)]!;
      figures[`refresh_${store}_ratio_median`] = medianRatio;
      rows.push({
        name: `refresh, Concord, ${store} store, re-check not due`,
        rate: u.rate,
        unit: 'refreshes/s',
        p50: u.p50,
        p99: u.p99,
        ratio: `${medianRatio.toFixed(2)} of bare`,
        note: `median of ${perRound.length} round ratios (over all rounds ${ratio(u.rate, b.rate)}); Concord ${fmtMs(u.cpu[0])} ms CPU/refresh (bare ${fmtMs(b.cpu[0])} ms)${failed(u)}`,
      });
      if (c) rows.push({
        name: `refresh, Concord, ${store} store, the partner asked at every refresh`,
        rate: c.rate,
        unit: 'refreshes/s',
        p50: c.p50,
        p99: c.p99,
        ratio: `${ratio(c.rate, b.rate)} of bare`,
        note: `Concord ${fmtMs(c.cpu[0])} ms, partner IdP ${fmtMs(c.cpu[1])} ms CPU/refresh${failed(c)}`,
      });
      rows.push({ name: `refresh, bare oidc-provider, ${store} store`, rate: b.rate, unit: 'refreshes/s', p50: b.p50, p99: b.p99, ratio: '1.00', note: `${fmtMs(b.cpu[0])} ms CPU/refresh${failed(b)}` });
      Object.assign(figures, {
        [`refresh_${store}_unchecked_rps`]: u.rate,
        ...(c ? { [`refresh_${store}_checked_rps`]: c.rate, [`refresh_${store}_checked_cpu_ms`]: c.cpu[0]!, [`refresh_${store}_checked_partner_cpu_ms`]: c.cpu[1]! } : {}),
        [`refresh_${store}_bare_rps`]: b.rate,
        [`refresh_${store}_unchecked_cpu_ms`]: u.cpu[0]!,
        [`refresh_${store}_bare_cpu_ms`]: b.cpu[0]!,
      });
    } finally {
      await Promise.all([...rigs.map((r) => r.stop()), ...bares.map((b) => b.stop())]);
    }
  }
  return {
    title: 'Refresh: Concord with and without an upstream re-check, vs bare oidc-provider',
    method:
      `POST /token grant_type=refresh_token (client_secret_basic), ${chains} chains refreshed back to back from this process (refresh tokens rotate: each chain uses the one it was last given); ` +
      `each server in its own child process. Concord's refresh tokens come from real brokered logins through a partner IdP (oidc-provider, its own child); ` +
      `"re-check not due" runs with session.revalidateAfter 1h, "asked at every refresh" with 0 against a partner that issues refresh tokens (its refresh grant, ID token and mapping each time). ` +
      `Bare oidc-provider has the same rotation, ES256 JWT access tokens, an RS256 ID token (as Concord signs BENCH_RP's), and the same store adapter; its refresh tokens are minted at start with a static account. ` +
      `${warmup} s warm-up each, then ${rounds} alternating rounds of ${seconds} s. CPU/refresh is each process's own CPU time divided by refreshes.`,
    rows,
    figures,
  };
}

if (import.meta.main) await runAlone(() => refreshPart());
