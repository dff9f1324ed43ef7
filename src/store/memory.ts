import { EventEmitter } from 'node:events';
import type { Adapter, AdapterPayload, LogEntry, Store } from './types.ts';

interface Expiring<T> {
  value: T;
  /** epoch ms; undefined = never */
  expiresAt: number | undefined;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The entry under `key` unless it has expired; an expired one is dropped as it is found. */
function liveEntry<T>(map: Map<string, Expiring<T>>, key: string): Expiring<T> | undefined {
  const entry = map.get(key);
  if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    map.delete(key);
    return undefined;
  }
  return entry;
}

/** Values are copied in and out so callers can never mutate what is stored, as with Redis. */
const copy = <T>(value: T): T => (value === undefined ? value : structuredClone(value));

/**
 * The embedded store: one process, nothing persisted. The default for development and the demo;
 * production with more than one instance uses Redis.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #temp = new Map<string, Expiring<unknown>>();
  readonly #records = new Map<string, Map<string, unknown>>();
  readonly #counters = new Map<string, number>();
  readonly #logs = new Map<string, unknown[]>();
  readonly #sets = new Map<string, Expiring<Set<string>>>();
  readonly #bus = new EventEmitter().setMaxListeners(0);
  readonly #adapters = new Map<string, MemoryAdapter>();
  #closed = false;

  adapter(name: string): Adapter {
    let adapter = this.#adapters.get(name);
    if (!adapter) {
      adapter = new MemoryAdapter(name, this);
      this.#adapters.set(name, adapter);
    }
    return adapter;
  }

  async getRecord<T>(collection: string, id: string): Promise<T | undefined> {
    return copy(this.#records.get(collection)?.get(id) as T | undefined);
  }

  async putRecord<T>(collection: string, id: string, value: T): Promise<void> {
    let records = this.#records.get(collection);
    if (!records) this.#records.set(collection, (records = new Map()));
    records.set(id, copy(value));
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    return this.#records.get(collection)?.delete(id) ?? false;
  }

  async listRecords<T>(collection: string): Promise<Array<{ id: string; value: T }>> {
    return [...(this.#records.get(collection) ?? [])].map(([id, value]) => ({ id, value: copy(value as T) }));
  }

  async setTemp<T>(key: string, value: T, ttlSeconds: number): Promise<void> {
    this.#temp.set(key, { value: copy(value), expiresAt: Date.now() + ttlSeconds * 1000 });
  }

  async getTemp<T>(key: string): Promise<T | undefined> {
    return copy(this.#live(key) as T | undefined);
  }

  async takeTemp<T>(key: string): Promise<T | undefined> {
    const value = this.#live(key);
    this.#temp.delete(key);
    return value as T | undefined;
  }

  async deleteTemp(key: string): Promise<void> {
    this.#temp.delete(key);
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
    entries.push(copy(entry));
    return entries.length;
  }

  async page<T>(log: string, opts: { before?: number; limit: number }): Promise<Array<LogEntry<T>>> {
    const entries = this.#logs.get(log) ?? [];
    const end = Math.min(opts.before === undefined ? entries.length : opts.before - 1, entries.length);
    const out: Array<LogEntry<T>> = [];
    for (let seq = end; seq >= 1 && out.length < opts.limit; seq--) {
      out.push({ seq, entry: copy(entries[seq - 1] as T) });
    }
    return out;
  }

  #liveSet(key: string): Expiring<Set<string>> | undefined {
    return liveEntry(this.#sets, key);
  }

  async addToSet(key: string, member: string, ttlSeconds?: number): Promise<void> {
    const until = ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000;
    const entry = this.#liveSet(key);
    if (!entry) {
      this.#sets.set(key, { value: new Set([member]), expiresAt: until });
      return;
    }
    entry.value.add(member);
    // As SET_ADD in redis.ts: lengthened, never shortened; a set without a lifetime keeps none.
    if (until !== undefined && entry.expiresAt !== undefined && until > entry.expiresAt) entry.expiresAt = until;
  }

  async removeFromSet(key: string, member: string): Promise<void> {
    this.#liveSet(key)?.value.delete(member);
  }

  async setMembers(key: string): Promise<string[]> {
    return [...(this.#liveSet(key)?.value ?? [])];
  }

  async deleteSet(key: string): Promise<void> {
    this.#sets.delete(key);
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
    this.#bus.removeAllListeners();
  }

  #live(key: string): unknown {
    return liveEntry(this.#temp, key)?.value;
  }

  /** @internal used by MemoryAdapter */
  _temp(): Map<string, Expiring<unknown>> {
    return this.#temp;
  }
}

/** oidc-provider's adapter over the memory store's temp space, with the indexes it needs. */
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
    if (payload.grantId) {
      // The grant index lives as long as its longest member.
      const indexKey = `oidc:grant:${payload.grantId}`;
      const index = (await store.getTemp<string[]>(indexKey)) ?? [];
      index.push(this.#key(id));
      const current = store._temp().get(indexKey)?.expiresAt ?? 0;
      await store.setTemp(indexKey, index, Math.max(ttl, Math.ceil((current - Date.now()) / 1000)));
    }
    if (payload.userCode) await store.setTemp(`oidc:userCode:${payload.userCode}`, id, ttl);
    if (payload.uid) await store.setTemp(`oidc:uid:${payload.uid}`, id, ttl);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#store.getTemp<AdapterPayload>(this.#key(id));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.#store.getTemp<string>(`oidc:uid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await this.#store.getTemp<string>(`oidc:userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id: string): Promise<void> {
    const item = this.#store._temp().get(this.#key(id));
    if (item) (item.value as AdapterPayload).consumed = nowSeconds();
  }

  async destroy(id: string): Promise<void> {
    await this.#store.deleteTemp(this.#key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const indexKey = `oidc:grant:${grantId}`;
    const keys = (await this.#store.takeTemp<string[]>(indexKey)) ?? [];
    for (const key of keys) await this.#store.deleteTemp(key);
  }
}
