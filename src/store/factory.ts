import { MemoryStore } from './memory.ts';
import type { Store } from './types.ts';

export interface StoreOptions {
  /** `memory`, `redis://...`/`rediss://...`, or `redis-cluster://host:port,host:port` */
  url: string;
  /** Prefix of every key, so several deployments can share one Redis. */
  prefix?: string;
}

/** Picks the backend named by CONCORD_STORE. The Redis backends are loaded only when used. */
export async function createStore(options: StoreOptions): Promise<Store> {
  if (options.url === 'memory') return new MemoryStore();
  if (/^rediss?:\/\//.test(options.url) || options.url.startsWith('redis-cluster://')) {
    const { createRedisStore } = await import('./redis.ts');
    return createRedisStore(options);
  }
  throw new Error(`unknown store "${options.url}": use memory, redis://host:port or redis-cluster://host:port,...`);
}
