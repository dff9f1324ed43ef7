import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every key and value under `prefix`, as one string, the way a reader of the store (a replica, a backup) would dump it. */
export async function dumpRedis(prefix: string): Promise<string> {
  const redis = new Redis(REDIS_URL);
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        out.push(key);
        const type = await redis.type(key);
        if (type === 'string') out.push((await redis.get(key)) ?? '');
        else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'set') out.push(...(await redis.smembers(key)));
        else if (type === 'list') out.push(...(await redis.lrange(key, 0, -1)));
      }
    } while (cursor !== '0');
    return out.join('\n');
  } finally {
    redis.disconnect();
  }
}
