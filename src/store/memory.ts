import { EventEmitter } from 'node:events';
import { StoreFullError } from './errors.ts';
import { noteDestroyed } from './request-reads.ts';
import type { Adapter, AdapterPayload, LogEntry, Store } from './types.ts';

export interface MemoryStoreOptions {
  /**
   * Most entries the traffic-driven spaces may hold: temp values (interactions, sessions, codes,
   * tokens, accounts, pending logins) and set members. Default 200,000.
   */
  maxEntries?: number;
  /** Most bytes (JSON characters, plus keys) those entries may take. Default 256 MiB. */
  maxBytes?: number;
  /** How often expired entries are swept, in milliseconds (0: only as they are read). Default 10,000. */
  sweepIntervalMs?: number;
}

export const MEMORY_STORE_DEFAULTS = { maxEntries: 200_000, maxBytes: 256 * 1024 * 1024, sweepIntervalMs: 10_000 } as const;

/** What one entry costs beyond its key and value: the Map slot and the record around it. */
const ENTRY_OVERHEAD = 64;

/** A set: its members, and the values of those added with one (putInSet). */
type SetEntry = Expiring<Set<string>> & { values?: Map<string, string> };

interface Expiring<T> {
  value: T;
  /** epoch ms; undefined = never */
  expiresAt: number | undefined;
  /** What this entry counts against maxBytes. */
  bytes: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const expired = (entry: { expiresAt: number | undefined }, now: number) => entry.expiresAt !== undefined && entry.expiresAt <= now;

/**
 * Values are kept as JSON, as Redis keeps them: callers can never mutate what is stored, both
 * backends give back the same shapes, a value's size is its length, and reading a value back never
 * recurses (a deeply nested value that JSON.stringify wrote, JSON.parse reads).
 */
const serialize = (value: unknown): string => JSON.stringify(value) ?? 'null';
/**
 * What a temp value of bytes (setBytes) starts with, held as a latin1 string (a character a byte):
 * no JSON text starts with NUL, so getTemp of it fails to parse, as Redis's JSON.parse of bytes does.
 */
const BYTES = '\u0000';
const deserialize = <T>(raw: string | undefined): T | undefined => (raw === undefined ? undefined : (JSON.parse(raw) as T));

/**
 * The embedded store: one process, nothing persisted. The default for development and the demo;
 * production with more than one instance uses Redis.
 *
 * Nothing grows without bound: expired entries are swept on a timer (not only when read again), and
 * the traffic-driven spaces (temp values, sets) are capped in entries and bytes. Past the
 * cap a write that would add an entry fails with StoreFullError (a StoreUnavailableError: 503 with
 * Retry-After, a page for people, `temporarily_unavailable` for programs) and a warning is logged
 * by the caller; updates and deletes of existing entries still work, so logins under way can finish
 * and the store drains as entries expire. Records, counters and logs (participants, clients, keys,
 * rotation and sync counters, the audit log) are written by administrators and timers, not traffic,
 * and are not capped: a full store never stops a key rotation.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #temp = new Map<string, Expiring<string>>();
  readonly #records = new Map<string, Map<string, string>>();
  readonly #counters = new Map<string, number>();
  readonly #logs = new Map<string, string[]>();
  readonly #sets = new Map<string, SetEntry>();
  readonly #bus = new EventEmitter().setMaxListeners(0);
  readonly #adapters = new Map<string, MemoryAdapter>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #sweeper: NodeJS.Timeout | undefined;
  #entries = 0;
  #bytes = 0;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? MEMORY_STORE_DEFAULTS.maxEntries;
    this.#maxBytes = options.maxBytes ?? MEMORY_STORE_DEFAULTS.maxBytes;
    const every = options.sweepIntervalMs ?? MEMORY_STORE_DEFAULTS.sweepIntervalMs;
    if (every > 0) {
      this.#sweeper = setInterval(() => this.sweep(), every);
      this.#sweeper.unref();
    }
  }

  /** Entries and bytes held now in the capped spaces (for tests and metrics). */
  usage(): { entries: number; bytes: number; maxEntries: number; maxBytes: number } {
    return { entries: this.#entries, bytes: this.#bytes, maxEntries: this.#maxEntries, maxBytes: this.#maxBytes };
  }

  /** Drops every expired temp value and set now. Returns how many entries went. */
  sweep(): number {
    const now = Date.now();
    let dropped = 0;
    for (const [key, entry] of this.#temp) {
      if (expired(entry, now)) {
        this.#dropTemp(key, entry);
        dropped++;
      }
    }
    for (const [key, entry] of this.#sets) {
      if (expired(entry, now)) {
        dropped += entry.value.size;
        this.#dropSet(key, entry);
      }
    }
    return dropped;
  }

  adapter(name: string): Adapter {
    let adapter = this.#adapters.get(name);
    if (!adapter) {
      adapter = new MemoryAdapter(name, this);
      this.#adapters.set(name, adapter);
    }
    return adapter;
  }

  async getRecord<T>(collection: string, id: string): Promise<T | undefined> {
    return deserialize<T>(this.#records.get(collection)?.get(id));
  }

  async putRecord<T>(collection: string, id: string, value: T): Promise<void> {
    let records = this.#records.get(collection);
    if (!records) this.#records.set(collection, (records = new Map()));
    records.set(id, serialize(value));
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    return this.#records.get(collection)?.delete(id) ?? false;
  }

  async listRecords<T>(collection: string): Promise<Array<{ id: string; value: T }>> {
    return [...(this.#records.get(collection) ?? [])].map(([id, value]) => ({ id, value: JSON.parse(value) as T }));
  }

  async setTemp<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    this._writeTemp(key, serialize(value), Date.now() + ttlSeconds * 1000);
  }

  async setBytes(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) await this.deleteTemp(key);
    else this._writeTemp(key, BYTES + value.toString('latin1'), Date.now() + ttlSeconds * 1000);
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const value = this._readTemp(key)?.value;
    if (value === undefined) return undefined;
    // A value setTemp wrote is JSON text: its UTF-8 bytes, as Redis would answer them.
    return value.startsWith(BYTES) ? Buffer.from(value.slice(BYTES.length), 'latin1') : Buffer.from(value, 'utf8');
  }

  async getTemp<T>(key: string): Promise<T | undefined> {
    return deserialize<T>(this._readTemp(key)?.value);
  }

  async expireTemp(key: string, ttlSeconds: number): Promise<boolean> {
    const entry = this._readTemp(key);
    if (!entry) return false;
    if (ttlSeconds > 0) entry.expiresAt = Date.now() + ttlSeconds * 1000;
    else this.#dropTemp(key, entry);
    return true;
  }

  async takeTemp<T>(key: string): Promise<T | undefined> {
    const entry = this._readTemp(key);
    if (entry) this.#dropTemp(key, entry);
    return deserialize<T>(entry?.value);
  }

  async swapTemp<T, R = T>(key: string, value: R, ttlSeconds: number): Promise<T | undefined> {
    // Read and write with no await between: no other call runs in between.
    const entry = this._readTemp(key);
    const before = entry?.value;
    if (ttlSeconds > 0) this._writeTemp(key, serialize(value), Date.now() + ttlSeconds * 1000);
    else if (entry) this.#dropTemp(key, entry);
    return deserialize<T>(before);
  }

  async claimTemp<T>(key: string, value: T, ttlSeconds: number): Promise<boolean> {
    // Read and write with no await between: no other call runs in between.
    if (!(ttlSeconds > 0) || this._readTemp(key) !== undefined) return false;
    this._writeTemp(key, serialize(value), Date.now() + ttlSeconds * 1000);
    return true;
  }

  async deleteTemp(key: string): Promise<void> {
    const entry = this.#temp.get(key);
    if (entry) this.#dropTemp(key, entry);
  }

  async incr(key: string): Promise<number> {
    const next = (this.#counters.get(key) ?? 0) + 1;
    this.#counters.set(key, next);
    return next;
  }

  async getCounter(key: string): Promise<number> {
    return this.#counters.get(key) ?? 0;
  }

  async append<T>(log: string, entry: T): Promise<number> {
    let entries = this.#logs.get(log);
    if (!entries) this.#logs.set(log, (entries = []));
    entries.push(serialize(entry));
    return entries.length;
  }

  async page<T>(log: string, opts: { before?: number; limit: number }): Promise<Array<LogEntry<T>>> {
    const entries = this.#logs.get(log) ?? [];
    const end = Math.min(opts.before === undefined ? entries.length : opts.before - 1, entries.length);
    const out: Array<LogEntry<T>> = [];
    for (let seq = end; seq >= 1 && out.length < opts.limit; seq--) {
      out.push({ seq, entry: JSON.parse(entries[seq - 1]!) as T });
    }
    return out;
  }

  #liveSet(key: string): SetEntry | undefined {
    const entry = this.#sets.get(key);
    if (entry && expired(entry, Date.now())) {
      this.#dropSet(key, entry);
      return undefined;
    }
    return entry;
  }

  async addToSet(key: string, member: string, ttlSeconds?: number): Promise<void> {
    const until = ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000;
    const entry = this.#liveSet(key);
    if (entry?.value.has(member)) {
      if (until !== undefined && (entry.expiresAt === undefined || until > entry.expiresAt)) entry.expiresAt = until;
      return;
    }
    const bytes = member.length + ENTRY_OVERHEAD + (entry ? 0 : key.length);
    this.#admit(bytes);
    if (!entry) {
      this.#sets.set(key, { value: new Set([member]), expiresAt: until, bytes });
      return;
    }
    entry.value.add(member);
    entry.bytes += bytes;
    // As setAdd in redis.ts (PEXPIRE NX, then GT): lengthened, never shortened; a set without a lifetime gets this one.
    if (until !== undefined && (entry.expiresAt === undefined || until > entry.expiresAt)) entry.expiresAt = until;
  }

  async putInSet(key: string, values: Record<string, string>, ttlSeconds: number): Promise<boolean> {
    for (const [member, value] of Object.entries(values)) {
      await this.addToSet(key, member);
      const entry = this.#sets.get(key)!;
      const map = (entry.values ??= new Map());
      const grown = value.length - (map.get(member)?.length ?? 0);
      // A value is no entry of its own: its bytes count with its member's.
      this.#admit(grown, { entry: false });
      entry.bytes += grown;
      map.set(member, value);
    }
    const entry = this.#sets.get(key);
    if (entry) entry.expiresAt = Date.now() + ttlSeconds * 1000;
    return true;
  }

  async setValues(key: string, members: string[]): Promise<Array<string | undefined>> {
    const entry = this.#liveSet(key);
    return members.map((m) => (entry?.value.has(m) ? (entry.values?.get(m) ?? '') : undefined));
  }

  async removeFromSet(key: string, member: string): Promise<void> {
    const entry = this.#liveSet(key);
    if (!entry?.value.delete(member)) return;
    const value = entry.values?.get(member);
    if (value !== undefined) {
      entry.values!.delete(member);
      entry.bytes -= value.length;
      this.#bytes -= value.length;
    }
    const bytes = member.length + ENTRY_OVERHEAD;
    entry.bytes -= bytes;
    this.#entries--;
    this.#bytes -= bytes;
  }

  async setMembers(key: string): Promise<string[]> {
    return [...(this.#liveSet(key)?.value ?? [])];
  }

  async deleteSet(key: string): Promise<void> {
    const entry = this.#sets.get(key);
    if (entry) this.#dropSet(key, entry);
  }

  async publish(channel: string, message: string): Promise<void> {
    // Asynchronous like a real broker: a publisher never runs subscribers on its own stack.
    setImmediate(() => this.#bus.emit(channel, message));
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    this.#bus.on(channel, onMessage);
    return async () => {
      this.#bus.off(channel, onMessage);
    };
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new Error('store closed');
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#bus.removeAllListeners();
  }

  /**
   * Room for one more entry of `bytes`, or StoreFullError; `entry: false` counts the bytes only (a
   * set member's value), under the same check.
   */
  #admit(bytes: number, { entry = true }: { entry?: boolean } = {}): void {
    if (this.#entries + 1 > this.#maxEntries || this.#bytes + bytes > this.#maxBytes) {
      throw new StoreFullError(`the embedded store is full (${this.#entries} entries, ${this.#bytes} bytes; caps ${this.#maxEntries} and ${this.#maxBytes})`);
    }
    if (entry) this.#entries++;
    this.#bytes += bytes;
  }

  #dropTemp(key: string, entry: Expiring<string>): void {
    this.#temp.delete(key);
    this.#entries--;
    this.#bytes -= entry.bytes;
  }

  #dropSet(key: string, entry: SetEntry): void {
    this.#sets.delete(key);
    this.#entries -= entry.value.size;
    this.#bytes -= entry.bytes;
  }

  /** @internal The live entry under `key` (an expired one is dropped as it is found); used by MemoryAdapter. */
  _readTemp(key: string): Expiring<string> | undefined {
    const entry = this.#temp.get(key);
    if (entry && expired(entry, Date.now())) {
      this.#dropTemp(key, entry);
      return undefined;
    }
    return entry;
  }

  /** @internal The members of a live set, and the set deleted, in one step (nothing runs in between); used by MemoryAdapter. */
  _takeSet(key: string): string[] {
    const entry = this.#liveSet(key);
    if (!entry) return [];
    this.#dropSet(key, entry);
    return [...entry.value];
  }

  /** @internal Writes a serialized value; a new key must fit under the caps, an existing one is replaced. */
  _writeTemp(key: string, raw: string, expiresAt: number): void {
    const bytes = key.length + raw.length + ENTRY_OVERHEAD;
    const existing = this._readTemp(key);
    if (existing) {
      this.#bytes += bytes - existing.bytes;
      existing.value = raw;
      existing.expiresAt = expiresAt;
      existing.bytes = bytes;
      return;
    }
    this.#admit(bytes);
    this.#temp.set(key, { value: raw, expiresAt, bytes });
  }
}

/** The set of a grant's tokens (their keys), which revokeByGrantId deletes. */
const grantIndex = (grantId: string) => `oidc:grant:${grantId}`;

/** oidc-provider's adapter over the memory store's temp space, with the indexes it needs. */
/** A payload found by uid, given the id it is stored under as its `jti` when it has none (in place: each find gets its own copy). */
function withJti(payload: AdapterPayload | undefined, id: string): AdapterPayload | undefined {
  if (payload && payload.jti === undefined) payload.jti = id;
  return payload;
}

class MemoryAdapter implements Adapter {
  readonly #name: string;
  readonly #store: MemoryStore;

  constructor(name: string, store: MemoryStore) {
    this.#name = name;
    this.#store = store;
  }

  #key(id: string) {
    return `oidc:${this.#name}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const ttl = expiresIn ?? 14 * 24 * 3600;
    const store = this.#store;
    await store.setTemp(this.#key(id), payload, ttl);
    // The grant's index: a set, as in Redis (a token added in constant time, however many the grant
    // has had: a rotating refresh token adds two per refresh for as long as the grant lives), living
    // as long as its longest member.
    if (payload.grantId) await store.addToSet(grantIndex(payload.grantId), this.#key(id), ttl);
    if (payload.userCode) await store.setTemp(`oidc:userCode:${payload.userCode}`, id, ttl);
    if (payload.uid) await store.setTemp(`oidc:uid:${payload.uid}`, id, ttl);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#store.getTemp<AdapterPayload>(this.#key(id));
  }

  /** The payload its uid index names, with that id as its `jti` when it was stored without one (provider/compact-payloads.ts). */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.#store.getTemp<string>(`oidc:uid:${uid}`);
    return id === undefined ? undefined : withJti(await this.find(id), id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await this.#store.getTemp<string>(`oidc:userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  /** As the Redis store's: written again without `drops` (fields as stored, see Adapter). */
  async consume(id: string, drops: readonly string[] = []): Promise<void> {
    const key = this.#key(id);
    const entry = this.#store._readTemp(key);
    if (!entry) return;
    const payload = JSON.parse(entry.value) as AdapterPayload;
    for (const field of drops) delete payload[field];
    payload.consumed = nowSeconds();
    this.#store._writeTemp(key, serialize(payload), entry.expiresAt ?? Date.now());
  }

  async destroy(id: string): Promise<void> {
    const deleted = this.#store.takeTemp(this.#key(id)).then((value) => value !== undefined);
    noteDestroyed(this.#name, id, deleted);
    await deleted;
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const key of this.#store._takeSet(grantIndex(grantId))) await this.#store.deleteTemp(key);
  }
}
