/**
 * Scale-out, measured: complete brokered logins through one Concord instance, then two instances
 * on one Redis, then two instances on a 3-master Redis Cluster started here (redis-server on
 * loopback ports, `redis-cli --cluster create`), in the same run. Two instances share one issuer
 * behind a round-robin TCP proxy (bench/lib/login-driver.ts), so a login's requests land on either
 * instance and everything between them goes through the store, as behind a load balancer.
 *
 * On a 2-core machine that also runs the partner IdP, Redis and the load generator, two instances
 * cannot give twice the logins per second: the rate shows whether anything serialises, and Concord's
 * CPU per login (both instances' CPU time over the logins) shows what a second instance costs. The
 * scaling efficiency is CPU per login with one instance / CPU per login with two (1.00: no overhead).
 *
 *   node bench/parts/scale.ts
 */
import { randomBytes } from 'node:crypto';
import { startRedisCluster } from '../../test/support/redis-server.ts';
import { loginLoad, startLoginRig } from '../lib/login-driver.ts';
import { benchRedis, commandStats, processCpuMs } from '../lib/redis.ts';
import type { RedisServer } from '../../test/support/redis-server.ts';
import { fmtMs, runAlone, type Row, type Section } from '../lib/report.ts';

export async function scalePart(options: { seconds?: number; concurrency?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 12;
  const concurrency = options.concurrency ?? 8;
  const redis = await benchRedis();
  const cluster = await startRedisCluster({ masters: 3 });
  const rows: Row[] = [];
  const figures: Record<string, number> = {};
  try {
    const setups = [
      { key: 'one_redis_1', name: '1 instance, one Redis', store: redis.url, instances: 1, redisPids: [redis.pid!], servers: [redis] },
      { key: 'one_redis_2', name: '2 instances, one Redis', store: redis.url, instances: 2, redisPids: [redis.pid!], servers: [redis] },
      { key: 'cluster_2', name: '2 instances, 3-master Redis Cluster', store: cluster.url, instances: 2, redisPids: cluster.nodes.map((n) => n.pid!), servers: cluster.nodes },
    ];
    for (const setup of setups) {
      const rig = await startLoginRig({ store: setup.store, storePrefix: `bench-scale-${randomBytes(3).toString('hex')}:`, instances: setup.instances, users: 3000 });
      try {
        const warm = await loginLoad(rig.issuer, rig.users, { concurrency, seconds: 3, maxLogins: 200 });
        if (warm.logins === 0) throw new Error(`${setup.name}: no login succeeded during warm-up: ${warm.firstError}`);
        const before = await Promise.all(rig.concords.map((c) => c.cpu()));
        const partner0 = await rig.partner.cpu();
        const redis0 = setup.redisPids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
        const run = await loginLoad(rig.issuer, rig.users, { concurrency, seconds, maxLogins: 5000, offset: warm.logins + warm.failures });
        const after = await Promise.all(rig.concords.map((c) => c.cpu()));
        const partner1 = await rig.partner.cpu();
        const redisCpu = (setup.redisPids.reduce((sum, pid) => sum + processCpuMs(pid), 0) - redis0) / Math.max(1, run.logins);
        const perInstance = after.map((a, i) => a.ms - before[i]!.ms);
        const concordCpu = perInstance.reduce((a, b) => a + b, 0) / Math.max(1, run.logins);
        const writes = after.reduce((sum, a, i) => sum + a.redisWrites - before[i]!.redisWrites, 0) / Math.max(1, run.logins);
        figures[`scale_${setup.key}_rate`] = run.rate;
        figures[`scale_${setup.key}_concord_cpu_ms`] = concordCpu;
        figures[`scale_${setup.key}_round_trips`] = writes;
        figures[`scale_${setup.key}_partner_cpu_ms`] = (partner1.ms - partner0.ms) / Math.max(1, run.logins);
        const alone = await loginsOneByOne(rig, setup.servers, run.logins + warm.logins + warm.failures + run.failures);
        figures[`scale_${setup.key}_alone_writes`] = alone.writes;
        figures[`scale_${setup.key}_alone_rounds`] = alone.rounds;
        figures[`scale_${setup.key}_alone_commands`] = alone.commands;
        rows.push({
          name: `brokered logins, ${setup.name}`,
          rate: run.rate,
          unit: 'logins/s',
          p50: run.p50,
          p99: run.p99,
          note:
            `${run.logins} logins, ${run.failures} failed${run.firstError ? ` (${run.firstError.slice(0, 80)})` : ''}; Concord CPU/login ${fmtMs(concordCpu)} ms` +
            (setup.instances > 1 ? ` (split ${perInstance.map((ms) => `${Math.round((100 * ms) / perInstance.reduce((a, b) => a + b, 0))} %`).join(' / ')})` : '') +
            `, partner ${fmtMs((partner1.ms - partner0.ms) / Math.max(1, run.logins))} ms, Redis ${fmtMs(redisCpu)} ms; ${writes.toFixed(1)} Redis writes/login under load (background included); ` +
            `${ALONE} logins one at a time: ${alone.rounds.toFixed(1)} round trips, ${alone.writes.toFixed(1)} socket writes, ${alone.commands.toFixed(1)} commands per login (background taken out)`,
        });
      } finally {
        await rig.stop();
      }
    }
  } finally {
    await cluster.stop();
  }
  const one = figures.scale_one_redis_1_concord_cpu_ms!;
  const partnerOne = figures.scale_one_redis_1_partner_cpu_ms!;
  for (const [i, key] of ['one_redis_2', 'cluster_2'].entries()) {
    const efficiency = one / figures[`scale_${key}_concord_cpu_ms`]!;
    // The partner IdP does the same work per login in every setup: its CPU per login growing is the
    // machine's contention (more processes on the same cores), which inflates Concord's alike.
    const contention = figures[`scale_${key}_partner_cpu_ms`]! / partnerOne;
    figures[`scale_${key}_efficiency`] = efficiency;
    figures[`scale_${key}_efficiency_adjusted`] = efficiency * contention;
    rows[i + 1]!.ratio = `${efficiency.toFixed(2)} efficiency`;
    rows[i + 1]!.note += `; efficiency ${efficiency.toFixed(2)}, ${(efficiency * contention).toFixed(2)} with the machine's contention taken out (the partner's CPU per login, the same work in every setup, grew ${contention.toFixed(2)}x)`;
  }
  return {
    title: 'Scale-out: one instance, two on one Redis, two on a Redis Cluster',
    method:
      `Complete brokered logins as above (${concurrency} concurrent browsers, ${seconds} s after a 3 s warm-up), through one Concord instance, then two on the same Redis, then two on a 3-master Redis Cluster started for this run. ` +
      `Two instances share one issuer behind a round-robin TCP proxy (each new connection to the next instance), so one login's requests reach both and meet only in the store. ` +
      `Efficiency: Concord CPU per login with one instance / with two (1.00 = a second instance adds no work per login); the partner IdP does the same work per login in every setup, so the growth of its CPU per login measures the machine's contention, taken out in the adjusted figure. On this 2-core machine the rate cannot double; CPU per login is the figure that carries over. ` +
      `After each setup's load, ${ALONE} logins one at a time show what one login costs that store (issue 17, goal 1: no more on a Cluster than on one Redis): round trips (writes in one turn of the event loop, to one node or several, wait once), socket writes and commands executed (INFO commandstats over every node), each instance's idle traffic measured for ${IDLE_SECONDS} s and taken out.`,
    rows,
    figures,
  };
}

/** Logins made one at a time after each setup's load: what a single login costs in Redis there. */
const ALONE = 10;
const IDLE_SECONDS = 2;

/**
 * ALONE logins one at a time through `rig`, with what each costs its store: round trips (rounds of
 * writes: a Cluster login's writes to several nodes in one turn of the event loop wait once),
 * socket writes, and commands executed (INFO commandstats summed over the store's servers). Each
 * instance's idle traffic (key reloads, the logout queue), measured for IDLE_SECONDS first, is taken
 * out pro rata. Goal 1 of issue 17: no more on a Cluster than on one Redis.
 */
async function loginsOneByOne(rig: Awaited<ReturnType<typeof startLoginRig>>, servers: RedisServer[], offset: number): Promise<{ writes: number; rounds: number; commands: number }> {
  const read = async () => {
    const cpu = await Promise.all(rig.concords.map((c) => c.cpu()));
    const stats = await Promise.all(servers.map((s) => commandStats(s)));
    return {
      at: performance.now(),
      writes: cpu.reduce((sum, c) => sum + c.redisWrites, 0),
      rounds: cpu.reduce((sum, c) => sum + c.redisRounds, 0),
      commands: stats.reduce((sum, s) => sum + s.total, 0),
    };
  };
  // Reading the figures costs one INFO per server, not counted (commandStats leaves INFO out).
  const idle0 = await read();
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idle1 = await read();
  const idleSeconds = (idle1.at - idle0.at) / 1000;
  const perSecond = { writes: (idle1.writes - idle0.writes) / idleSeconds, rounds: (idle1.rounds - idle0.rounds) / idleSeconds, commands: (idle1.commands - idle0.commands) / idleSeconds };
  const before = await read();
  const run = await loginLoad(rig.issuer, rig.users, { concurrency: 1, seconds: 60, maxLogins: ALONE, offset });
  const after = await read();
  if (run.logins < ALONE) throw new Error(`only ${run.logins} of ${ALONE} logins one at a time succeeded: ${run.firstError}`);
  const seconds = (after.at - before.at) / 1000;
  const per = (k: 'writes' | 'rounds' | 'commands') => (after[k] - before[k] - perSecond[k] * seconds) / run.logins;
  return { writes: per('writes'), rounds: per('rounds'), commands: per('commands') };
}

if (import.meta.main) await runAlone(() => scalePart());
