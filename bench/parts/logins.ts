/**
 * Complete brokered logins per second: Concord (child process, Redis store) in front of a real
 * oidc-provider partner IdP (another child process), driven over HTTP from this process by
 * browsers with their own cookie jars (bench/lib/login-driver.ts), 8 at a time.
 *
 *   node bench/parts/logins.ts
 */
import { randomBytes } from 'node:crypto';
import { loginLoad, startLoginRig } from '../lib/login-driver.ts';
import { benchRedis, commandStats, processCpuMs } from '../lib/redis.ts';
import { fmtMs, runAlone, type Row, type Section } from '../lib/report.ts';

export async function loginsPart(options: { seconds?: number; concurrency?: number; maxLogins?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 12;
  const concurrency = options.concurrency ?? 8;
  const maxLogins = options.maxLogins ?? 5000;
  const redis = await benchRedis();
  const rows: Row[] = [];
  const figures: Record<string, number> = {};
  for (const store of ['redis', 'memory'] as const) {
    const rig = await startLoginRig({ store: store === 'redis' ? redis.url : 'memory', storePrefix: `bench-logins-${randomBytes(3).toString('hex')}:` });
    try {
      // Warm-up: discovery and JWKS of the partner fetched, code paths compiled.
      const warm = await loginLoad(rig.issuer, rig.users, { concurrency, seconds: 3, maxLogins: 200 });
      if (warm.logins === 0) throw new Error(`no login succeeded during warm-up: ${warm.firstError}`);
      const [c0, p0] = await Promise.all([rig.concord.cpu(), rig.partner.cpu()]);
      const stats0 = store === 'redis' ? await commandStats(redis) : undefined;
      const redisCpu0 = processCpuMs(redis.pid!);
      const run = await loginLoad(rig.issuer, rig.users, { concurrency, seconds, maxLogins, offset: warm.logins + warm.failures });
      const stats1 = store === 'redis' ? await commandStats(redis) : undefined;
      const redisCpu = (processCpuMs(redis.pid!) - redisCpu0) / Math.max(1, run.logins);
      const [c1, p1] = await Promise.all([rig.concord.cpu(), rig.partner.cpu()]);
      const concordCpu = (c1.ms - c0.ms) / Math.max(1, run.logins);
      const partnerCpu = (p1.ms - p0.ms) / Math.max(1, run.logins);
      const commands = stats0 && stats1 ? (stats1.total - stats0.total) / Math.max(1, run.logins) : undefined;
      const redisUsec = stats0 && stats1 ? (stats1.totalUsec - stats0.totalUsec) / Math.max(1, run.logins) : undefined;
      figures[`logins_${store}_rate`] = run.rate;
      figures[`logins_${store}_concord_cpu_ms`] = concordCpu;
      figures[`logins_${store}_partner_cpu_ms`] = partnerCpu;
      if (commands !== undefined) figures.logins_redis_commands = commands;
      if (redisUsec !== undefined) figures.logins_redis_usec = redisUsec;
      if (store === 'redis') figures.logins_redis_process_cpu_ms = redisCpu;
      figures.login_http_requests = run.requestsPerLogin;
      rows.push({
        name: `brokered logins, ${store} store, concurrency ${concurrency}`,
        rate: run.rate,
        unit: 'logins/s',
        p50: run.p50,
        p99: run.p99,
        note:
          `${run.logins} logins, ${run.failures} failed${run.firstError ? ` (${run.firstError.slice(0, 80)})` : ''}; ${run.requestsPerLogin.toFixed(0)} HTTP requests each; ` +
          `CPU/login: Concord ${fmtMs(concordCpu)} ms, partner IdP ${fmtMs(partnerCpu)} ms` +
          (commands !== undefined ? `, redis-server ${fmtMs(redisCpu)} ms; ${commands.toFixed(1)} Redis commands (${fmtMs(redisUsec! / 1000)} ms in commandstats)` : ''),
      });
    } finally {
      await rig.stop();
    }
  }
  return {
    title: 'Complete brokered logins',
    method:
      `Each login: GET /auth -> Concord's login page -> POST email (home-realm discovery) -> the partner IdP's login page (a real oidc-provider, demo/partner-idp.ts) -> POST password -> ` +
      `the redirect chain back through Concord's callback (code exchange with the partner, ID-token checks, mapping, account) -> code at the RP -> POST /token (code + PKCE, refresh token issued). ` +
      `${concurrency} concurrent browsers with their own cookie jars, a different partner user each login, ${seconds} s after a 3 s warm-up. ` +
      `Concord, the partner IdP and the driver share the 2 cores, so the rate is this machine's, and CPU/login (each process's own CPU time) is the figure that scales.`,
    rows,
    figures,
  };
}

if (import.meta.main) await runAlone(() => loginsPart());
