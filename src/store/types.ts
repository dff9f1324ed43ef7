import type { Adapter as ProviderAdapter, AdapterPayload } from 'oidc-provider';

export type { AdapterPayload };

/**
 * oidc-provider's adapter, whose `consume` may be told which fields the consumed record is written
 * again without (`drops`, as stored): the layer that knows a model's stored names (provider/
 * compact-payloads.ts) says what of a consumed token oidc-provider no longer reads; the store
 * rewrites what it read (redis.ts) or holds (memory.ts) without them. Unnamed fields are kept.
 */
export interface Adapter extends ProviderAdapter {
  consume(id: string, drops?: readonly string[]): Promise<void | undefined>;
}

/** What an append-only log hands back: its position and the entry. */
export interface LogEntry<T> {
  seq: number;
  entry: T;
}

/**
 * The one storage interface of Concord. `oidc-provider` sees it through `adapter()`;
 * Concord's own state goes through the other methods. Every backend (memory, Redis,
 * Redis Cluster) passes the same conformance suite in test/integration/store.test.ts.
 *
 * Three families of data, kept apart because they age differently:
 * - records: small durable documents in named collections (participants, clients, keys); listable;
 * - temp: single values with a TTL (pending upstream logins, rate-limit state, caches); `take` is
 *   get-and-delete in one step so a single-use value cannot be used twice;
 * - logs and sets: the audit log (append, page backwards) and membership indexes (grants of a participant).
 */
export interface Store {
  readonly kind: 'memory' | 'redis' | 'redis-cluster' | 'redis-sentinel';

  /** The adapter `oidc-provider` uses for the model `name` (Session, AccessToken, Grant, ...). */
  adapter(name: string): Adapter;

  getRecord<T>(collection: string, id: string): Promise<T | undefined>;
  putRecord<T>(collection: string, id: string, value: T): Promise<void>;
  deleteRecord(collection: string, id: string): Promise<boolean>;
  listRecords<T>(collection: string): Promise<Array<{ id: string; value: T }>>;

  setTemp<T>(key: string, value: T, ttlSeconds: number): Promise<void>;
  getTemp<T>(key: string): Promise<T | undefined>;
  /** Reads and deletes atomically: of two concurrent callers, only one gets the value. */
  takeTemp<T>(key: string): Promise<T | undefined>;
  /**
   * Sets the value only when the key holds none (Redis SET NX PX), atomically: of two concurrent
   * callers, only one gets `true`. A lease: the holder deletes it when done, the TTL frees it if the
   * holder dies. A `ttlSeconds` of 0 or less sets nothing and answers `false`.
   */
  claimTemp<T>(key: string, value: T, ttlSeconds: number): Promise<boolean>;
  /**
   * Sets the value (for `ttlSeconds`) and answers the one it replaced, atomically (Redis SET PX GET):
   * of two concurrent callers, only one gets what was there before. A take that leaves a marker in
   * place of what it took (a single-use value, and a note that it was used).
   */
  swapTemp<T, R = T>(key: string, value: R, ttlSeconds: number): Promise<T | undefined>;
  deleteTemp(key: string): Promise<void>;

  /**
   * A temp value of bytes, stored as they are (Redis: the string's bytes, no JSON, no base64): for
   * sealed values kept long, a third smaller than their base64url text. Same keys and lifetimes as
   * setTemp (a `ttlSeconds` of 0 or less deletes); deleteTemp deletes it.
   */
  setBytes(key: string, value: Buffer, ttlSeconds: number): Promise<void>;
  /** The bytes of a temp value: one setBytes wrote, or the JSON text of one setTemp wrote. */
  getBytes(key: string): Promise<Buffer | undefined>;

  /**
   * Makes an existing temp value (setTemp or setBytes) live `ttlSeconds` from now, longer or shorter,
   * without sending it again (Redis PEXPIRE). True when the key was there; a missing key is not made.
   */
  expireTemp(key: string, ttlSeconds: number): Promise<boolean>;

  /** Atomically increments a counter and returns the new value. */
  incr(key: string): Promise<number>;
  getCounter(key: string): Promise<number>;

  /** Appends to a log and returns the entry's sequence number (1, 2, ...). */
  append<T>(log: string, entry: T): Promise<number>;
  /** Newest first; `before` pages backwards (entries with seq < before). */
  page<T>(log: string, opts: { before?: number; limit: number }): Promise<Array<LogEntry<T>>>;

  /**
   * Adds a member. With `ttlSeconds`, a new set lives that long and an existing set with a lifetime
   * lives at least that long from now (an index of records that expire then goes with them), never
   * shorter; a set that has no lifetime (created by an add without one) gets this one. Without
   * `ttlSeconds`, the set's lifetime is left as it is.
   */
  addToSet(key: string, member: string, ttlSeconds?: number): Promise<void>;
  /**
   * Adds members with a value each (`{member: value}`) and sets the set's lifetime to `ttlSeconds`
   * from now, exactly (Redis: HSET and PEXPIRE, two commands where addToSet's are three): for a set
   * whose every add asks the same lifetime, so the newest add is the one that ends last. setMembers
   * lists them with the others, setValues reads their values, removeFromSet removes them. Answers
   * false when the set is of a form written before that holds no values (Redis: a SET): the members
   * were added without them.
   */
  putInSet(key: string, values: Record<string, string>, ttlSeconds: number): Promise<boolean>;
  /** The values of `members` (putInSet) in their order: '' for one added by addToSet, undefined for one not there. */
  setValues(key: string, members: string[]): Promise<Array<string | undefined>>;
  removeFromSet(key: string, member: string): Promise<void>;
  setMembers(key: string): Promise<string[]>;
  deleteSet(key: string): Promise<void>;

  publish(channel: string, message: string): Promise<void>;
  /** Resolves once subscribed; the returned function unsubscribes. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;

  /**
   * What else to read when a token naming a session (its `sessionUid`) is about to be used: Concord's
   * own records of the session (sessions/), read with the token's grant instead of after it. One
   * reader: a later call replaces it (a provider built again). A store with no round trips to save
   * (memory) has none.
   */
  readSessionsWith?(reader: (sessionUid: string) => void): void;

  /** Throws StoreUnavailableError when the backend does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
