import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { startRedis, type RedisServer } from '../../test/support/redis-server.ts';

/*
 * The benchmarks use a redis-server of their own (a child process on a free loopback port), so
 * INFO figures (memory, command counts, bytes) are theirs alone and nobody else's keys are touched.
 */

let server: Promise<RedisServer> | undefined;

export function benchRedis(): Promise<RedisServer> {
  server ??= startRedis({ args: ['--maxmemory-policy', 'noeviction'] });
  return server;
}

export async function stopBenchRedis(): Promise<void> {
  if (!server) return;
  const s = await server.catch(() => undefined);
  server = undefined;
  await s?.stop();
}

/** INFO [section] as a map of field -> value. */
export async function info(redis: RedisServer, section = 'all'): Promise<Map<string, string>> {
  const text = String(await redis.command('INFO', section));
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

export interface CommandStats {
  /** command -> calls */
  calls: Map<string, number>;
  /** command -> microseconds spent in Redis */
  usec: Map<string, number>;
  total: number;
  totalUsec: number;
}

export async function commandStats(redis: RedisServer): Promise<CommandStats> {
  const all = await info(redis, 'commandstats');
  const calls = new Map<string, number>();
  const usec = new Map<string, number>();
  let total = 0;
  let totalUsec = 0;
  for (const [key, value] of all) {
    if (!key.startsWith('cmdstat_')) continue;
    const name = key.slice('cmdstat_'.length);
    // INFO, CONFIG, CLIENT, MONITOR: the benchmark's own commands.
    if (/^(info|config|client|monitor|memory|scan|dbsize|flushall|ping)\b/.test(name)) continue;
    const c = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
    const u = Number(/usec=(\d+)/.exec(value)?.[1] ?? 0);
    calls.set(name, c);
    usec.set(name, u);
    total += c;
    totalUsec += u;
  }
  return { calls, usec, total, totalUsec };
}

export async function netBytes(redis: RedisServer): Promise<{ input: number; output: number }> {
  const stats = await info(redis, 'stats');
  return { input: Number(stats.get('total_net_input_bytes')), output: Number(stats.get('total_net_output_bytes')) };
}

export async function usedMemory(redis: RedisServer): Promise<number> {
  return Number((await info(redis, 'memory')).get('used_memory'));
}

/** One command as MONITOR reports it. */
export interface Monitored {
  client: string;
  command: string;
  args: string[];
}

/**
 * MONITOR on its own connection: every command Redis executes, with the client that sent it.
 * Lua-internal commands (client "lua") are reported too; callers decide how to count them.
 */
export async function monitor(redis: RedisServer): Promise<{ lines: Monitored[]; stop(): Promise<void> }> {
  const socket = net.connect({ host: redis.host, port: redis.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const lines: Monitored[] = [];
  let buf = '';
  let ok = false;
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!ok) {
          ok = line === '+OK';
          if (ok) resolve();
          continue;
        }
        const m = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
        if (!m) continue;
        const args = [...m[2]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((a) => unescapeMonitorArg(a[1]!));
        if (args.length === 0) continue;
        lines.push({ client: m[1]!, command: args[0]!.toLowerCase(), args: args.slice(1) });
      }
    });
    socket.write('MONITOR\r\n');
  });
  return {
    lines,
    async stop() {
      // Let the last lines arrive.
      await new Promise((r) => setTimeout(r, 100));
      socket.destroy();
    },
  };
}

/**
 * Round trips in a MONITOR trace: each command a client sends is one, except that a
 * MULTI ... EXEC block (ioredis sends it as one write) is one, and commands run inside Lua are none.
 */
export function roundTrips(lines: Monitored[]): number {
  const inMulti = new Set<string>();
  let trips = 0;
  for (const l of lines) {
    if (l.client === 'lua') continue;
    if (l.command === 'multi') {
      inMulti.add(l.client);
      trips++;
      continue;
    }
    if (inMulti.has(l.client)) {
      if (l.command === 'exec' || l.command === 'discard') inMulti.delete(l.client);
      continue;
    }
    trips++;
  }
  return trips;
}

let ticksPerSecond: number | undefined;

/** CPU time (user + system) of a process so far, in milliseconds, from /proc (Linux). */
export function processCpuMs(pid: number): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) / ticksPerSecond) * 1000;
}

/** Undoes MONITOR's quoting of one argument (sdscatrepr: \\ \" \n \r \t \a \b and \xhh). */
export function unescapeMonitorArg(raw: string): string {
  return raw.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    if (e.length === 3) return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' } as Record<string, string>)[e] ?? e;
  });
}

/**
 * A trace cut into what a client sends at once: a single command, or a MULTI..EXEC block.
 * Commands run inside Lua are left out (their EVALSHA is what was sent).
 */
export function sendUnits(lines: Monitored[]): Monitored[][] {
  const units: Monitored[][] = [];
  const open = new Map<string, Monitored[]>();
  for (const l of lines) {
    if (l.client === 'lua') continue;
    const block = open.get(l.client);
    if (l.command === 'multi') {
      open.set(l.client, []);
    } else if (block) {
      if (l.command === 'exec') {
        units.push(block);
        open.delete(l.client);
      } else {
        block.push(l);
      }
    } else {
      units.push([l]);
    }
  }
  return units;
}
