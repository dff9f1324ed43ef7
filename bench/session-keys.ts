/**
 * What a live session keeps in Redis, key by key: N brokered logins (each a session of its own, a
 * refresh token issued) on the benchmark's own redis-server, then every key Concord holds, with its
 * type, its encoding (OBJECT ENCODING: a SET of strings is a `hashtable` on Redis 7.0, a small HASH
 * a `listpack`), its memory (MEMORY USAGE, SAMPLES 0: the whole value) and its remaining lifetime,
 * grouped by kind and by the field or member shape inside it. The figure behind `bench --quick`'s
 * "Long-lived Redis memory per session" row (bench/parts/redis.ts), explained.
 *
 *   node bench/session-keys.ts [logins=60] [--show]
 *
 * --show prints one value of each kind (a bench rig's made-up users: nothing of anyone's).
 *
 * Long-lived: keys living more than an hour, or without a lifetime (as bench/parts/redis.ts counts).
 * Per-deployment keys (records, counters, rate limits, logs) are listed apart.
 */
import { randomBytes } from 'node:crypto';
import { loginLoad, startLoginRig } from './lib/login-driver.ts';
import { benchRedis, stopBenchRedis } from './lib/redis.ts';
import { deploymentKind, kindOf } from './parts/redis.ts';

interface Kind {
  keys: number;
  bytes: number;
  /** Longest remaining TTL, seconds; -1 when one has none. */
  ttl: number;
  encodings: Map<string, number>;
  /** Value bytes (string length, or the sum of fields/members and their values). */
  valueBytes: number;
  /** Key name bytes. */
  keyBytes: number;
}

async function main(): Promise<void> {
  const n = Number(process.argv.slice(2).find((a) => /^[0-9]+$/.test(a)) ?? 60);
  const show = process.argv.includes('--show');
  const samples = new Map<string, string>();
  const redis = await benchRedis();
  const prefix = `bench-keys-${randomBytes(3).toString('hex')}:`;
  const rig = await startLoginRig({ store: redis.url, storePrefix: prefix, users: n });
  try {
    const run = await loginLoad(rig.issuer, rig.users, { concurrency: 4, seconds: 120, maxLogins: n });
    if (run.logins < n) throw new Error(`only ${run.logins} of ${n} logins succeeded: ${run.firstError}`);
    const kinds = new Map<string, Kind>();
    let cursor = '0';
    do {
      const [next, keys] = (await redis.command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
      cursor = next;
      for (const key of keys) {
        const type = String(await redis.command('TYPE', key));
        const encoding = String(await redis.command('OBJECT', 'ENCODING', key));
        const bytes = Number(await redis.command('MEMORY', 'USAGE', key, 'SAMPLES', 0));
        const ttl = Number(await redis.command('TTL', key));
        let valueBytes = 0;
        let parts: string[] = [];
        if (type === 'string') parts = [String(await redis.command('GET', key))];
        else if (type === 'hash') parts = (await redis.command('HGETALL', key)) as string[];
        else if (type === 'set') parts = (await redis.command('SMEMBERS', key)) as string[];
        if (type === 'string') valueBytes = Number(await redis.command('STRLEN', key)); // bytes (a sealed state is binary)
        else for (const part of parts) valueBytes += Buffer.byteLength(part);
        const kind = `${kindOf(key, prefix)} (${type})`;
        if (show && !samples.has(kind)) samples.set(kind, `${key}\n  ${parts.map((p) => p.slice(0, 600)).join('\n  ')}`);
        const k = kinds.get(kind) ?? { keys: 0, bytes: 0, ttl: 0, encodings: new Map(), valueBytes: 0, keyBytes: 0 };
        k.keys++;
        k.bytes += bytes;
        k.valueBytes += valueBytes;
        k.keyBytes += Buffer.byteLength(key);
        k.ttl = k.ttl < 0 || ttl < 0 ? -1 : Math.max(k.ttl, ttl);
        k.encodings.set(encoding, (k.encodings.get(encoding) ?? 0) + 1);
        kinds.set(kind, k);
      }
    } while (cursor !== '0');
    const lifetime = (ttl: number) => (ttl < 0 ? 'no TTL' : ttl <= 3600 ? `≤ ${Math.ceil(ttl / 60)} min` : ttl <= 86400 ? `${Math.round(ttl / 3600)} h` : `${Math.round(ttl / 86400)} d`);
    const long = (k: Kind) => k.ttl < 0 || k.ttl > 3600;
    const sorted = [...kinds].filter(([kind]) => !deploymentKind(kind)).sort((a, b) => Number(long(b[1])) - Number(long(a[1])) || b[1].bytes - a[1].bytes);
    const per = (x: number) => x / run.logins;
    const lines = [
      `${run.logins} logins, one session each (redis ${String(await redis.command('INFO', 'server')).match(/redis_version:(\S+)/)?.[1]}); per login:`,
      '',
      '| key kind (type) | keys | MEMORY USAGE B | key name B | value B | encoding | lifetime |',
      '|---|---:|---:|---:|---:|---|---|',
      ...sorted.map(([kind, k]) => `| ${kind} | ${per(k.keys).toFixed(2)} | ${Math.round(per(k.bytes))} | ${Math.round(k.keyBytes / k.keys)} | ${Math.round(k.valueBytes / k.keys)} | ${[...k.encodings.keys()].join(', ')} | ${lifetime(k.ttl)} |`),
    ];
    const total = (f: (k: Kind) => boolean) => Math.round(per(sorted.filter(([, k]) => f(k)).reduce((s, [, k]) => s + k.bytes, 0)));
    const keysOf = (f: (k: Kind) => boolean) => per(sorted.filter(([, k]) => f(k)).reduce((s, [, k]) => s + k.keys, 0)).toFixed(2);
    lines.push('', `Long-lived: ${total(long)} B per session in ${keysOf(long)} keys; short-lived: ${total((k) => !long(k))} B in ${keysOf((k) => !long(k))} keys.`);
    lines.push(`Per deployment: ${[...kinds].filter(([kind]) => deploymentKind(kind)).map(([kind, k]) => `${kind} ${k.keys} keys ${k.bytes} B`).join(', ')}.`);
    if (show) lines.push('', ...[...samples.values()]);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rig.stop();
    await stopBenchRedis();
  }
}

await main();
process.exit(0);
