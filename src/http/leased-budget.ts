import { RateLimiterRes } from 'rate-limiter-flexible';

/*
 * A rate-limit budget shared by every instance through Redis, at a fraction of a round trip per
 * request. Each instance takes points from the shared counter in leases and spends them locally:
 * a lease is 1/16 of what the window has left (at least 1, at most 64 points), so a small budget
 * (tests, strict limits) is counted point by point, exactly as RateLimiterRedis counts it, and a
 * large one costs one script call per lease instead of one per request.
 *
 * Never more than the budget: points are taken from the shared counter before they are spent, so
 * all instances together allow at most `points` per window. The price is the other way: points
 * leased and not spent when the window ends are lost, so with N instances on one key the budget
 * may refuse up to N leases early (1/16 of what was left each) — only a key close to its budget on
 * several instances at once notices.
 *
 * The counter is the same key and fixed window as rate-limiter-flexible's RateLimiterRedis
 * (`{keyPrefix}:{key}`, created with the window's TTL by its first increment), so instances of an
 * earlier version, counting request by request, share it during a rolling upgrade.
 */

/** KEYS[1] counter, ARGV[1] points to take, ARGV[2] window seconds -> { consumed after, ms left in the window }. */
const LEASE_LUA = `
local consumed = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = -1
if consumed ~= tonumber(ARGV[1]) then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  ttl = 1000 * tonumber(ARGV[2])
end
return {consumed, ttl}`;

const COMMAND = 'concordLeaseBudget';
const MAX_LEASE = 64;
const LEASE_FRACTION = 16;

/** What of ioredis (standalone or Cluster) the budget uses. */
interface LeaseClient {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
}
type Leasing = { [COMMAND](key: string, points: number, seconds: number): Promise<[number, number]> };

interface Lease {
  /** Points leased and not spent yet. */
  left: number;
  /** Epoch ms when the shared window ends (the counter's TTL at the last lease). */
  resetAt: number;
  /** The shared counter after the last lease. */
  consumed: number;
}

export class LeasedBudget {
  readonly #client: Leasing;
  readonly #keyPrefix: string;
  readonly #points: number;
  readonly #seconds: number;
  readonly #leases = new Map<string, Lease>();
  #sweepAt = 0;

  /** `points` per `seconds` (a fixed window from the key's first point); counters are `{keyPrefix}:{key}`. */
  constructor(options: { client: LeaseClient; keyPrefix: string; points: number; seconds: number }) {
    const client = options.client as LeaseClient & Partial<Leasing>;
    if (typeof client[COMMAND] !== 'function') client.defineCommand(COMMAND, { numberOfKeys: 1, lua: LEASE_LUA });
    this.#client = client as unknown as Leasing;
    this.#keyPrefix = options.keyPrefix;
    this.#points = options.points;
    this.#seconds = options.seconds;
  }

  /**
   * Spends one point of `key`. Resolves when the request may go on; rejects with a RateLimiterRes
   * (its msBeforeNext: until the window ends) when the budget is spent, as RateLimiterRedis's
   * consume does; rejects with the client's error when Redis does not answer (callers fail open).
   */
  async consume(key: string): Promise<void> {
    if (this.spend(key)) return;
    const now = Date.now();
    const lease = this.#leases.get(key);
    const known = lease && now < lease.resetAt ? lease.consumed : 0;
    const size = Math.max(1, Math.min(MAX_LEASE, Math.floor((this.#points - known) / LEASE_FRACTION)));
    const [consumed, ttl] = await this.#client[COMMAND](`${this.#keyPrefix}:${key}`, size, this.#seconds);
    // Of the points taken, those still within the budget; the rest were already gone.
    const granted = Math.min(size, this.#points - (consumed - size));
    const resetAt = Date.now() + Number(ttl);
    if (granted <= 0) {
      this.#leases.set(key, { left: 0, resetAt, consumed });
      throw new RateLimiterRes(0, Number(ttl), consumed, false);
    }
    this.#leases.set(key, { left: granted - 1, resetAt, consumed });
  }

  /**
   * Spends one point of `key` from this instance's lease, without asking Redis: true when the lease
   * had one left in its window; false when a lease must be taken first (consume does).
   */
  spend(key: string): boolean {
    const now = Date.now();
    this.#sweep(now);
    const lease = this.#leases.get(key);
    if (lease === undefined || lease.left <= 0 || now >= lease.resetAt) return false;
    lease.left--;
    return true;
  }

  /** Drops leases whose window has ended, at most once a second (the map holds only live keys). */
  #sweep(now: number): void {
    if (now < this.#sweepAt) return;
    this.#sweepAt = now + 1000;
    for (const [key, lease] of this.#leases) if (now >= lease.resetAt) this.#leases.delete(key);
  }
}
