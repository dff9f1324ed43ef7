import type { Context, Next } from 'koa';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ConcordSettings } from '../config/index.ts';
import { showError } from '../interactions/index.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import type { Store } from '../store/index.ts';
import type { CheckedRequest } from './request-limits.ts';

/*
 * Rate limits (settings: `rateLimits`, documented in src/config/schema.ts):
 *   token    POST /token, per client (HTTP Basic client_id, else the form's; an unknown client: per IP)
 *   browser  /auth, /interaction/*, /broker/*, per client IP (ctx.ip: X-Forwarded-For with trustProxy)
 *   admin    /admin/v1/*, per bearer token (its SHA-256, never the token; no token: per IP)
 *
 * With a Redis (or Redis Cluster) store the counters are Redis keys `{storePrefix}rl:{limit}:{key}`,
 * one key per command, so every instance shares them; with the memory store each instance counts alone.
 *
 * Fail open: when the limiter's store does not answer (Redis down, not ready, timed out) the request
 * goes on, and a warning is logged (at most every 30 s per limit). Rate limiting protects Concord; it
 * must not turn a Redis blip into refusing every login. Requests that need the store fail on their own.
 */

export type LimitName = 'token' | 'browser' | 'admin';

export interface RateLimitsOptions {
  settings: Pick<ConcordSettings, 'rateLimits' | 'storePrefix'>;
  store: Store;
  log: Logger;
  /** Whether a client_id names a registered client (unknown ones are limited per IP, not per made-up id). */
  knownClient(clientId: string): boolean;
  metrics?: Pick<Metrics, 'rateLimited' | 'rateLimiterFailures'>;
}

export interface RateLimits {
  /** For the public app, after the request edge check (it reads the /token form the check parsed). */
  public(ctx: Context, next: Next): Promise<void>;
  /** For the admin app: limits /admin/v1/* only (not /metrics). */
  admin(ctx: Context, next: Next): Promise<void>;
}

/** Where a store keeps its ioredis client (RedisStore.client); timedStore's proxy passes it through. */
type RedisBacked = Store & { client: object };
const redisClientOf = (store: Store) => (store.kind !== 'memory' && 'client' in store ? (store as RedisBacked).client : undefined);

const FAIL_OPEN_LOG_EVERY_MS = 30_000;

export function createRateLimits(options: RateLimitsOptions): RateLimits {
  const { rateLimits, storePrefix } = options.settings;
  const client = redisClientOf(options.store);
  if (rateLimits.enabled && !client) options.log.info('rate limits are counted per instance (memory store)');

  const limiter = (name: LimitName): RateLimiterAbstract => {
    const { points, duration } = rateLimits[name];
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
  const limiters: Record<LimitName, RateLimiterAbstract> = { token: limiter('token'), browser: limiter('browser'), admin: limiter('admin') };
  const lastWarning: Record<LimitName, number> = { token: 0, browser: 0, admin: 0 };

  /** The seconds to wait when limited; undefined when the request may go on (also when the limiter failed). */
  async function consume(ctx: Context, name: LimitName, key: string): Promise<number | undefined> {
    try {
      await limiters[name].consume(key);
      return undefined;
    } catch (outcome) {
      if (outcome instanceof RateLimiterRes) {
        options.metrics?.rateLimited.inc({ limit: name });
        (ctx.state.log ?? options.log).warn({ limit: name, key: redact(key) }, 'rate limited');
        return Math.max(1, Math.ceil(outcome.msBeforeNext / 1000));
      }
      options.metrics?.rateLimiterFailures.inc({ limit: name });
      const now = Date.now();
      if (now - lastWarning[name] >= FAIL_OPEN_LOG_EVERY_MS) {
        lastWarning[name] = now;
        options.log.warn({ limit: name, err: outcome }, 'rate limiter unavailable: letting requests through (fail open)');
      }
      return undefined;
    }
  }

  const ipKey = (ctx: Context) => `ip:${ctx.ip || 'unknown'}`;

  function tokenKey(ctx: Context): string {
    const fromBasic = basicClientId(ctx.get('authorization'));
    const form = (ctx.state.checked as CheckedRequest | undefined)?.form;
    const clientId = fromBasic ?? form?.get('client_id')?.[0];
    // Per client *and* source: the client_id is public and not yet authenticated here, so a bucket
    // per client alone would let anyone exhaust a client's budget with wrong secrets.
    return clientId && options.knownClient(clientId) ? `client:${clientId}:${ipKey(ctx)}` : ipKey(ctx);
  }

  function browserRoute(path: string): boolean {
    return path === '/auth' || path.startsWith('/auth/') || path.startsWith('/interaction/') || path.startsWith('/broker/');
  }

  return {
    async public(ctx, next) {
      if (!rateLimits.enabled) return next();
      const name: LimitName | undefined = ctx.path === '/token' && ctx.method === 'POST' ? 'token' : browserRoute(ctx.path) ? 'browser' : undefined;
      if (!name) return next();
      const retryAfter = await consume(ctx, name, name === 'token' ? tokenKey(ctx) : ipKey(ctx));
      if (retryAfter === undefined) return next();
      ctx.set('Retry-After', String(retryAfter));
      ctx.set('Cache-Control', 'no-store');
      if (name === 'token') {
        ctx.status = 429;
        ctx.body = { error: 'rate_limited', error_description: `too many requests; retry after ${retryAfter} s` };
        return;
      }
      showError(ctx, 'rate_limited');
    },

    async admin(ctx, next) {
      if (!rateLimits.enabled || !(ctx.path === '/admin/v1' || ctx.path.startsWith('/admin/v1/'))) return next();
      // Per source address: keyed by the presented token, every wrong guess would get a fresh budget.
      const key = ipKey(ctx);
      const retryAfter = await consume(ctx, 'admin', key);
      if (retryAfter === undefined) return next();
      ctx.status = 429;
      ctx.set('Retry-After', String(retryAfter));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'rate_limited', message: `too many requests; retry after ${retryAfter} s` };
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
