import { createHash } from 'node:crypto';
import { Cluster, Redis, ReplyError as ReplyErrorClass, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConcordError } from '../errors.ts';
import { StoreUnavailableError } from './errors.ts';
import type { StoreOptions } from './factory.ts';
import { RecentIds } from './recent-ids.ts';
import { RedisKeys } from './redis-keys.ts';
import { deferWrite, noteDestroyed, noteSessionId, requestLocal, requestReads, sessionIdOf, takeDeferredWrites } from './request-reads.ts';
import type { Adapter, AdapterPayload, LogEntry, Store } from './types.ts';

/**
 * The Redis backend, standalone or Cluster (ioredis). Key layout: see redis-keys.ts.
 *
 * Cluster safety: every command and every Lua script touches exactly one key, so no operation
 * crosses a slot. What spans keys (an adapter upsert writes its payload and its indexes) is a
 * sequence of single-key steps ordered so a failure in the middle leaves nothing unrevocable.
 *
 * Failure: no offline queue, no retries of a request, connect and command timeouts; a request
 * while Redis is away fails at once with StoreUnavailableError. The client reconnects on its own
 * (capped backoff) and pub/sub subscriptions are restored when it does.
 */

export interface RedisStoreOptions extends StoreOptions {
  /** Timeout of one connection attempt. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Timeout of one command (a hung Redis). Default 2000 ms. */
  commandTimeoutMs?: number;
  /** How long createRedisStore waits for the first connection. Default 10000 ms. */
  startupTimeoutMs?: number;
  /** Longest pause between reconnection attempts. Default 2000 ms. */
  maxReconnectDelayMs?: number;
}

type Client = Redis | Cluster;

const DEFAULT_TTL_SECONDS = 14 * 24 * 3600; // as memory.ts, when oidc-provider gives no expiresIn

/**
 * How many entries each of an instance's hints keeps (RedisStore.sessionIds, refreshTokenHints): the
 * sessions and refresh tokens it saw last, measured at 2 MB and 3.4 MB of heap (200 and 340 bytes an
 * entry). A refresh of one of them saves a round trip or two; of another, it reads as without them.
 */
const HINTS = 10_000;

/** Error replies that mean "not now" rather than "wrong command" (MOVED/ASK: a Cluster slot map changing under a pipelined request, during a failover). */
const TRANSIENT_REPLY = /^(CLUSTERDOWN|LOADING|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|READONLY|MOVED|ASK)\b/;

/** ioredis types ReplyError as `any`; this narrows. */
const isReplyError = (err: unknown): err is Error => err instanceof (ReplyErrorClass as typeof Error);

function unavailable(err: unknown): boolean {
  if (isReplyError(err)) return TRANSIENT_REPLY.test(err.message);
  // Everything else ioredis rejects with is about the connection: closed, not writable, timed out,
  // cluster not ready, too many redirections, max retries, aborted.
  // Our own mistakes (TypeError and the like) are not the backend's unavailability.
  return err instanceof Error && !(err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError);
}

const serialize = (value: unknown): string => JSON.stringify(value) ?? 'null';
const deserialize = <T>(raw: string | null | undefined): T | undefined => (raw == null ? undefined : (JSON.parse(raw) as T));
const nowSeconds = () => Math.floor(Date.now() / 1000);
const ms = (seconds: number) => Math.max(1, Math.round(seconds * 1000));

class Script {
  readonly source: string;
  readonly sha: string;
  constructor(source: string) {
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/**
 * Marks a payload consumed (KEYS[1], ARGV[1] = epoch seconds), only when it exists, so a consume
 * never creates a key without TTL; the TTL is kept. A payload is a STRING (see RedisAdapter); one
 * written as a HASH before ({payload, consumed}) gets its `consumed` field as then.
 */
const CONSUME = new Script(`
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' and v.err then
  redis.call('HSET', KEYS[1], 'consumed', ARGV[1])
  return 1
end
if not v then return 0 end
if string.sub(v, 1, 1) == 'c' then v = string.sub(v, string.find(v, '|', 1, true) + 1) end
redis.call('SET', KEYS[1], 'c' .. ARGV[1] .. '|' .. v, 'KEEPTTL')
return 1`);

/**
 * Adds `member` to the set `key` and makes the set live at least `ttlMs` from now, never shorter:
 * the member's add (setAddOne), then `PEXPIRE NX` (a set with no lifetime yet, so one just created,
 * gets this one), then `PEXPIRE GT` (one with a shorter lifetime is lengthened; GT alone would leave
 * a new set without any, as it counts a key without TTL as infinite). Three single-key commands
 * issued together (one write on the connection, pipelined with the request's other commands), no
 * script: PEXPIRE's NX and GT need Redis 7.0, which createRedisStore checks. Of concurrent adds,
 * each one's GT runs after its own NX, so the set ends at least as late as every add asked. A set
 * without a lifetime (written before sets had one, in this repository's first hours) gets this one.
 * Not atomic as the script before was: a set whose lifetime ends in the microseconds between the add
 * and the PEXPIREs takes the member with it; a set ends only once its newest member's lifetime is over.
 * `oldMember`: the member as a SET written before holds it (the grant index's full key), when it differs.
 */
function setAdd(store: RedisStore, key: string, member: string, ttlMs: number, oldMember = member): Promise<void> {
  return Promise.all([setAddOne(store, key, [member], [oldMember]), store.run((c) => Promise.all([c.pexpire(key, ttlMs, 'NX'), c.pexpire(key, ttlMs, 'GT')]))]).then(() => undefined);
}

/** Whether a reply is Redis's WRONGTYPE: the key holds another type (an index as a SET written before, where a HASH is written now). */
const wrongType = (err: unknown): boolean => isReplyError(err) && err.message.startsWith('WRONGTYPE');

/**
 * Adds members to an index set as Redis holds it: a HASH of member -> '' (a small one is a listpack,
 * 184 bytes for one member of 45 characters where Redis 7.0 makes a SET of strings a hashtable of
 * 296: sets of strings became listpacks only in 7.2); one written before as a SET (WRONGTYPE to
 * HSET) gets an SADD of `oldMembers`, the members as that form holds them, and stays a SET until it
 * expires or is deleted. Those are sent after the records of this request that were issued with the
 * HSET (on one connection, the HSET's answer comes first): a record may be there a round trip before
 * its entry in an index written before the upgrade, as when two requests race.
 */
function setAddOne(store: RedisStore, key: string, members: string[], oldMembers: string[] = members): Promise<void> {
  const fields = members.flatMap((m) => [m, '']);
  return store.run((c) => c.hset(key, ...fields)).then(
    () => undefined,
    (err: unknown) => {
      if (!wrongType(err)) throw err;
      return store.run((c) => c.sadd(key, ...oldMembers)).then(() => undefined);
    },
  );
}

/** An index set's members, whatever form it was written in (a HASH's fields; a SET's members, written before). */
function setRead(store: RedisStore, key: string): Promise<string[]> {
  return store.run((c) => c.hkeys(key)).catch((err: unknown) => {
    if (!wrongType(err)) throw err;
    return store.run((c) => c.smembers(key));
  });
}

/** Set adds made in a request (requestLocal): set key + member -> until when (epoch ms) it made the set live, and its write. */
const setAdds = requestLocal(() => new Map<string, { until: number; written: Promise<void> }>());
/** How much shorter than asked a set's lifetime may end when an add is answered by an earlier one of the same request. */
const SET_ADD_SLACK_MS = 1000;

/**
 * Sets a request made live (requestLocal): set key -> until when (epoch ms) its setAdd made the set
 * live, and that write. Another member added to such a set, asking no later an end, needs no GT.
 */
const setLives = requestLocal(() => new Map<string, { until: number; written: Promise<void> }>());

/** After a removal in this request, an add of the same member (any member, without one) is sent again, and any add to the set in full (a removal may have emptied it: Redis deletes an empty set, lifetime and all). */
function forgetSetAdds(key: string, member?: string): void {
  setLives.peek()?.delete(key);
  const adds = setAdds.peek();
  if (!adds) return;
  if (member !== undefined) adds.delete(`${key}\n${member}`);
  else for (const id of adds.keys()) if (id.startsWith(`${key}\n`)) adds.delete(id);
}

/** One page of a log: { first seq, entries oldest first }. ARGV: before ('' = none), limit. */
const PAGE = new Script(`
local len = redis.call('LLEN', KEYS[1])
local before = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local last = len
if before ~= nil and before - 1 < last then last = before - 1 end
if last < 1 or limit < 1 then return {0, {}} end
local first = last - limit + 1
if first < 1 then first = 1 end
return {first, redis.call('LRANGE', KEYS[1], first - 1, last - 1)}`);

/**
 * Reads and deletes a grant index (KEYS[1]) in one step, whatever its form: `{type, members}`, the
 * fields of a HASH (today's), the members of a SET (written before), `{'none', {}}` when there is none.
 */
const TAKE_INDEX = new Script(`
local t = redis.call('TYPE', KEYS[1]).ok
local m = {}
if t == 'hash' then m = redis.call('HKEYS', KEYS[1]) elseif t == 'set' then m = redis.call('SMEMBERS', KEYS[1]) end
if t ~= 'none' then redis.call('DEL', KEYS[1]) end
return {t, m}`);

interface ChannelState {
  handlers: Set<{ fn: (message: string) => void }>;
  subscribed: Promise<void>;
}

export class RedisStore implements Store {
  readonly kind: 'redis' | 'redis-cluster' | 'redis-sentinel';
  /** The raw ioredis client (rate limiting uses it). Commands on it fail fast while Redis is away. */
  readonly client: Redis | Cluster;
  readonly keys: RedisKeys;
  /**
   * oidc-provider Sessions' ids by uid, as this instance last saved or read them: a hint, checked
   * where it is used (RedisAdapter findByUid), so a refresh reads its token's Session by id in the
   * round trip that reads the grant, instead of the uid index first (see RedisAdapter #readAhead).
   */
  readonly sessionIds = new RecentIds(HINTS);
  /**
   * Refresh tokens this instance saved, by stored id (the keyed hash, never the token): their grant,
   * session uid and whether they end with that session (refreshTokenHint). A rotating chain's next
   * refresh here reads its grant, its Session and its session's records in the round trip that
   * reads the token (see RedisAdapter find); what it read ahead counts only when the token names it.
   */
  readonly refreshTokenHints = new RecentIds(HINTS);
  #sessionReader: ((sessionUid: string) => void) | undefined;
  readonly #timeoutMs: number;
  readonly #adapters = new Map<string, RedisAdapter>();
  readonly #channels = new Map<string, ChannelState>();
  #subscriber: Promise<Client> | undefined;
  #lastError: unknown;
  #closed = false;

  constructor(client: Client, options: { prefix?: string; timeoutMs?: number } = {}) {
    this.client = client;
    this.kind = client instanceof Cluster ? 'redis-cluster' : client.options.sentinels?.length ? 'redis-sentinel' : 'redis';
    this.keys = new RedisKeys(options.prefix);
    this.#timeoutMs = options.timeoutMs ?? 2000;
    client.on('error', (err: unknown) => {
      this.#lastError = err;
    });
  }

  adapter(name: string): Adapter {
    let adapter = this.#adapters.get(name);
    if (!adapter) {
      adapter = new RedisAdapter(name, this);
      this.#adapters.set(name, adapter);
    }
    return adapter;
  }

  /** Runs one request against Redis; connection trouble becomes StoreUnavailableError. */
  async run<T>(request: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await request(this.client);
    } catch (err) {
      if (this.#closed) throw new StoreUnavailableError('The session store is closed', err);
      if (unavailable(err)) throw new StoreUnavailableError(undefined, err);
      throw err;
    }
  }

  /** EVALSHA, loading the script on the node that owns the key the first time. */
  async script(script: Script, key: string, ...args: Array<string | number>): Promise<unknown> {
    return this.run(async (client) => {
      try {
        return await client.evalsha(script.sha, 1, key, ...args);
      } catch (err) {
        if (isReplyError(err) && err.message.startsWith('NOSCRIPT')) return client.eval(script.source, 1, key, ...args);
        throw err;
      }
    });
  }

  // records --------------------------------------------------------------------------------------

  async getRecord<T>(collection: string, id: string): Promise<T | undefined> {
    return deserialize<T>(await this.run((c) => c.hget(this.keys.record(collection), id)));
  }

  async putRecord<T>(collection: string, id: string, value: T): Promise<void> {
    await this.run((c) => c.hset(this.keys.record(collection), id, serialize(value)));
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    return (await this.run((c) => c.hdel(this.keys.record(collection), id))) > 0;
  }

  async listRecords<T>(collection: string): Promise<Array<{ id: string; value: T }>> {
    const all = await this.run((c) => c.hgetall(this.keys.record(collection)));
    return Object.entries(all).map(([id, raw]) => ({ id, value: JSON.parse(raw) as T }));
  }

  // temp -----------------------------------------------------------------------------------------

  async setTemp<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    const k = this.keys.temp(key);
    if (!(ttlSeconds > 0)) {
      // Already expired, as in memory.ts.
      await this.run((c) => c.del(k));
      return;
    }
    await this.run((c) => c.set(k, serialize(value), 'PX', ms(ttlSeconds)));
  }

  async getTemp<T>(key: string): Promise<T | undefined> {
    return deserialize<T>(await this.run((c) => c.get(this.keys.temp(key))));
  }

  async setBytes(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    const k = this.keys.temp(key);
    if (!(ttlSeconds > 0)) await this.run((c) => c.del(k));
    else await this.run((c) => c.set(k, value, 'PX', ms(ttlSeconds)));
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    return (await this.run((c) => c.getBuffer(this.keys.temp(key)))) ?? undefined;
  }

  async expireTemp(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run((c) => c.pexpire(this.keys.temp(key), Math.max(1, ms(ttlSeconds))))) === 1;
  }

  async takeTemp<T>(key: string): Promise<T | undefined> {
    // GETDEL (Redis >= 6.2) is atomic on its one key.
    return deserialize<T>(await this.run((c) => c.getdel(this.keys.temp(key))));
  }

  async swapTemp<T, R = T>(key: string, value: R, ttlSeconds: number): Promise<T | undefined> {
    const k = this.keys.temp(key);
    // SET ... GET (Redis >= 6.2) is atomic on its one key; a lifetime of 0 or less takes (GETDEL), as setTemp deletes.
    if (!(ttlSeconds > 0)) return deserialize<T>(await this.run((c) => c.getdel(k)));
    return deserialize<T>(await this.run((c) => c.set(k, serialize(value), 'PX', ms(ttlSeconds), 'GET')));
  }

  async claimTemp<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    if (!(ttlSeconds > 0)) return false;
    // SET NX is atomic on its one key.
    return (await this.run((c) => c.set(this.keys.temp(key), serialize(value), 'PX', ms(ttlSeconds), 'NX'))) === 'OK';
  }

  async deleteTemp(key: string): Promise<void> {
    await this.run((c) => c.del(this.keys.temp(key)));
  }

  // counters -------------------------------------------------------------------------------------

  async incr(key: string): Promise<number> {
    return this.run((c) => c.incr(this.keys.counter(key)));
  }

  async getCounter(key: string): Promise<number> {
    const raw = await this.run((c) => c.get(this.keys.counter(key)));
    return raw === null ? 0 : Number(raw);
  }

  // logs -----------------------------------------------------------------------------------------

  async append<T>(log: string, entry: T): Promise<number> {
    // RPUSH answers the new length, which is the entry's seq: atomic, no separate counter.
    return this.run((c) => c.rpush(this.keys.log(log), serialize(entry)));
  }

  async page<T>(log: string, opts: { before?: number; limit: number }): Promise<Array<LogEntry<T>>> {
    const before = opts.before === undefined ? '' : Math.ceil(opts.before);
    const limit = Math.ceil(opts.limit);
    const [first, raw] = (await this.script(PAGE, this.keys.log(log), before, limit)) as [number, string[]];
    const out: Array<LogEntry<T>> = raw.map((r, i) => ({ seq: first + i, entry: JSON.parse(r) as T }));
    return out.reverse();
  }

  // sets -----------------------------------------------------------------------------------------

  async addToSet(key: string, member: string, ttlSeconds?: number): Promise<void> {
    const k = this.keys.set(key);
    if (ttlSeconds === undefined) {
      await setAddOne(this, k, [member]);
      return;
    }
    // Within one request, the same member added again to a set this request already made live as
    // long (within SET_ADD_SLACK_MS) is not sent again, only waited for: oidc-provider's Session and
    // Concord's session record index the same session in one response (sessions/oidc-index.ts).
    const id = `${k}\n${member}`;
    const until = Date.now() + ttlSeconds * 1000;
    const earlier = setAdds.peek()?.get(id);
    if (earlier && earlier.until >= until - SET_ADD_SLACK_MS) return earlier.written;
    // Another member of a set this request already made live as long (an account's Grant, then its
    // Session, into sessions-of-account at the resume): the add (HSET) and PEXPIRE NX, no GT. They are issued
    // after that add's PEXPIREs on the same connection (the key's node on a Cluster), so the set they
    // join has that lifetime; NX gives one to a set that was emptied (another request's SREM: Redis
    // deletes it) and made again by this add. The write is known done only with the earlier one.
    const live = setLives.peek()?.get(k);
    const written =
      live && live.until >= until - SET_ADD_SLACK_MS
        ? Promise.all([live.written, setAddOne(this, k, [member]), this.run((c) => c.pexpire(k, ms(ttlSeconds), 'NX'))]).then(() => undefined)
        : setAdd(this, k, member, ms(ttlSeconds));
    setAdds.get()?.set(id, { until, written });
    if (!live || live.until < until - SET_ADD_SLACK_MS) setLives.get()?.set(k, { until, written });
    return written;
  }

  async putInSet(key: string, values: Record<string, string>, ttlSeconds: number): Promise<boolean> {
    const k = this.keys.set(key);
    forgetSetAdds(k);
    const fields = Object.entries(values).flat();
    // Issued together (one write on the connection): the HSET, then the lifetime.
    const [added] = await Promise.all([
      this.run((c) => c.hset(k, ...fields)).then(
        () => true,
        (err: unknown) => {
          if (!wrongType(err)) throw err;
          return this.run((c) => c.sadd(k, ...Object.keys(values))).then(() => false);
        },
      ),
      this.run((c) => c.pexpire(k, ms(ttlSeconds))),
    ]);
    return added;
  }

  async setValues(key: string, members: string[]): Promise<Array<string | undefined>> {
    if (members.length === 0) return [];
    const k = this.keys.set(key);
    return this.run((c) => c.hmget(k, ...members)).then(
      (values) => values.map((v) => v ?? undefined),
      async (err: unknown) => {
        if (!wrongType(err)) throw err;
        // A SET written before: its members have no value.
        const found = await this.run((c) => c.smismember(k, ...members));
        return found.map((f) => (f ? '' : undefined));
      },
    );
  }

  async removeFromSet(key: string, member: string): Promise<void> {
    const k = this.keys.set(key);
    forgetSetAdds(k, member);
    await this.run((c) => c.hdel(k, member)).catch((err: unknown) => {
      if (!wrongType(err)) throw err;
      return this.run((c) => c.srem(k, member));
    });
  }

  async setMembers(key: string): Promise<string[]> {
    return setRead(this, this.keys.set(key));
  }

  async deleteSet(key: string): Promise<void> {
    const k = this.keys.set(key);
    forgetSetAdds(k);
    await this.run((c) => c.del(k));
  }

  // pub/sub --------------------------------------------------------------------------------------

  async publish(channel: string, message: string): Promise<void> {
    await this.run((c) => c.publish(this.keys.channel(channel), message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    const subscriber = await this.#getSubscriber();
    const name = this.keys.channel(channel);
    const handler = { fn: onMessage };
    let state = this.#channels.get(name);
    if (!state) {
      const created: ChannelState = {
        handlers: new Set(),
        subscribed: this.run(async () => {
          await subscriber.subscribe(name);
        }),
      };
      this.#channels.set(name, created);
      created.subscribed.catch(() => {
        if (this.#channels.get(name) === created) this.#channels.delete(name);
      });
      state = created;
    }
    state.handlers.add(handler);
    await state.subscribed;
    const current = state;
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      current.handlers.delete(handler);
      if (current.handlers.size > 0 || this.#channels.get(name) !== current) return;
      this.#channels.delete(name);
      // If Redis is away this fails; the channel is no longer ours, so it is not resubscribed.
      await subscriber.unsubscribe(name).catch(() => {});
    };
  }

  /** The dedicated subscriber connection (a duplicate of the client), created on first use. */
  #getSubscriber(): Promise<Client> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError('The session store is closed'));
    if (!this.#subscriber) {
      // Standalone: we resubscribe ourselves on every 'ready' (ioredis' autoResubscribe leaves its
      // SUBSCRIBE promise unhandled, which would crash the process if the connection drops again
      // at that moment). Cluster: ioredis' ClusterSubscriber moves and resubscribes on its own.
      const subscriber = this.client instanceof Cluster ? this.client.duplicate() : this.client.duplicate({ autoResubscribe: false });
      subscriber.on('error', (err: unknown) => {
        this.#lastError = err;
      });
      if (!(subscriber instanceof Cluster)) {
        subscriber.on('ready', () => {
          const names = [...this.#channels.keys()];
          if (names.length > 0) subscriber.subscribe(...names).catch(() => {});
        });
      }
      subscriber.on('message', (channel: string, message: string) => {
        const state = this.#channels.get(channel);
        if (!state) return;
        // Like memory.ts: never on the connection's own stack, and a throwing handler is not our parser's problem.
        for (const handler of state.handlers) setImmediate(() => handler.fn(message));
      });
      this.#subscriber = Promise.resolve(subscriber);
    }
    return this.#subscriber.then(async (subscriber) => {
      await waitReady(subscriber, this.#timeoutMs).catch((err) => {
        throw new StoreUnavailableError(undefined, err ?? this.#lastError);
      });
      return subscriber;
    });
  }

  readSessionsWith(reader: (sessionUid: string) => void): void {
    this.#sessionReader = reader;
  }

  /** Starts the reads `readSessionsWith` registered for a session (within a request: their answers wait in its reads). */
  readSession(sessionUid: string): void {
    this.#sessionReader?.(sessionUid);
  }

  // lifecycle ------------------------------------------------------------------------------------

  async ping(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('The session store is closed');
    if (this.client.status !== 'ready') throw new StoreUnavailableError(undefined, this.#lastError);
    await this.run((c) => c.ping());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#channels.clear();
    const subscriber = this.#subscriber ? await this.#subscriber : undefined;
    await Promise.all([shutdown(this.client, this.#timeoutMs), subscriber && shutdown(subscriber, this.#timeoutMs)]);
  }
}

/**
 * oidc-provider's adapter: one STRING per model+id with TTL, the payload as JSON, or `c{epoch
 * seconds}|` + the JSON once consumed (one command to write, one to read). Payloads written as a
 * HASH ({payload, consumed}) by earlier versions are still read until they expire.
 *
 * An upsert's writes (grant index, payload, uid/user-code index) go out together: on a single Redis
 * in one pipeline on one connection, executed in that order; on a Cluster, where they live on
 * different nodes, in the same round trip to each node. Nothing is handed out before every one of
 * them is known done (a failed upsert rejects, and the request's deferred writes are settled before
 * it answers), so a token that reaches anyone is in its grant's index whatever order the nodes
 * executed them in; a record whose index write failed is never handed out (its id is random and
 * unknown), and an index member whose record write failed names a key that is not there, which
 * revoking skips.
 *
 * Within a request (request-reads.ts), what oidc-provider writes before it answers is sent without
 * waiting where another write or the answer follows (deferWrite): an Interaction's delete, a code's,
 * a refresh token's and an access token's save, the consume of a token the request read; a Grant's
 * and a Session's save are deferred by sessions/oidc-index.ts, a session's refresh note by
 * sessions/records.ts. A refresh's writes (the note, the consume, the new refresh token and the
 * access token's record) thus leave in one round trip. The next write that is not deferred waits for them,
 * and the request is answered only once all are known done (app.ts settles them inside the error
 * boundary), so a failure still fails the request and nothing is handed out before it is stored.
 * An Interaction's save is never deferred: interactionFinished answers the browser itself.
 */
/** Models whose saves are deferred within a request (see RedisAdapter.upsert). */
const DEFERRED_SAVES: ReadonlySet<string> = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken']);

class RedisAdapter implements Adapter {
  readonly #name: string;
  readonly #store: RedisStore;

  constructor(name: string, store: RedisStore) {
    this.#name = name;
    this.#store = store;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const store = this.#store;
    const keys = store.keys;
    const key = keys.oidc(this.#name, id);
    const ttl = ms(expiresIn ?? DEFAULT_TTL_SECONDS);
    const reads = requestReads();
    // A grant this request neither read nor wrote before is new (oidc-provider finds a grant before it
    // saves it again): it has no index yet to take along.
    const newGrant = this.#name === 'Grant' && reads !== undefined && !reads.has(key);
    forget(key);
    if (this.#name === 'Session' && typeof payload.uid === 'string') this.#noteSession(payload.uid, id);
    if (this.#name === 'RefreshToken' && typeof payload.grantId === 'string') store.refreshTokenHints.note(id, refreshTokenHint(payload));
    const raw = serialize(this.#withSessionId(payload));
    const userCodeKey = payload.userCode ? keys.userCode(this.#name, payload.userCode) : undefined;
    const uidKey = payload.uid ? keys.uid(this.#name, payload.uid) : undefined;
    for (const k of [userCodeKey, uidKey]) if (k !== undefined) forget(k);
    // The record's own writes, issued once its grant index (if any) is on the connection.
    const record = (): Array<Promise<unknown>> => {
      const writes: Array<Promise<unknown>> = [store.run((c) => c.set(key, raw, 'PX', ttl))];
      // A grant's index lives as long as the grant (see #indexInGrant): saving the grant again moves
      // its end (a no-op while the index does not exist yet, so not sent for a new grant).
      if (this.#name === 'Grant' && !newGrant) writes.push(store.run((c) => c.pexpire(keys.grant(id), ttl)));
      for (const k of [userCodeKey, uidKey]) if (k !== undefined) writes.push(store.run((c) => c.set(k, id, 'PX', ttl)));
      return writes;
    };
    const written = payload.grantId ? this.#indexInGrant(payload.grantId, id, key, ttl, record) : Promise.all(record());
    // The request reads what it wrote from now on: the write is on the connection (or held by this
    // request, joinGrantIndex), ahead of any later read of the key (one connection; on a Cluster, the
    // key's node), and should it fail, the request fails with it (below, or where a deferred write is
    // awaited).
    reads?.set(key, raw);
    if (userCodeKey) reads?.set(userCodeKey, id);
    if (uidKey) reads?.set(uidKey, id);
    // A code is followed by the Session's save and the answer; an access token and a refresh token
    // by each other's save (a code exchange saves the access token first, a refresh the refresh
    // token) and the answer (deferWrite): they leave together, and those wait for them.
    if (DEFERRED_SAVES.has(this.#name) && deferWrite(written)) return;
    // With the request's deferred writes: this write is not known done before they are.
    await Promise.all([written, ...takeDeferredWrites()]);
  }

  /**
   * An authorization code bound to its session (`expiresWithSession`, `sessionUid`) as stored: with the
   * Session's id (SESSION_ID) when this request knows it (request-reads.ts noteSessionId: the request
   * saved or read that Session, or oidc-provider holds it while it issues the code), so the code
   * exchange reads the Session by id, together with the code's Grant, instead of its uid index first
   * and then the Session (see find). A hint only: oidc-provider never sees it, and a Session found
   * under it counts only when it has the code's uid (a session whose id changed since is found by its
   * uid as before). Codes only: they live a minute, while a refresh token kept it for weeks (128 bytes
   * more of each session's memory, measured) for a refresh's round trip.
   */
  #withSessionId(payload: AdapterPayload): AdapterPayload {
    const sessionUid = (payload as { sessionUid?: unknown }).sessionUid;
    if (this.#name !== 'AuthorizationCode' || payload.expiresWithSession !== true || typeof sessionUid !== 'string') return payload;
    const sessionId = sessionIdOf(sessionUid);
    return sessionId === undefined ? payload : { ...payload, [SESSION_ID]: sessionId };
  }

  /**
   * Adds a token to its grant's index (a HASH whose fields name the tokens, RedisKeys.grantField;
   * an index written before as a SET of their keys gets the key). The index need not outlive the grant: oidc-provider
   * uses no token whose grant is gone or expired (validateGrant at /token, loadAccessTokenGrant,
   * introspection; liveAccessToken alike), and revoking a grant that is gone has nothing to reach.
   * So when this request knows the grant (it read or saved it: the code's resume, the code
   * exchange, a refresh), the index is given the grant's own end, which every add of that grant
   * asks alike: HSET and PEXPIREAT on the index's key, pipelined (2 commands, not setAdd's 3), and
   * an access token's and a refresh token's, saved one after the other in one response (in either
   * order: a code exchange saves the access token first, a refresh the refresh token), in one HSET
   * (joinGrantIndex). Saving the grant again moves the index's end with it (upsert). When the grant
   * is not known here, setAdd with the token's lifetime, as before. Then the token's own writes
   * (`record`), after the index: on one connection in that order, on a Cluster in the same round.
   * Answers when all are done.
   */
  #indexInGrant(grantId: string, id: string, key: string, ttlMs: number, record: () => Array<Promise<unknown>>): Promise<unknown> {
    const store = this.#store;
    const index = store.keys.grant(grantId);
    const field = store.keys.grantField(this.#name, id);
    const known = requestReads()?.get(store.keys.oidc('Grant', grantId));
    const ends = known ? grantEnd(known) : undefined;
    if (ends !== undefined && ends > Date.now()) return joinGrantIndex(store, index, ends, field, key, record, HELD_INDEX_ADDS.has(this.#name));
    // On a Cluster the index and the record live on different nodes: each gets its write in the same
    // round; nothing is handed out before both are done (see the adapter's comment above).
    return Promise.all([setAdd(store, index, field, ttlMs, key), ...record()]);
  }

  /**
   * The payload; read once per request (request-reads.ts), a fresh object each time. A token bound
   * to a grant (or to a session) is never used without its Grant (and Session) being read next,
   * one after the other (oidc-provider's grant and session checks, liveAccessToken): those reads
   * are issued as soon as the token is read, together, and answer those later finds.
   */
  async find(id: string): Promise<AdapterPayload | undefined> {
    const key = this.#store.keys.oidc(this.#name, id);
    const hint = this.#name === 'RefreshToken' && requestReads() ? this.#store.refreshTokenHints.get(id) : undefined;
    let raw: string | null;
    try {
      const read = readOnce(this.#store, key);
      if (hint !== undefined) this.#readAheadOfHint(hint);
      raw = await read;
    } catch (err) {
      if (!(isReplyError(err) && err.message.startsWith('WRONGTYPE'))) throw err;
      return this.#findHash(key);
    }
    const payload = decodePayload(raw);
    if (!payload) return payload;
    const sessionId = payload[SESSION_ID];
    delete payload[SESSION_ID];
    if (this.#name === 'Session' && typeof payload.uid === 'string') this.#noteSession(payload.uid, id);
    if (requestReads()) this.#readAhead(payload, typeof sessionId === 'string' ? sessionId : undefined);
    return payload;
  }

  /** A Session `id` of `uid` saved or found: for this request (noteSessionId), and as the store's hint for later ones (RedisStore.sessionIds). */
  #noteSession(uid: string, id: string): void {
    noteSessionId(uid, id);
    this.#store.sessionIds.note(uid, id);
  }

  /**
   * Issues the reads of what the token's use reads next (see find); their answers wait in the
   * request's reads. Its Session by id when the token names it (#withSessionId) or this instance
   * knows the id of its uid (RedisStore.sessionIds: a refresh token, whose session this instance
   * saved or read before), else its uid index. A hint that no longer holds (the Session ended, or
   * got a new id at a new login) costs findByUid the uid index's read after it.
   */
  #readAhead(payload: AdapterPayload, named: string | undefined): void {
    const keys = this.#store.keys;
    if (this.#name !== 'Grant' && typeof payload.grantId === 'string') readAhead(this.#store, keys.oidc('Grant', payload.grantId));
    const sessionUid = (payload as { sessionUid?: unknown; expiresWithSession?: unknown }).sessionUid;
    if (this.#name !== 'Session' && (payload as { expiresWithSession?: unknown }).expiresWithSession === true && typeof sessionUid === 'string') {
      const sessionId = named ?? this.#store.sessionIds.get(sessionUid);
      if (sessionId === undefined) {
        readAhead(this.#store, keys.uid('Session', sessionUid));
      } else {
        sessionHints.get()?.set(sessionUid, sessionId);
        readAhead(this.#store, keys.oidc('Session', sessionId));
      }
    }
  }

  /**
   * Issues, with the refresh token's own read, the reads its use makes next, as this instance saved
   * it (RedisStore.refreshTokenHints): its grant, its Session and its session's records. Reads only:
   * the token as read decides what is used (#readAhead issues what it names; a read already under
   * way is not sent again).
   */
  #readAheadOfHint(hint: string): void {
    const [grantId, sessionUid, bound] = hint.split('\n') as [string, string, string];
    this.#readAhead({ grantId, ...(sessionUid ? { sessionUid, expiresWithSession: bound === '1' } : {}) } as AdapterPayload, undefined);
    if (sessionUid) this.#store.readSession(sessionUid);
  }

  /** A payload written as a HASH by an earlier version. */
  async #findHash(key: string): Promise<AdapterPayload | undefined> {
    const [raw, consumed] = await this.#store.run((c) => c.hmget(key, 'payload', 'consumed'));
    const payload = deserialize<AdapterPayload>(raw);
    if (payload && consumed != null) payload.consumed = Number(consumed);
    return payload;
  }

  /** The payload its uid index names, with that id as its `jti` when it was stored without one (provider/compact-payloads.ts). */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    // A token read in this request named the Session's id (#readAhead): that Session, when it is this uid's.
    const hinted = this.#name === 'Session' ? sessionHints.peek()?.get(uid) : undefined;
    if (hinted !== undefined) {
      const found = await this.find(hinted);
      if (found?.uid === uid) return withJti(found, hinted);
    }
    const id = await readOnce(this.#store, this.#store.keys.uid(this.#name, uid));
    return id === null ? undefined : withJti(await this.find(id), id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await readOnce(this.#store, this.#store.keys.userCode(this.#name, userCode));
    return id === null ? undefined : this.find(id);
  }

  /**
   * Marks the payload consumed. When this request has read it (oidc-provider always finds a code or
   * refresh token before it consumes it), the consumed form of what was read is written with
   * `SET ... KEEPTTL XX`: one command, the TTL kept, nothing created when the key is gone (revoked
   * meanwhile). Tokens are not saved again once issued (codes never; refresh tokens rotate), so what
   * was read is what is there. Otherwise (not read here, or a HASH from an earlier version), the
   * CONSUME script, which reads it in Redis (and keeps it whole). `drops`: fields (as stored) the
   * consumed form is written without, besides an authorization code's (CONSUMED_CODE_DROPS).
   */
  async consume(id: string, drops?: readonly string[]): Promise<void> {
    const key = this.#store.keys.oidc(this.#name, id);
    if (this.#name === 'RefreshToken') this.#store.refreshTokenHints.forget(id);
    const known = requestReads()?.get(key);
    forget(key);
    if (typeof known === 'string') {
      const json = consumedForm(this.#name, known.charCodeAt(0) === 0x63 /* c */ ? known.slice(known.indexOf('|') + 1) : known, drops);
      const consumed = this.#store.run((c) => c.set(key, `c${nowSeconds()}|${json}`, 'KEEPTTL', 'XX'));
      // In a request the tokens issued for it follow (their saves wait for this), or the answer
      // does: deferred, so it leaves with the access token's write (deferWrite).
      if (deferWrite(consumed)) return;
      await consumed;
    } else {
      await this.#store.script(CONSUME, key, nowSeconds());
    }
    // Again: a read of this request may have answered meanwhile with the payload before.
    forget(key);
  }

  /**
   * Deletes the payload. An Interaction's delete (oidc-provider's, as the resume begins) is deferred
   * within a request (request-reads.ts deferWrite): it leaves with the request's next reads instead
   * of taking a round trip of its own, and the request's next write (the grant, the code) waits
   * for it, so nothing is issued, nor the request answered, before it is known done.
   */
  async destroy(id: string): Promise<void> {
    const key = this.#store.keys.oidc(this.#name, id);
    forget(key);
    const deleted = this.#store.run((c) => c.del(key));
    noteDestroyed(this.#name, id, deleted.then((n) => n > 0));
    requestReads()?.set(key, null);
    if (this.#name === 'Interaction' && deferWrite(deleted)) return;
    await deleted;
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    requestReads()?.clear();
    forgetAll();
    const keys = this.#store.keys;
    const index = keys.grant(grantId);
    // Read and drop the index in one step on its key (a script: the index is a HASH, or a SET
    // written before); its members live on other slots, so they are deleted one by one.
    const [type, found] = (await this.#store.script(TAKE_INDEX, index)) as [string, string[]];
    const members = type === 'set' ? found : found.flatMap((field) => keys.grantFieldKey(field) ?? []);
    await Promise.all(members.map((key) => this.#store.run((c) => c.unlink(key))));
  }
}

/** What RedisStore.refreshTokenHints keeps of a refresh token: its grant, its session's uid, whether it ends with that session (1 or 0). */
function refreshTokenHint(payload: AdapterPayload): string {
  const sessionUid = (payload as { sessionUid?: unknown }).sessionUid;
  return `${payload.grantId}\n${typeof sessionUid === 'string' ? sessionUid : ''}\n${payload.expiresWithSession === true ? 1 : 0}`;
}

/** A payload found by uid, given the id it is stored under as its `jti` when it has none (in place: each find parses its own). */
function withJti(payload: AdapterPayload | undefined, id: string): AdapterPayload | undefined {
  if (payload && payload.jti === undefined) payload.jti = id;
  return payload;
}

/**
 * The field of a stored token that names its Session's id (RedisAdapter #withSessionId): not one of
 * oidc-provider's (it keeps only the fields it knows), and taken out before the payload is handed out.
 */
const SESSION_ID = 'sessionJti';

/**
 * What a consumed authorization code keeps: oidc-provider reads one again only to refuse its replay
 * (grants/authorization_code.js: found by id, its client and expiry, its grant, PKCE, its
 * redirect_uri, then `consumed`: the grant is revoked), so the fields none of those reads (the
 * account, the login's acr/amr/auth_time, nonce, scope, resource, claims, its session) are not
 * written again: the consume sends about 300 bytes, not the whole code (about 870). Fields it
 * does not name are kept, whatever a later oidc-provider checks first.
 */
const CONSUMED_CODE_DROPS = ['accountId', 'acr', 'amr', 'authTime', 'nonce', 'scope', 'resource', 'claims', 'sessionUid', 'expiresWithSession', 'sid', SESSION_ID];

/** The JSON a payload of `model` is written with once consumed: without CONSUMED_CODE_DROPS for codes, and without `drops` (as they are without either). */
function consumedForm(model: string, json: string, drops: readonly string[] = []): string {
  const code = model === 'AuthorizationCode';
  if (!code && drops.length === 0) return json;
  try {
    const payload = JSON.parse(json) as Record<string, unknown>;
    for (const field of code ? [...CONSUMED_CODE_DROPS, ...drops] : drops) delete payload[field];
    return JSON.stringify(payload);
  } catch {
    return json;
  }
}

/** Sessions named by the tokens read in a request (requestLocal): uid -> the id a token named, for findByUid. */
const sessionHints = requestLocal(() => new Map<string, string>());

/**
 * A request's additions to one grant index with one end, sent as one HSET of every member and one
 * PEXPIREAT, then the records they index (in the order they came): an access token's and the
 * refresh token saved with it (the code exchange, a refresh) are 4 commands, not 6.
 */
interface GrantIndexBatch {
  index: string;
  ends: number;
  /** The index's fields (RedisKeys.grantField), and the keys they name (the members of an index written before as a SET). */
  members: string[];
  keys: string[];
  records: Array<() => Array<Promise<unknown>>>;
  sent: boolean;
  done: Promise<unknown>;
  settle: { resolve: (value: unknown) => void; reject: (err: unknown) => void };
}

/**
 * Models whose additions to a grant index are held (joinGrantIndex `hold`): a response issues an
 * access token and a refresh token together, one after the other without waiting on the store
 * (their saves are deferred), so the second's addition finds the first's held and both leave as one
 * HSET and one PEXPIREAT, not two of each.
 */
const HELD_INDEX_ADDS: ReadonlySet<string> = new Set(['AccessToken', 'RefreshToken']);

/** Grant index additions a request holds (requestLocal): index key -> its batch, until it is sent. */
const grantIndexBatches = requestLocal(() => new Map<string, GrantIndexBatch>());

/**
 * Adds `member` to the grant index `index` (whose grant ends at `ends`, epoch ms) and issues `record`
 * after it. Within a request, a token's addition (`hold`, HELD_INDEX_ADDS) is held until the
 * end of the current run of microtasks (process.nextTick: before the connection's next write), and
 * every addition to the same index with the same end made meanwhile joins it (the other token of
 * the response: one HSET of both); an addition that is not held is sent at once, with what is held
 * for its index. Order is kept on one connection: the index (with every member), then the records;
 * on a Cluster they go to their nodes in the same round (see RedisAdapter). Outside a request, sent
 * at once.
 */
function joinGrantIndex(store: RedisStore, index: string, ends: number, member: string, key: string, record: () => Array<Promise<unknown>>, hold: boolean): Promise<unknown> {
  const batches = grantIndexBatches.get();
  let batch = batches?.get(index);
  if (batch && batch.ends !== ends) {
    sendGrantIndex(store, batch, batches!);
    batch = undefined;
  }
  if (!batch) {
    let settle!: GrantIndexBatch['settle'];
    const done = new Promise<unknown>((resolve, reject) => (settle = { resolve, reject }));
    batch = { index, ends, members: [], keys: [], records: [], sent: false, done, settle };
    if (batches && hold) {
      batches.set(index, batch);
      const held = batch;
      process.nextTick(() => sendGrantIndex(store, held, batches));
    }
  }
  batch.members.push(member);
  batch.keys.push(key);
  batch.records.push(record);
  if (!hold || !batches) sendGrantIndex(store, batch, batches);
  return batch.done;
}

function sendGrantIndex(store: RedisStore, batch: GrantIndexBatch, batches: Map<string, GrantIndexBatch> | undefined): void {
  if (batch.sent) return;
  batch.sent = true;
  if (batches?.get(batch.index) === batch) batches.delete(batch.index);
  const indexed = Promise.all([setAddOne(store, batch.index, batch.members, batch.keys), store.run((c) => c.pexpireat(batch.index, batch.ends))]);
  const records = Promise.all(batch.records.flatMap((r) => r()));
  Promise.all([indexed, records]).then(batch.settle.resolve, batch.settle.reject);
}

/** GETs of oidc-provider keys under way in a request (requestLocal): key -> the answer to come. */
const inFlight = requestLocal(() => new Map<string, Promise<string | null>>());

/**
 * GET of an oidc-provider key (a payload, or a uid / user code index) once per request: answered
 * from the request's reads, or by a GET of the request already under way, or by Redis. Outside a
 * request, always Redis.
 */
function readOnce(store: RedisStore, key: string): Promise<string | null> {
  const reads = requestReads();
  if (!reads) return store.run((c) => c.get(key));
  const known = reads.get(key);
  if (known !== undefined) return Promise.resolve(known);
  // Within a request (its reads are open), so it has its own map.
  const pending = inFlight.get()!;
  const under = pending.get(key);
  if (under) return under;
  const read = store.run((c) => c.get(key));
  pending.set(key, read);
  const settled = () => {
    if (pending.get(key) === read) pending.delete(key);
  };
  read.then(
    (raw) => {
      // Not over an entry a write of this request made meanwhile (the write forgot this read).
      if (pending.get(key) === read && !reads.has(key)) reads.set(key, raw);
      settled();
    },
    settled,
  );
  return read;
}

/** Issues readOnce without waiting: what it reads is in the request's reads by the time it is asked for. */
function readAhead(store: RedisStore, key: string): void {
  readOnce(store, key).catch(() => {}); // whoever asks for it later gets the failure, by reading again
}

/** A write of this request to `key`: its reads, and a GET of it under way, no longer answer. */
function forget(key: string): void {
  requestReads()?.delete(key);
  inFlight.peek()?.delete(key);
}

function forgetAll(): void {
  inFlight.clear();
}

/** When a stored Grant expires (its `exp`, epoch ms), or undefined when it has none or does not parse. */
function grantEnd(raw: string): number | undefined {
  try {
    const exp = decodePayload(raw)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** A stored payload: JSON, or `c{epoch seconds}|` + JSON once consumed. */
function decodePayload(raw: string | null): AdapterPayload | undefined {
  if (raw === null) return undefined;
  if (raw.charCodeAt(0) !== 0x63 /* c */) return JSON.parse(raw) as AdapterPayload;
  const bar = raw.indexOf('|');
  const payload = JSON.parse(raw.slice(bar + 1)) as AdapterPayload;
  payload.consumed = Number(raw.slice(1, bar));
  return payload;
}

function waitReady(client: Client, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  if (client.status === 'end') return Promise.reject(new Error('connection ended'));
  return new Promise((resolve, reject) => {
    let lastError: unknown;
    const onError = (err: unknown) => {
      lastError = err;
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onEnd = () => {
      cleanup();
      reject(lastError ?? new Error('connection ended'));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(lastError ?? new Error(`not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
    };
    client.on('ready', onReady);
    client.on('error', onError);
    client.on('end', onEnd);
  });
}

async function shutdown(client: Client, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.quit(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('quit timed out')), timeoutMs))),
      ]);
    } catch {
      // fall through to disconnect
    } finally {
      clearTimeout(timer);
    }
  }
  client.disconnect();
}

/** How often a Cluster store reads the slot map again (CLUSTER SLOTS), ms: the longest a topology change can go unseen. */
export const CLUSTER_SLOTS_REFRESH_MS = 5000;

interface NodeListUrl {
  nodes: ClusterNode[] & Array<{ host: string; port: number }>;
  /** The path without its slash: the Sentinel master's name. */
  name: string;
  username?: string;
  password?: string;
  tls: boolean;
  query: Map<string, string>;
}

/**
 * Parses `{scheme}://[user:pass@]host:port,host:port[/name][?tls=true]`: the URL form of a Redis
 * Cluster (seed nodes) and of Redis Sentinel (sentinels, then the master's name as the path).
 */
function parseNodeListUrl(scheme: 'redis-cluster' | 'redis-sentinel', url: string): NodeListUrl {
  const match = new RegExp(`^${scheme}://(?:([^@/]*)@)?([^/?]+)(?:/([^?]*))?(?:\\?(.*))?$`).exec(url);
  if (!match) throw new Error(`invalid ${scheme} URL: expected ${scheme}://host:port,host:port${scheme === 'redis-sentinel' ? '/masterName' : ''}`);
  const [, auth, hosts = '', name = '', query = ''] = match;
  const nodes = hosts.split(',').map((hostPort) => {
    const at = hostPort.lastIndexOf(':');
    const host = at > 0 ? hostPort.slice(0, at) : hostPort;
    const port = at > 0 ? Number(hostPort.slice(at + 1)) : scheme === 'redis-sentinel' ? 26379 : 6379;
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid node "${hostPort}" in ${scheme} URL`);
    return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
  });
  // Decoded as the user:password part is: URLSearchParams would turn a '+' in a password into a space.
  const params = new Map<string, string>();
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    params.set(decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq)), decodeURIComponent(eq < 0 ? '' : pair.slice(eq + 1)));
  }
  const result: NodeListUrl = { nodes, name: decodeURIComponent(name), tls: /^(1|true|yes)$/i.test(params.get('tls') ?? ''), query: params };
  if (auth) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? '' : auth.slice(0, colon));
    const pass = decodeURIComponent(colon < 0 ? auth : auth.slice(colon + 1));
    if (user) result.username = user;
    if (pass) result.password = pass;
  }
  return result;
}

/** Parses `redis-cluster://[user:pass@]host:port,host:port[?tls=true]`. */
export function parseClusterUrl(url: string): { nodes: ClusterNode[]; username?: string; password?: string; tls: boolean } {
  const { nodes, username, password, tls } = parseNodeListUrl('redis-cluster', url);
  return { nodes, tls, ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/**
 * Parses `redis-sentinel://[user:pass@]host:port,host:port/masterName[?tls=true&sentinelPassword=...]`:
 * the sentinels to ask, the master's name, and the credentials of the Redis servers (the sentinels'
 * own password, when they have one, as `sentinelPassword`).
 */
export function parseSentinelUrl(url: string): { sentinels: Array<{ host: string; port: number }>; name: string; username?: string; password?: string; sentinelPassword?: string; tls: boolean } {
  const { nodes, name, username, password, tls, query } = parseNodeListUrl('redis-sentinel', url);
  if (!name) throw new Error('invalid redis-sentinel URL: the master name is missing (redis-sentinel://host:port/masterName)');
  const sentinelPassword = query.get('sentinelPassword') ?? undefined;
  return { sentinels: nodes, name, tls, ...(username ? { username } : {}), ...(password ? { password } : {}), ...(sentinelPassword ? { sentinelPassword } : {}) };
}

/** Creates the client for `options.url`, waits for its first connection and returns the store. */
export async function createRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const connectTimeout = options.connectTimeoutMs ?? 2000;
  const commandTimeout = options.commandTimeoutMs ?? 2000;
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 10), maxDelay);
  const common: RedisOptions = {
    connectTimeout,
    commandTimeout,
    // Fail fast: nothing waits for a connection that is not there, nothing is retried.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    keepAlive: 10_000,
  };
  // Commands issued in the same tick (an upsert's index and payload, a session's record and its
  // client list) leave in one write: one round trip. Not behind Sentinel: there, commands issued
  // while the client follows a failover must fail one by one, as they do without it.
  const pipelined: RedisOptions = { enableAutoPipelining: true };
  let client: Client;
  if (options.url.startsWith('redis-cluster://')) {
    const { nodes, username, password, tls } = parseClusterUrl(options.url);
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      // As for a single Redis, per node.
      enableAutoPipelining: true,
      clusterRetryStrategy: backoff,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: 8,
      slotsRefreshTimeout: connectTimeout,
      // The slot map read again every 5 s, whatever happens (ioredis documents 5000 as the default
      // but applies none). With auto-pipelining, a MOVED answer fails a node's whole pipeline
      // without always refreshing the map (redis/ioredis#2075): after a failover the store could go
      // on sending a dead master's slots to the wrong node. Seen in the Cluster failover test: once
      // in four runs, no key of those slots was readable a minute after the replica took over.
      slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
      redisOptions: {
        ...common,
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        ...(tls ? { tls: {} } : {}),
      },
    };
    client = new Cluster(nodes, clusterOptions);
  } else if (options.url.startsWith('redis-sentinel://')) {
    const { sentinels, name, username, password, sentinelPassword, tls } = parseSentinelUrl(options.url);
    // ioredis asks the sentinels for the current master at every (re)connection and checks its
    // role, so after a failover the store reconnects to the promoted replica by itself.
    client = new Redis({
      ...common,
      sentinels,
      name,
      retryStrategy: backoff,
      sentinelRetryStrategy: backoff,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(sentinelPassword ? { sentinelPassword } : {}),
      // TLS to the Sentinels (sentinelTLS) and to the Redis servers they name (enableTLSForSentinelMode).
      ...(tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
      // Also listen to the Sentinels' +switch-master: a client cut off from the old primary moves at once.
      failoverDetector: true,
    });
  } else if (/^rediss?:\/\//.test(options.url)) {
    client = new Redis(options.url, { ...common, ...pipelined, retryStrategy: backoff });
  } else {
    throw new Error(`not a Redis URL: "${options.url}"`);
  }
  const store = new RedisStore(client, { prefix: options.prefix ?? 'concord:', timeoutMs: Math.max(connectTimeout, commandTimeout) });
  try {
    await waitReady(client, options.startupTimeoutMs ?? 10_000);
  } catch (err) {
    client.disconnect();
    throw new StoreUnavailableError(`Redis at ${redact(options.url)} is unavailable`, err);
  }
  try {
    await checkRedisVersion(client, redact(options.url), options.startupTimeoutMs ?? 10_000);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return store;
}

/** The oldest Redis Concord runs on: PEXPIRE's NX and GT options (setAdd) came with 7.0. */
export const MIN_REDIS_VERSION = [7, 0] as const;

/** `redis_version` of an INFO server answer, or undefined when there is none. */
export function redisVersion(info: string): string | undefined {
  return /^redis_version:([0-9][0-9.]*)\s*$/m.exec(info)?.[1];
}

/** Whether a `redis_version` (major.minor.patch) is at least MIN_REDIS_VERSION. */
export function supportedRedis(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > MIN_REDIS_VERSION[0] || (major === MIN_REDIS_VERSION[0] && minor >= MIN_REDIS_VERSION[1]);
}

/**
 * Refuses a Redis older than MIN_REDIS_VERSION, by `redis_version` of INFO server: of the server a
 * single or Sentinel-managed client is connected to, of every master of a Cluster. Valkey answers
 * with the Redis version it is compatible with. Throws ConcordError `redis_too_old`, whose message
 * says which server answered which version; main.ts prints it as the reason start-up failed.
 */
async function checkRedisVersion(client: Client, where: string, timeoutMs: number): Promise<void> {
  const servers = client instanceof Cluster ? client.nodes('master') : [client];
  await Promise.all(
    servers.map(async (server) => {
      // A Cluster's node connections are made on first use (lazyConnect): this is the first.
      if (server.status === 'wait') await server.connect();
      else await waitReady(server, timeoutMs);
      const version = redisVersion(await server.info('server'));
      if (version !== undefined && supportedRedis(version)) return;
      const node = client instanceof Cluster ? ` (node ${server.options.host}:${server.options.port})` : '';
      throw new ConcordError(
        'redis_too_old',
        `Redis at ${where}${node} is version ${version ?? 'unknown'}; Concord needs Redis ${MIN_REDIS_VERSION.join('.')} or later (PEXPIRE NX/GT): upgrade it (docs/scaling.md)`,
      );
    }),
  );
}

/** The URL without its credentials (user:password@, and a sentinelPassword), for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@').replace(/([?&]sentinelPassword=)[^&]*/gi, '$1***');
}
