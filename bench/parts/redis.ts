/**
 * What a login costs Redis: round trips, commands and bytes per login, and memory per thousand
 * live sessions. Concord (child process) on the benchmark's own redis-server, real logins through
 * a real partner IdP (bench/lib/login-driver.ts).
 *
 *  - commands, Redis CPU and bytes: INFO commandstats / stats deltas around N logins, minus
 *    Concord's background traffic measured on the same instance while idle;
 *  - round trips: Concord's writes to its Redis sockets around M logins done one at a time, step
 *    by step (a pipeline or MULTI..EXEC block is one write); MONITOR around the same logins for
 *    what was sent one by one (a MULTI..EXEC block once, Lua-internal commands not at all);
 *  - memory: INFO used_memory delta around the N logins, and MEMORY USAGE of every key Concord
 *    holds afterwards, grouped by kind and lifetime.
 *
 *   node bench/parts/redis.ts
 *
 * BENCH_MONITOR_DUMP=file writes the traced commands, one a line; BENCH_WRITES_DUMP=file appends
 * Concord's every write to Redis with the commands it carries (a round trip each), the traced
 * logins' steps marked among them.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { RedisServer } from '../../test/support/redis-server.ts';
import { login, loginLoad, startLoginRig, type LoginStep } from '../lib/login-driver.ts';
import { Redis } from 'ioredis';
import { benchRedis, commandStats, monitor, netBytes, processCpuMs, roundTrips, sendUnits, usedMemory, type CommandStats, type Monitored } from '../lib/redis.ts';
import { fmtBytes, runAlone, sleep, type Row, type Section } from '../lib/report.ts';

interface Snapshot {
  at: number;
  stats: CommandStats;
  bytes: { input: number; output: number };
}

async function snapshot(redis: RedisServer): Promise<Snapshot> {
  const bytes = await netBytes(redis);
  const stats = await commandStats(redis);
  return { at: performance.now(), stats, bytes };
}

function delta(a: Snapshot, b: Snapshot) {
  const calls = new Map<string, number>();
  for (const [name, n] of b.stats.calls) calls.set(name, n - (a.stats.calls.get(name) ?? 0));
  return {
    seconds: (b.at - a.at) / 1000,
    commands: b.stats.total - a.stats.total,
    usec: b.stats.totalUsec - a.stats.totalUsec,
    input: b.bytes.input - a.bytes.input,
    output: b.bytes.output - a.bytes.output,
    calls,
  };
}

/** Whether a kind of key (kindOf) belongs to the deployment (records, counters, rate limits, logs), not to a login or session. */
export const deploymentKind = (kind: string): boolean => /^(rec|ctr|rl|log):/.test(kind);

/** The kind of a key: its prefix-free form with ids replaced, e.g. oidc:Session:*, tmp:account:*. */
export function kindOf(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  const parts = rest.split(':');
  const head = parts[0]!;
  if (head === 'oidc' || head === 'oidc-uid' || head === 'oidc-ucode') return `${head}:${parts[1]}`;
  if (head === 'oidc-grant') return 'oidc-grant (grant index)';
  if (head === 'tmp' || head === 'set' || head === 'ctr' || head === 'rl') return `${head}:${(parts[1] ?? '').replace(/\{.*$/, '')}`;
  if (head === 'rec' || head === 'log') return `${head}:${parts.slice(1).join(':')}`;
  return head;
}

export interface RedisPartOptions {
  /** Logins counted by INFO (commands, bytes, memory, CPU). Default 300. */
  logins?: number;
  /** Logins traced one by one under MONITOR (round trips per step). Default 30. */
  monitored?: number;
  /** Seconds of warm-up logins and of idle background measurement. Default 3 each. */
  warmupSeconds?: number;
  idleSeconds?: number;
  /** Replay the traced commands under load (Redis CPU per login when busy). Default true. */
  replay?: boolean;
  /**
   * Concord's CPU per login once its code is compiled and optimised: more logins until the instance
   * has served `steady.after` in all, then CPU over `steady.logins` more. The CPU per login above
   * (the goal's measure) counts logins soon after start, while V8 still compiles and optimises (CPU per
   * login keeps falling for several hundred logins). Default (full run) { after: 700, logins: 300 }; false: not measured.
   */
  steady?: { after: number; logins: number } | false;
}

export async function redisPart(options: RedisPartOptions = {}): Promise<Section> {
  const n = options.logins ?? 300;
  const m = options.monitored ?? 30;
  const steady = options.steady === undefined ? { after: 700, logins: 300 } : options.steady;
  const redis = await benchRedis();
  const prefix = `bench-redis-${randomBytes(3).toString('hex')}:`;
  const rig = await startLoginRig({ store: redis.url, storePrefix: prefix, users: n + m + 100 + (steady ? steady.after + steady.logins : 0) });
  const figures: Record<string, number> = {};
  try {
    // Warm-up (partner discovery and JWKS cached), with users the measured logins will not use.
    const warmUsers = rig.users.slice(n + m);
    const warm = await loginLoad(rig.issuer, warmUsers, { concurrency: 4, seconds: options.warmupSeconds ?? 3, maxLogins: 40 });
    // Compiled code paths before CPU is counted: at least 20 logins whatever the machine's speed.
    const warmMore = warm.logins < 20 ? await loginLoad(rig.issuer, warmUsers.slice(40), { concurrency: 4, seconds: 30, maxLogins: 20 - warm.logins }) : undefined;
    if (warm.logins === 0) throw new Error(`no login succeeded during warm-up: ${warm.firstError}`);

    // Background: what an idle instance sends anyway (key reloads every second).
    const snapshotCost = delta(await snapshot(redis), await snapshot(redis));
    const idleCpu0 = processCpuMs(redis.pid!);
    const idleConcord0 = await rig.concord.cpu();
    const idleWrites0 = idleConcord0.redisWrites;
    const idle0 = await snapshot(redis);
    await sleep((options.idleSeconds ?? 3) * 1000);
    const idle = delta(idle0, await snapshot(redis));
    const idleCpuPerSecond = (processCpuMs(redis.pid!) - idleCpu0) / idle.seconds;
    const idleConcord1 = await rig.concord.cpu();
    const idleWritesPerSecond = (idleConcord1.redisWrites - idleWrites0) / idle.seconds;
    // Concord's own CPU while idle (timers, store polling, metrics): it runs during the logins too and is charged to them.
    figures.concord_idle_cpu_ms_per_s = (idleConcord1.ms - idleConcord0.ms) / idle.seconds;
    const perSecond = {
      commands: (idle.commands - snapshotCost.commands) / idle.seconds,
      input: (idle.input - snapshotCost.input) / idle.seconds,
      output: (idle.output - snapshotCost.output) / idle.seconds,
    };

    // N logins: commands, bytes, memory.
    const memory0 = await usedMemory(redis);
    const cpu0 = processCpuMs(redis.pid!);
    const concord0 = await rig.concord.cpu();
    const before = await snapshot(redis);
    const run = await loginLoad(rig.issuer, rig.users.slice(0, n), { concurrency: 4, seconds: 60, maxLogins: n });
    const after = await snapshot(redis);
    const concord1 = await rig.concord.cpu();
    const cpu1 = processCpuMs(redis.pid!);
    figures.concord_cpu_ms_per_login = (concord1.ms - concord0.ms) / Math.max(1, run.logins);
    figures.concord_login_seconds_per_login = run.seconds / Math.max(1, run.logins);
    await sleep(200);
    const memory1 = await usedMemory(redis);
    if (run.logins < n * 0.95) throw new Error(`only ${run.logins} of ${n} logins succeeded: ${run.firstError}`);
    const d = delta(before, after);
    const background = (x: number) => x * d.seconds;
    const commands = (d.commands - snapshotCost.commands - background(perSecond.commands)) / run.logins;
    const input = (d.input - snapshotCost.input - background(perSecond.input)) / run.logins;
    const output = (d.output - snapshotCost.output - background(perSecond.output)) / run.logins;
    const memoryPerLogin = (memory1 - memory0) / run.logins;
    const redisCpuPerLogin = (cpu1 - cpu0 - idleCpuPerSecond * d.seconds) / run.logins;
    figures.redis_process_cpu_ms_per_login = redisCpuPerLogin;
    figures.redis_commands_per_login = commands;
    figures.redis_bytes_in_per_login = input;
    figures.redis_bytes_out_per_login = output;
    figures.redis_usec_per_login = d.usec / run.logins;
    figures.redis_memory_per_login = memoryPerLogin;

    // Key census: every key of this Concord, by kind, with its memory and remaining lifetime.
    /** ttl: the longest remaining TTL in seconds of the kind's keys; -1 when one of them has none. */
    const census = new Map<string, { keys: number; bytes: number; ttl: number }>();
    let cursor = '0';
    do {
      const [next, keys] = (await redis.command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)) as [string, string[]];
      cursor = next;
      for (const key of keys) {
        const bytes = Number(await redis.command('MEMORY', 'USAGE', key, 'SAMPLES', 0));
        const ttl = Number(await redis.command('TTL', key));
        const kind = kindOf(key, prefix);
        const entry = census.get(kind) ?? { keys: 0, bytes: 0, ttl: 0 };
        entry.keys++;
        entry.bytes += bytes;
        entry.ttl = entry.ttl < 0 || ttl < 0 ? -1 : Math.max(entry.ttl, ttl);
        census.set(kind, entry);
      }
    } while (cursor !== '0');
    const loginsHeld = warm.logins + (warmMore?.logins ?? 0) + run.logins;
    const lifetime = (ttl: number) => (ttl < 0 ? 'no TTL' : ttl <= 3600 ? `short (≤ ${Math.ceil(ttl / 60)} min)` : ttl <= 86400 ? `${Math.round(ttl / 3600)} h` : `${Math.round(ttl / 86400)} d`);
    const kinds = [...census].sort((a, b) => b[1].bytes - a[1].bytes);
    let longLived = 0;
    let shortLived = 0;
    for (const [kind, e] of kinds) {
      if (deploymentKind(kind)) continue;
      if (e.ttl > 3600 || e.ttl < 0) longLived += e.bytes;
      else shortLived += e.bytes;
    }
    figures.redis_long_lived_bytes_per_login = longLived / loginsHeld;
    figures.redis_short_lived_bytes_per_login = shortLived / loginsHeld;

    // M logins one at a time under MONITOR: round trips per login and per step.
    const steps: Record<LoginStep, number> = { authorize: 0, email: 0, upstream: 0, exchange: 0 };
    // Round trips: Concord's writes to its Redis sockets (bench/servers/child.ts), step by step.
    const sentSteps: Record<LoginStep, number> = { authorize: 0, email: 0, upstream: 0, exchange: 0 };
    const mon = await monitor(redis);
    let commandsMonitored = 0;
    let sentMonitored = 0;
    const t0 = performance.now();
    try {
      let mark = 0;
      let writes = (await rig.concord.cpu()).redisWrites;
      let stepStart = performance.now();
      const settle = async () => {
        await sleep(15);
        return mon.lines.length;
      };
      for (let i = 0; i < m; i++) {
        await login(rig.issuer, rig.users[n + i]!, async (step) => {
          const end = await settle();
          // With BENCH_WRITES_DUMP (bench/servers/child.ts), each step's end among Concord's writes.
          if (process.env.BENCH_WRITES_DUMP) appendFileSync(process.env.BENCH_WRITES_DUMP, `--- login ${i + 1}: end of ${step}\n`);
          const slice = ours(mon.lines.slice(mark, end), prefix);
          sentSteps[step] += roundTrips(slice);
          mark = end;
          const now = (await rig.concord.cpu()).redisWrites;
          // The idle instance's own traffic (key reloads every second) is taken out pro rata.
          steps[step] += now - writes - (idleWritesPerSecond * (performance.now() - stepStart)) / 1000;
          writes = now;
          stepStart = performance.now();
        });
      }
    } finally {
      await mon.stop();
    }
    const monitoredSeconds = (performance.now() - t0) / 1000;
    const all = ours(mon.lines, prefix);
    // BENCH_MONITOR_DUMP=file: the traced commands, one a line (arguments cut at 90 characters), to see what a login sends.
    if (process.env.BENCH_MONITOR_DUMP) writeFileSync(process.env.BENCH_MONITOR_DUMP, `${all.map((l) => `${l.client} ${l.command} ${l.args.map((a) => a.slice(0, 90)).join(' ')}`).join('\n')}\n`);
    sentMonitored = roundTrips(all);
    commandsMonitored = all.filter((l) => l.client !== 'lua').length;
    const backgroundSent = perSecond.commands * monitoredSeconds;
    const sentPerLogin = (sentMonitored - backgroundSent) / m;
    figures.redis_sent_units_per_login = sentPerLogin;
    const tripsPerLogin = Object.values(steps).reduce((a, b) => a + b, 0) / m;
    figures.redis_round_trips_per_login = tripsPerLogin;
    // Redis under load: the M logins' commands, replayed as fast as 16 connections (16 instances) go.
    const replay = options.replay === false ? undefined : await replayUnits(redis, sendUnits(all), m, 4, idleCpuPerSecond);
    if (replay) {
      figures.redis_replay_cpu_ms_per_login = replay.cpuMsPerLogin;
      figures.redis_replay_logins_per_second = replay.loginsPerSecond;
    }
    const stepFigures = Object.fromEntries((Object.keys(steps) as LoginStep[]).map((s) => [`redis_round_trips_${s}`, steps[s] / m]));
    Object.assign(figures, stepFigures);

    const perStep = (Object.keys(steps) as LoginStep[]).map((s) => `${s} ${(steps[s] / m).toFixed(1)}`).join(', ');
    const perStepSent = (Object.keys(sentSteps) as LoginStep[]).map((s) => `${s} ${(sentSteps[s] / m).toFixed(1)}`).join(', ');

    // Steady state: the same instance, after enough logins for V8 to have compiled and optimised their code.
    let steadyRun: { logins: number; ms: number; seconds: number; from: number } | undefined;
    if (steady) {
      const served = warm.logins + (warmMore?.logins ?? 0) + run.logins + m;
      const steadyUsers = rig.users.slice(n + m);
      if (served < steady.after) await loginLoad(rig.issuer, steadyUsers, { concurrency: 4, seconds: 300, maxLogins: steady.after - served });
      const c0 = await rig.concord.cpu();
      const load = await loginLoad(rig.issuer, steadyUsers, { concurrency: 4, seconds: 300, maxLogins: steady.logins, offset: Math.max(0, steady.after - served) });
      const c1 = await rig.concord.cpu();
      if (load.logins < steady.logins * 0.95) throw new Error(`only ${load.logins} of ${steady.logins} steady-state logins succeeded: ${load.firstError}`);
      steadyRun = { logins: load.logins, ms: (c1.ms - c0.ms) / load.logins, seconds: load.seconds, from: Math.max(served, steady.after) + 1 };
      figures.concord_steady_cpu_ms_per_login = steadyRun.ms;
    }
    const idleShare = (seconds: number, logins: number) => `${((figures.concord_idle_cpu_ms_per_s! * seconds) / logins).toFixed(2)} ms of it`;

    const rows: Row[] = [
      {
        name: 'Redis round trips per login',
        rate: tripsPerLogin,
        unit: 'round trips',
        note:
          `per step: ${perStep} (Concord's writes to Redis, ${m} logins one by one; background ${idleWritesPerSecond.toFixed(1)}/s removed); ` +
          `sent one by one (MONITOR: a command or MULTI block each, whether pipelined or not): ${sentPerLogin.toFixed(1)} (${perStepSent})`,
      },
      { name: 'Redis commands per login', rate: commands, unit: 'commands', note: `incl. those inside MULTI/EXEC and Lua (INFO commandstats, ${run.logins} logins, 4 at a time); MONITOR counted ${(commandsMonitored / m).toFixed(1)} sent` },
      {
        name: 'Concord CPU per login',
        rate: figures.concord_cpu_ms_per_login,
        unit: 'ms',
        note: `the Concord process's own CPU time over the ${run.logins} logins (4 at a time), Redis store, logins ${warm.logins + (warmMore?.logins ?? 0) + 1}-${warm.logins + (warmMore?.logins ?? 0) + run.logins} of the instance; its idle background (${figures.concord_idle_cpu_ms_per_s!.toFixed(1)} ms/s) is ${idleShare(run.seconds, run.logins)}`,
      },
      ...(steadyRun ? [{
        name: 'Concord CPU per login, steady state',
        rate: steadyRun.ms,
        unit: 'ms',
        note: `as above, logins ${steadyRun.from}-${steadyRun.from + steadyRun.logins - 1} of the same instance (its code compiled and optimised by then); idle background ${idleShare(steadyRun.seconds, steadyRun.logins)}`,
      }] : []),
      {
        name: 'Redis CPU per login',
        rate: redisCpuPerLogin,
        unit: 'ms',
        note: `redis-server process time (/proc, 10 ms ticks) minus idle: ${Math.round(1000 / redisCpuPerLogin).toLocaleString('en-US')} logins/s per fully busy Redis core; commands alone (commandstats usec) ${(d.usec / run.logins / 1000).toFixed(2)} ms`,
      },
      ...(replay ? [{
        name: 'Redis CPU per login, under load',
        rate: replay.cpuMsPerLogin,
        unit: 'ms',
        note: `the ${m} logins' commands replayed over 16 connections for 4 s (${Math.round(replay.loginsPerSecond).toLocaleString('en-US')} logins/s worth, redis-server at ${Math.round(replay.busy * 100)} % of a core${replay.errors ? `, ${replay.errors} errors` : ''}): ${Math.round(1000 / replay.cpuMsPerLogin).toLocaleString('en-US')} logins/s per fully busy Redis core`,
      }] : []),
      { name: 'Bytes per login, Concord -> Redis', rate: input, unit: 'B', note: fmtBytes(input) },
      { name: 'Bytes per login, Redis -> Concord', rate: output, unit: 'B', note: fmtBytes(output) },
      { name: 'Redis memory per 1,000 logins (used_memory delta)', rate: (memoryPerLogin * 1000) / 1024, unit: 'KiB', note: `${fmtBytes(memoryPerLogin * 1000)} per 1,000 logins just after they finished (short-lived records included)` },
      { name: 'Redis memory per 1,000 live sessions, long-lived keys', rate: (longLived / loginsHeld) * 1000 / 1024, unit: 'KiB', note: `MEMORY USAGE of keys living > 1 h or without TTL (session, grant, refresh token, account, indexes); short-lived ones add ${fmtBytes((shortLived / loginsHeld) * 1000)} per 1,000 for up to 10 min` },
    ];

    const calls = [...d.calls].filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1]);
    const extra = [
      `Commands per login by name (INFO commandstats, background included): ${calls.map(([name, c]) => `${name} ${(c / run.logins).toFixed(2)}`).join(', ')}.`,
      '',
      `Keys Concord holds after ${loginsHeld} logins (MEMORY USAGE, per login; lifetime = longest remaining TTL of the kind):`,
      '',
      '| key kind | keys per login | bytes per login | lifetime |',
      '|---|---:|---:|---|',
      ...kinds.filter(([kind]) => !deploymentKind(kind)).map(([kind, e]) => `| ${kind} | ${(e.keys / loginsHeld).toFixed(2)} | ${Math.round(e.bytes / loginsHeld)} | ${lifetime(e.ttl)} |`),
      '',
      `Per deployment, not per login: ${kinds.filter(([kind]) => deploymentKind(kind)).map(([kind, e]) => `${kind} (${e.keys} key${e.keys === 1 ? '' : 's'}, ${fmtBytes(e.bytes)})`).join(', ')}.`,
    ];
    return {
      title: 'Redis cost of a login',
      method:
        `Concord (child process, Redis store on the benchmark's own redis-server ${redis.url}) with a real partner IdP, logins as in the previous section (a refresh token issued each time). ` +
        `Commands, Redis CPU and bytes: INFO commandstats / total_net_*_bytes deltas around ${n} logins (4 concurrent), minus the idle instance's background traffic (${perSecond.commands.toFixed(1)} commands/s, measured for 3 s) and the cost of reading INFO. ` +
        `Round trips: Concord's writes to its Redis sockets around ${m} logins one at a time (ioredis writes one command, or one pipeline or MULTI block, per write and awaits its answer: commands issued together leave in one write); ` +
        `MONITOR around the same logins counts what was sent one by one (a MULTI..EXEC block once, commands inside Lua not at all). ` +
        `Memory: INFO used_memory delta around the ${n} logins, and MEMORY USAGE of every key afterwards. Rate-limit counters (one INCR-like script per rate-limited request) are included.`,
      rows,
      extra,
      figures,
    };
  } finally {
    await rig.stop();
  }
}

/**
 * Replays what was sent (single commands and MULTI blocks, in trace order) over 16 connections for
 * `seconds`, and reads redis-server's CPU time: Redis's cost per login when it is busy, where
 * each read and each event-loop turn serve many commands.
 */
async function replayUnits(redis: RedisServer, units: Monitored[][], logins: number, seconds: number, idleCpuPerSecond: number) {
  const clients = Array.from({ length: 16 }, () => new Redis(redis.url, { maxRetriesPerRequest: 0 }));
  try {
    await Promise.all(clients.map((c) => c.ping()));
    let done = 0;
    let errors = 0;
    const cpu0 = processCpuMs(redis.pid!);
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    await Promise.all(
      clients.map(async (client, k) => {
        for (let i = Math.floor((k * units.length) / clients.length); performance.now() < deadline && done < 5_000_000; i++) {
          const unit = units[i % units.length]!;
          try {
            if (unit.length === 1) await client.call(unit[0]!.command, ...unit[0]!.args);
            else await client.multi(unit.map((c) => [c.command, ...c.args])).exec();
          } catch {
            errors++;
          }
          done++;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = processCpuMs(redis.pid!) - cpu0 - idleCpuPerSecond * elapsed;
    const replayedLogins = done / (units.length / logins);
    return { cpuMsPerLogin: cpu / replayedLogins, loginsPerSecond: replayedLogins / elapsed, busy: cpu / 1000 / elapsed, errors };
  } finally {
    for (const c of clients) c.disconnect();
  }
}

/** The trace lines that are this Concord's (by key prefix), plus the MULTI/EXEC and Lua lines around them. */
function ours(lines: Monitored[], prefix: string): Monitored[] {
  return lines.filter((l) => l.command === 'multi' || l.command === 'exec' || l.args.some((a) => a.startsWith(prefix)) || (l.command === 'evalsha' && l.args.some((a) => a.startsWith(prefix))));
}

if (import.meta.main) await runAlone(() => redisPart());
