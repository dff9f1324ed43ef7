/**
 * Where the bytes of a brokered login go: each command Concord sends to Redis, with the bytes it
 * sends and the bytes of its reply (RESP, as Redis's total_net_input/output_bytes count them), by
 * key family and by step of the login. Concord (child process, bench/servers/child.ts with
 * BENCH_BYTES_DUMP: bench/lib/resp-trace.ts) on the benchmark's own redis-server, logins through a
 * real partner IdP, one at a time, as the Redis part traces them (bench/parts/redis.ts).
 *
 *   node bench/login-bytes.ts [--logins 10] [--steps] [--dump file] [--monitor file]
 *
 * --monitor file: the commands of the last login, in full (MONITOR), one a line: what each record holds.
 *
 * The idle instance's own traffic (key reloads) is measured for 2 s and taken out pro rata, by
 * family. Redis's INFO byte counters around the same logins are printed next to the traced total,
 * as a check of the tracer (they also count the bench's own INFO reads: a few hundred bytes).
 */
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { login, loginLoad, startLoginRig, type LoginStep } from './lib/login-driver.ts';
import { benchRedis, monitor, netBytes, stopBenchRedis } from './lib/redis.ts';
import { sleep } from './lib/report.ts';
import { kindOf } from './parts/redis.ts';

const { values } = parseArgs({ options: { logins: { type: 'string', default: '10' }, steps: { type: 'boolean', default: false }, dump: { type: 'string' }, monitor: { type: 'string' } } });
const m = Number(values.logins);
const dump = values.dump ?? path.join(os.tmpdir(), `login-bytes-${process.pid}.txt`);
rmSync(dump, { force: true });
process.env.BENCH_BYTES_DUMP = dump;

interface Tally {
  commands: number;
  sent: number;
  received: number;
  names: Map<string, number>;
}
const tally = (): Tally => ({ commands: 0, sent: 0, received: 0, names: new Map() });

const redis = await benchRedis();
const prefix = `bench-bytes-${randomBytes(3).toString('hex')}:`;
const rig = await startLoginRig({ store: redis.url, storePrefix: prefix, users: m + 60 });
let info = { input: 0, output: 0 };
let idleSeconds = 0;
let loginSeconds = 0;
try {
  const warm = await loginLoad(rig.issuer, rig.users.slice(m), { concurrency: 2, seconds: 20, maxLogins: 20 });
  if (warm.logins === 0) throw new Error(`no login succeeded during warm-up: ${warm.firstError}`);
  await sleep(200);
  appendFileSync(dump, '--- idle\n');
  const t0 = performance.now();
  await sleep(2000);
  idleSeconds = (performance.now() - t0) / 1000;
  appendFileSync(dump, '--- logins\n');
  const before = await netBytes(redis);
  const loginsStarted = performance.now();
  for (let i = 0; i < m; i++) {
    const watched = values.monitor && i === m - 1 ? await monitor(redis) : undefined;
    await login(rig.issuer, rig.users[i]!, async (step: LoginStep) => {
      await sleep(15);
      appendFileSync(dump, `--- end of ${step}\n`);
      // With BENCH_WRITES_DUMP (bench/servers/child.ts: each write to Redis, a round trip each), the step's end there too.
      if (process.env.BENCH_WRITES_DUMP) appendFileSync(process.env.BENCH_WRITES_DUMP, `--- end of ${step}\n`);
      if (watched) watched.lines.push({ client: '', command: `--- end of ${step}`, args: [] });
    });
    if (watched) {
      await watched.stop();
      const ours = watched.lines.filter((l) => l.client === '' || l.args.some((a) => a.startsWith(prefix)) || l.command === 'multi' || l.command === 'exec');
      writeFileSync(values.monitor!, `${ours.map((l) => [l.command, ...l.args.map((a) => a.replaceAll(prefix, ''))].join(' ')).join('\n')}\n`);
    }
  }
  loginSeconds = (performance.now() - loginsStarted) / 1000;
  const after = await netBytes(redis);
  info = { input: after.input - before.input, output: after.output - before.output };
} finally {
  await rig.stop();
  await stopBenchRedis();
}

// The dump: idle, then the logins' steps.
const idle = new Map<string, Tally>();
const byStep = new Map<string, Map<string, Tally>>();
let phase: 'warm' | 'idle' | 'logins' = 'warm';
let step = new Map<string, Tally>();
for (const line of readFileSync(dump, 'utf8').split('\n')) {
  if (line === '--- idle') phase = 'idle';
  else if (line === '--- logins') phase = 'logins';
  else if (line.startsWith('--- end of ')) {
    const name = line.slice('--- end of '.length);
    const into = byStep.get(name) ?? new Map<string, Tally>();
    for (const [family, t] of step) {
      const s = into.get(family) ?? tally();
      s.commands += t.commands;
      s.sent += t.sent;
      s.received += t.received;
      for (const [n, c] of t.names) s.names.set(n, (s.names.get(n) ?? 0) + c);
      into.set(family, s);
    }
    byStep.set(name, into);
    step = new Map();
  } else if (line.startsWith('B\t') && phase !== 'warm') {
    const [, name, key, sent, received] = line.split('\t') as [string, string, string, string, string];
    const family = key.startsWith(prefix) ? kindOf(key, prefix) : key ? '(other)' : `(${name})`;
    const into = phase === 'idle' ? idle : step;
    const t = into.get(family) ?? tally();
    t.commands++;
    t.sent += Number(sent);
    t.received += Number(received);
    t.names.set(name, (t.names.get(name) ?? 0) + 1);
    into.set(family, t);
  }
}
const steps = [...byStep.keys()];
const families = new Map<string, Tally & { steps: Map<string, Tally> }>();
for (const [s, fams] of byStep) {
  for (const [family, t] of fams) {
    const f = families.get(family) ?? { ...tally(), steps: new Map() };
    f.commands += t.commands;
    f.sent += t.sent;
    f.received += t.received;
    for (const [n, c] of t.names) f.names.set(n, (f.names.get(n) ?? 0) + c);
    f.steps.set(s, t);
    families.set(family, f);
  }
}
// The idle instance's traffic (key reloads every second) taken out of the logins', by family, pro rata.
for (const [family, t] of idle) {
  const f = families.get(family);
  if (!f) continue;
  const share = loginSeconds / idleSeconds;
  f.commands = Math.max(0, f.commands - t.commands * share);
  f.sent = Math.max(0, f.sent - t.sent * share);
  f.received = Math.max(0, f.received - t.received * share);
  f.names.clear();
  if (f.commands === 0) families.delete(family);
}
const per = (n: number) => n / m;
const rows = [...families].sort((a, b) => b[1].sent + b[1].received - (a[1].sent + a[1].received));
const total = rows.reduce((acc, [, f]) => ({ commands: acc.commands + f.commands, sent: acc.sent + f.sent, received: acc.received + f.received }), { commands: 0, sent: 0, received: 0 });
const idleTotal = [...idle.values()].reduce((acc, t) => ({ sent: acc.sent + t.sent, received: acc.received + t.received }), { sent: 0, received: 0 });

const out: string[] = [];
out.push(`Redis traffic of one brokered login, by key family (${m} logins one at a time, traced at Concord's sockets; per login):`, '');
out.push(`| key family | commands | bytes to Redis | bytes from Redis | total | commands by name |`);
out.push('|---|---:|---:|---:|---:|---|');
for (const [family, f] of rows) {
  const names = [...f.names].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${per(c).toFixed(1)}`).join(', ');
  out.push(`| ${family} | ${per(f.commands).toFixed(1)} | ${Math.round(per(f.sent))} | ${Math.round(per(f.received))} | ${Math.round(per(f.sent + f.received))} | ${names} |`);
}
out.push(`| **all** | ${per(total.commands).toFixed(1)} | ${Math.round(per(total.sent))} | ${Math.round(per(total.received))} | ${Math.round(per(total.sent + total.received))} | |`);
out.push('');
out.push(`Idle instance (taken out above pro rata, measured alone for ${idleSeconds.toFixed(1)} s): ${Math.round(idleTotal.sent / idleSeconds)} B/s to Redis, ${Math.round(idleTotal.received / idleSeconds)} B/s back (${[...idle.keys()].join(', ') || 'nothing'}).`);
out.push(`Redis INFO around the ${m} logins (idle traffic and the bench's INFO reads included): ${Math.round(info.input / m)} B in, ${Math.round(info.output / m)} B out per login.`);
if (values.steps) {
  out.push('', `By step (bytes to Redis + from Redis (commands), per login; the idle instance's traffic not taken out here):`, '');
  out.push(`| key family | ${steps.join(' | ')} |`);
  out.push(`|---|${steps.map(() => '---:').join('|')}|`);
  for (const [family, f] of rows) {
    out.push(`| ${family} | ${steps.map((s) => { const t = f.steps.get(s); return t ? `${Math.round(per(t.sent))}+${Math.round(per(t.received))} (${per(t.commands).toFixed(1)})` : ''; }).join(' | ')} |`);
  }
}
process.stdout.write(`${out.join('\n')}\n`);
if (!values.dump) rmSync(dump, { force: true });
