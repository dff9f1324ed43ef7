import { MemoryStore, type MemoryStoreOptions } from './memory.ts';
import type { Store } from './types.ts';

export interface StoreOptions {
  /** `memory`, `redis://...`/`rediss://...`, `redis-cluster://host:port,host:port` or `redis-sentinel://host:port,host:port/masterName` */
  url: string;
  /** Prefix of every key, so several deployments can share one Redis. */
  prefix?: string;
  /** Caps and sweeping of the embedded store (settings `memoryStore`). */
  memory?: MemoryStoreOptions;
}

/** Picks the backend named by CONCORD_STORE. The Redis backends are loaded only when used. */
export async function createStore(options: StoreOptions): Promise<Store> {
  if (options.url === 'memory') return new MemoryStore(options.memory);
  if (/^(rediss?|redis-cluster|redis-sentinel):\/\//.test(options.url)) {
    const { createRedisStore } = await import('./redis.ts');
    return createRedisStore(options);
  }
  // Only the scheme: the rest of a store URL may hold a password.
  throw new Error(`unknown store "${options.url.replace(/:\/\/.*$/, '://...')}": use memory, redis://host:port, redis-cluster://host:port,... or redis-sentinel://host:port,.../masterName`);
}
