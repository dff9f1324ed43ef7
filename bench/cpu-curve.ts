/**
 * Concord's CPU per login from a cold start to steady state, in one process: the idle instance's
 * own CPU a second (timers, store polling, metrics), then logins in windows (default 1-50, 51-200,
 * 201-700, 701-1000; 4 at a time, each a new user, Redis store on the benchmark's own redis-server,
 * real partner IdP), each window's CPU per login and how it splits between threads (main thread,
 * V8's compiler and GC workers, libuv's pool), then idle again. Shows what the goal's measure (logins
 * 21-60 or so, bench/quick.ts) is made of: code V8 has not compiled and optimised yet, and the idle
 * background charged to the logins while they run.
 *
 *   node bench/cpu-curve.ts
 *   CURVE=20,60,700,1000 IDLE=5 node bench/cpu-curve.ts     window ends, idle seconds
 *   PROF=dir node bench/cpu-curve.ts                        a V8 CPU profile per window (bench/profile.ts sums one)
 *   PERF=dir NODE_OPTIONS="--perf-basic-prof-only-functions --interpreted-frames-native-stack" node bench/cpu-curve.ts
 *                                                           `perf record` of the Concord process per window (CPU time only, every thread;
 *                                                           `perf script -i dir/logins-701-1000.data > x.txt`, then bench/perf-profile.ts sums it)
 *
 * The V8 profile weighs each sample by the wall time since the one before (bench/profile.ts), so on
 * a machine with more work than cores it charges waiting to the code that waited; `perf` counts CPU.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { BenchChild } from './lib/children.ts';
import { loginLoad, startLoginRig } from './lib/login-driver.ts';
import { benchRedis, stopBenchRedis } from './lib/redis.ts';
import { sleep } from './lib/report.ts';

/** CPU milliseconds per thread name of a process so far (/proc, 10 ms ticks; numbered names summed). */
function threads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function perThread(before: Map<string, number>, after: Map<string, number>, per: number): string {
  return [...after]
    .map(([name, ms]) => [name, (ms - (before.get(name) ?? 0)) / per] as const)
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
    .join(', ');
}

async function idle(label: string, concord: BenchChild, seconds: number): Promise<number> {
  const th0 = threads(concord.pid);
  const c0 = await concord.cpu();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = await concord.cpu();
  const elapsed = (performance.now() - t0) / 1000;
  const perSecond = (c1.ms - c0.ms) / elapsed;
  console.log(`${label}: ${perSecond.toFixed(2)} ms of CPU a second, ${((c1.redisWrites - c0.redisWrites) / elapsed).toFixed(1)} writes to Redis a second; by thread (ms/s): ${perThread(th0, threads(concord.pid), elapsed)}`);
  return perSecond;
}

const ends = (process.env.CURVE ?? '50,200,700,1000').split(',').map(Number);
const idleSeconds = Number(process.env.IDLE ?? 5);
const redis = await benchRedis();
const rig = await startLoginRig({ store: redis.url, storePrefix: `bench-curve-${randomBytes(3).toString('hex')}:`, users: ends.at(-1)! + 10 });
try {
  console.log(`start-up: ${(await rig.concord.cpu()).ms.toFixed(0)} ms of CPU until ready`);
  await sleep(2000);
  const idlePerSecond = await idle('idle', rig.concord, idleSeconds);
  let done = 0;
  for (const end of ends) {
    const name = `logins-${done + 1}-${end}`;
    if (process.env.PROF) await rig.concord.profile();
    const perf = process.env.PERF
      ? spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', process.env.PERF_HZ ?? '1999', '-g', '-p', String(rig.concord.pid), '-o', `${process.env.PERF}/${name}.data`], { stdio: 'ignore' })
      : undefined;
    if (perf) await sleep(300);
    const th0 = threads(rig.concord.pid);
    const c0 = await rig.concord.cpu();
    const run = await loginLoad(rig.issuer, rig.users, { concurrency: 4, seconds: 600, maxLogins: end - done, offset: done });
    const c1 = await rig.concord.cpu();
    const th1 = threads(rig.concord.pid);
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((resolve) => perf.once('exit', resolve));
    }
    if (process.env.PROF) await rig.concord.profile(`${process.env.PROF}/${name}.cpuprofile`);
    console.log(
      `logins ${done + 1}-${end}: ${((c1.ms - c0.ms) / run.logins).toFixed(2)} ms of CPU per login (${run.logins} ok, ${run.failures} failed, ${run.seconds.toFixed(1)} s; ` +
        `the idle background's share ${((idlePerSecond * run.seconds) / run.logins).toFixed(2)} ms); by thread (ms/login): ${perThread(th0, th1, run.logins)}; heap ${(c1.heap / 2 ** 20).toFixed(0)} MiB, RSS ${(c1.rss / 2 ** 20).toFixed(0)} MiB`,
    );
    done = end;
  }
  await sleep(2000);
  await idle('idle after the logins', rig.concord, idleSeconds);
} finally {
  await rig.stop();
  await stopBenchRedis();
}
process.exit(0);
