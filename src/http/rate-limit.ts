import type { Context, Next } from 'koa';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ConcordSettings } from '../config/index.ts';
import { showError } from '../pages/index.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import type { Store } from '../store/index.ts';
import { LeasedBudget } from './leased-budget.ts';
import type { CheckedRequest } from './request-limits.ts';
import { routeOf, type RouteName } from './route.ts';

/*
 * Rate limits (settings: `rateLimits`, documented in src/config/schema.ts). Which limit a request
 * counts against comes from its route (route.ts), so `/TOKEN` and `/token/` count as /token.
 *
 * Budgets (every request counts):
 *   token    POST /token, introspection, revocation, per client and source (the client_id of HTTP
 *            Basic or the form; an unknown client: per source); a partner IdP's back-channel logout
 *            (POST /broker/{id}/backchannel-logout), per source: a server's budget, not a browser's
 *   browser  /auth, /request (PAR), /auth/*, /interaction/*, /broker/*, the SAML ACS and SLO, per source: each of these
 *            can create state in the store (an interaction, a pushed request, a pending login)
 *   admin    /admin/v1/*, per source
 *
 * Credential failures (Keycloak-style brute-force protection), counted apart from the budgets:
 *   a wrong client secret or assertion (invalid_client), an unknown or spent code or refresh token
 *   (invalid_grant) on the client endpoints, per client and source; a wrong admin token (401), per
 *   source. After `credentialFailures.max` failures since the key's last success, the key is locked
 *   for `wait`, doubled at each further lock within `reset`, up to `maxWait`. A success clears the
 *   count. A locked key gets 429 with Retry-After before its request reaches oidc-provider or the
 *   admin API; the lock is logged and counted (concord_rate_limited_total{limit="credentials"} and
 *   {limit="admin_credentials"}, concord_credential_lockouts_total).
 *
 * With a Redis (or Redis Cluster) store the counters are Redis keys `{storePrefix}rl:{limit}:{key}`,
 * so every instance shares them; with the memory store each instance counts alone. The budgets take
 * their points from Redis in leases (leased-budget.ts: exact for small budgets, one script call per
 * lease for large ones, never more than the budget); the credential-failure count is read with one
 * GET per client request (its lock state with a PTTL only once it is at the limit), and a key found
 * without failures is not asked about again for a second: another instance's failures lock a key
 * here within a second, this instance's own at once.
 *
 * Fail open: when the limiter's store does not answer (Redis down, not ready, timed out) the request
 * goes on, and a warning is logged (at most every 30 s per limit). Rate limiting protects Concord; it
 * must not turn a Redis blip into refusing every login. Requests that need the store fail on their own.
 */

export type LimitName = 'token' | 'browser' | 'admin' | 'credentials' | 'admin_credentials';

export interface RateLimitsOptions {
  settings: Pick<ConcordSettings, 'rateLimits' | 'storePrefix'>;
  store: Store;
  log: Logger;
  /** Whether a client_id names a registered client (unknown ones are limited per IP, not per made-up id). */
  knownClient(clientId: string): boolean;
  metrics?: Pick<Metrics, 'rateLimited' | 'rateLimiterFailures'> & Partial<Pick<Metrics, 'credentialLockouts'>>;
}

export interface RateLimits {
  /** For the public app, after the request edge check (it reads the /token form the check parsed). */
  public(ctx: Context, next: Next): Promise<void>;
  /** For the admin app: limits /admin/v1/* and the console's token sign-in (not /metrics, not the rest of the console). */
  admin(ctx: Context, next: Next): Promise<void>;
}

/** Where a store keeps its ioredis client (RedisStore.client); timedStore's proxy passes it through. */
type RedisBacked = Store & { client: object };
const redisClientOf = (store: Store) => (store.kind !== 'memory' && 'client' in store ? (store as RedisBacked).client : undefined);

const FAIL_OPEN_LOG_EVERY_MS = 30_000;
/** How long a key found without credential failures is not asked about again: ms. */
const CLEAN_CACHE_MS = 1000;
/** Bound of that cache (keys); cleared when full. */
const CLEAN_CACHE_MAX = 10_000;

/** A key's failures since its last success; `wait`: seconds it is still locked, when it is. */
interface Lock {
  failures: number;
  wait?: number;
}
const CLEAN: Lock = Object.freeze({ failures: 0 });

/** Routes whose callers authenticate as a client: their failures are credential failures. */
const CLIENT_ROUTES: ReadonlySet<RouteName> = new Set(['token', 'introspection', 'revocation', 'pushed_authorization_request']);
/** Routes that count against the per-source browser budget: each can create state in the store. */
const BROWSER_ROUTES: ReadonlySet<RouteName> = new Set(['authorization', 'pushed_authorization_request', 'resume', 'interaction', 'interaction_login', 'interaction_consent', 'interaction_abort', 'interaction_callback', 'broker_callback', 'broker', 'saml_acs', 'saml_slo']);

/** The OAuth error of a JSON answer oidc-provider gave, if any. */
const oauthError = (ctx: Context) => (ctx.body && typeof ctx.body === 'object' && 'error' in ctx.body ? String((ctx.body as { error: unknown }).error) : undefined);

export function createRateLimits(options: RateLimitsOptions): RateLimits {
  const { rateLimits, storePrefix } = options.settings;
  const client = redisClientOf(options.store);
  if (rateLimits.enabled && !client) options.log.info('rate limits are counted per instance (memory store)');
  const failures = rateLimits.credentialFailures;

  const limiter = (name: string, points: number, duration: number): RateLimiterAbstract => {
    if (client) {
      return new RateLimiterRedis({
        storeClient: client,
        // ioredis is the default client kind (useRedisPackage is for the `redis` package).
        keyPrefix: `${storePrefix}rl:${name}`,
        points,
        duration,
        // Answer at once while the connection is down instead of waiting for a timeout.
        rejectIfRedisNotReady: true,
      });
    }
    return new RateLimiterMemory({ keyPrefix: name, points, duration });
  };
  /**
   * A budget's point for `key`: undefined when it was spent at once (a lease with points left), else
   * a promise that resolves when the request may go on and rejects with a RateLimiterRes when the
   * budget is spent, or with the store's error (callers fail open).
   */
  type Budget = { take(key: string): Promise<unknown> | undefined };
  const budget = (name: 'token' | 'browser' | 'admin'): Budget => {
    const { points, duration } = rateLimits[name];
    if (!client) {
      const memory = limiter(name, points, duration);
      return { take: (key) => memory.consume(key) };
    }
    const leased = new LeasedBudget({ client: client as ConstructorParameters<typeof LeasedBudget>[0]['client'], keyPrefix: `${storePrefix}rl:${name}`, points, seconds: duration });
    // Answer at once while the connection is down (as rejectIfRedisNotReady) instead of waiting for a timeout.
    const ready = client as { status?: string };
    return {
      take(key) {
        if (ready.status !== undefined && ready.status !== 'ready') return Promise.reject(new Error('Redis is not ready'));
        return leased.spend(key) ? undefined : leased.consume(key);
      },
    };
  };
  const limiters: Record<'token' | 'browser' | 'admin', Budget> = { token: budget('token'), browser: budget('browser'), admin: budget('admin') };
  // Failures since the last success; a lock is a block() on this limiter. Strikes: locks within `reset`.
  const failed = limiter('fail', failures.max, failures.reset);
  const strikes = limiter('strike', 1_000_000, failures.reset);
  const lastWarning = new Map<string, number>();
  /**
   * Keys whose failure count the store answered empty, until when (epoch ms): a client's every token
   * request does not ask again within CLEAN_CACHE_MS. This instance's own failures count at once
   * (settle drops the entry); another instance's (Redis) reach it within CLEAN_CACHE_MS.
   */
  const cleanUntil = new Map<string, number>();

  function failOpen(name: string, error: unknown): void {
    options.metrics?.rateLimiterFailures.inc({ limit: name });
    const now = Date.now();
    if (now - (lastWarning.get(name) ?? 0) >= FAIL_OPEN_LOG_EVERY_MS) {
      lastWarning.set(name, now);
      options.log.warn({ limit: name, err: error }, 'rate limiter unavailable: letting requests through (fail open)');
    }
  }

  const limited = (ctx: Context, name: LimitName, key: string, msBeforeNext: number) => {
    options.metrics?.rateLimited.inc({ limit: name });
    (ctx.state.log ?? options.log).warn({ limit: name, key: redact(key) }, 'rate limited');
    return Math.max(1, Math.ceil(msBeforeNext / 1000));
  };

  /**
   * The seconds to wait when limited; undefined when the request may go on (also when the limiter
   * failed). At once (not a promise) when the budget's point was spent without asking the store.
   */
  function consume(ctx: Context, name: 'token' | 'browser' | 'admin', key: string): number | undefined | Promise<number | undefined> {
    const refused = (outcome: unknown) => {
      if (outcome instanceof RateLimiterRes) return limited(ctx, name, key, outcome.msBeforeNext);
      failOpen(name, outcome);
      return undefined;
    };
    return limiters[name].take(key)?.then(() => undefined, refused);
  }

  /**
   * The failure count of a key (RateLimiterRedis's get, in one GET instead of MULTI GET PTTL: the
   * time left matters only once the key is at its limit).
   */
  async function failureState(key: string): Promise<{ consumedPoints: number; msBeforeNext: number } | null> {
    const now = Date.now();
    const clean = () => {
      if (cleanUntil.size >= CLEAN_CACHE_MAX) cleanUntil.clear();
      cleanUntil.set(key, now + CLEAN_CACHE_MS);
      return null;
    };
    if (!client) return (await failed.get(key)) ?? clean();
    const redis = client as { get(key: string): Promise<string | null>; pttl(key: string): Promise<number> };
    const rlKey = failed.getKey(key);
    const raw = await redis.get(rlKey);
    if (raw === null) return clean();
    const consumedPoints = Number(raw);
    if (!(consumedPoints >= failures.max)) return { consumedPoints, msBeforeNext: 0 };
    return { consumedPoints, msBeforeNext: Math.max(0, await redis.pttl(rlKey)) };
  }

  /**
   * The key's failures since its last success, and the seconds it still waits when locked. At once
   * (not a promise) for a key known clean (cleanUntil).
   */
  function locked(ctx: Context, name: 'credentials' | 'admin_credentials', key: string): Lock | Promise<Lock> {
    return (cleanUntil.get(key) ?? 0) > Date.now() ? CLEAN : lockOf(ctx, name, key);
  }

  async function lockOf(ctx: Context, name: 'credentials' | 'admin_credentials', key: string): Promise<Lock> {
    try {
      const state = await failureState(key);
      if (!state) return { failures: 0 };
      if (state.consumedPoints < failures.max) return { failures: state.consumedPoints };
      return { failures: state.consumedPoints, wait: limited(ctx, name, key, state.msBeforeNext) };
    } catch (error) {
      failOpen(name, error);
      return { failures: 0 };
    }
  }

  /** Counts the request's outcome against its key: a failure may lock it, a success clears its failures. */
  async function settle(ctx: Context, name: 'credentials' | 'admin_credentials', key: string, failure: boolean, earlier: number): Promise<void> {
    if (failure) cleanUntil.delete(key);
    try {
      if (!failure) {
        if (ctx.status < 400 && earlier > 0) await failed.delete(key);
        return;
      }
      const state = await failed.penalty(key, 1);
      if (state.consumedPoints < failures.max) return;
      const strike = await strikes.penalty(key, 1);
      const wait = Math.min(failures.maxWait, failures.wait * 2 ** Math.min(strike.consumedPoints - 1, 30));
      await failed.block(key, wait);
      options.metrics?.credentialLockouts?.inc({ limit: name });
      (ctx.state.log ?? options.log).warn({ limit: name, key: redact(key), failures: failures.max, lock: strike.consumedPoints, waitSeconds: wait }, 'credential failures: locked out');
    } catch (error) {
      failOpen(name, error);
    }
  }

  const ipKey = (ctx: Context) => `ip:${ctx.ip || 'unknown'}`;

  function clientKey(ctx: Context): string {
    const fromBasic = basicClientId(ctx.get('authorization'));
    const form = (ctx.state.checked as CheckedRequest | undefined)?.form;
    const clientId = fromBasic ?? form?.get('client_id')?.[0];
    // Per client *and* source: the client_id is public and not yet authenticated here, so a bucket
    // per client alone would let anyone exhaust a client's budget with wrong secrets.
    return clientId && options.knownClient(clientId) ? `client:${clientId}:${ipKey(ctx)}` : ipKey(ctx);
  }

  function tooMany(ctx: Context, retryAfter: number, json: boolean): void {
    ctx.set('Retry-After', String(retryAfter));
    ctx.set('Cache-Control', 'no-store');
    if (json) {
      ctx.status = 429;
      ctx.body = { error: 'rate_limited', error_description: `too many requests; retry after ${retryAfter} s` };
      return;
    }
    showError(ctx, 'rate_limited');
  }

  return {
    async public(ctx, next) {
      if (!rateLimits.enabled) return next();
      const route = routeOf(ctx)?.name;
      const credentialRoute = route !== undefined && CLIENT_ROUTES.has(route) && ctx.method === 'POST';
      const key = credentialRoute ? clientKey(ctx) : ipKey(ctx);
      // Both checks answer at once, without a promise to wait for, when they need not ask the store
      // (a key known clean, a lease with points left): most token requests wait for neither.
      const lock = credentialRoute ? locked(ctx, 'credentials', key) : undefined;
      const before = lock instanceof Promise ? await lock : lock;
      if (before?.wait !== undefined) return tooMany(ctx, before.wait, true);
      const name =
        (credentialRoute && route !== 'pushed_authorization_request') || route === 'broker_backchannel_logout' ? 'token' : route !== undefined && BROWSER_ROUTES.has(route) ? 'browser' : undefined;
      if (name) {
        const spent = consume(ctx, name, name === 'token' ? key : ipKey(ctx));
        const retryAfter = spent instanceof Promise ? await spent : spent;
        if (retryAfter !== undefined) return tooMany(ctx, retryAfter, name === 'token' || route === 'pushed_authorization_request');
      }
      await next();
      if (before) {
        const error = oauthError(ctx);
        // A refresh refused because the session ended upstream (src/sessions) is no guess at a credential.
        const guessed = error === 'invalid_client' || (error === 'invalid_grant' && ctx.state.sessionEnded !== true);
        // A success of a key without failures changes nothing.
        if (guessed || before.failures > 0) await settle(ctx, 'credentials', key, guessed, before.failures);
      }
    },

    async admin(ctx, next) {
      // The console's break-glass sign-in takes the same token: the same budget and lock-out.
      const breakGlass = ctx.path === '/console/login/token' && ctx.method === 'POST';
      if (!rateLimits.enabled || !(breakGlass || ctx.path === '/admin/v1' || ctx.path.startsWith('/admin/v1/'))) return next();
      // Per source address: keyed by the presented token, every wrong guess would get a fresh budget.
      const key = ipKey(ctx);
      const before = await locked(ctx, 'admin_credentials', key);
      const retryAfter = before.wait ?? (await consume(ctx, 'admin', key));
      if (retryAfter !== undefined) {
        ctx.status = 429;
        ctx.set('Retry-After', String(retryAfter));
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'rate_limited', message: `too many requests; retry after ${retryAfter} s` };
        return;
      }
      await next();
      await settle(ctx, 'admin_credentials', key, ctx.status === 401, before.failures);
    },
  };
}

/** The client_id of `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 2.3.1), cheaply. */
export function basicClientId(header: string): string | undefined {
  const match = /^Basic[ ]+([A-Za-z0-9+/=]{4,1024})\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Keys in logs: client ids and IPs as they are, token digests shortened. */
const redact = (key: string) => (key.startsWith('token:') ? `${key.slice(0, 14)}…` : key);
