/**
 * Concord's benchmarks, each with its baseline measured in the same run on the same machine.
 *
 *   npm run bench                      # every part (about 3-4 minutes), writes bench/results.md
 *   npm run bench -- tokens verify     # some parts, printed only (add --write to write results.md)
 *   npm run bench -- --quick           # issue 17's goals in under a minute; exit 1 when one is missed (bench/quick.ts)
 *   node bench/parts/logins.ts         # one part on its own
 *
 * Parts: tokens, algorithms, id-tokens, logins, floor, refresh, verify, mapping, redis, scale. Servers run as child processes
 * (bench/servers/child.ts); Redis is a redis-server of the benchmark's own (bench/lib/redis.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { algorithmsPart } from './parts/algorithms.ts';
import { floorPart } from './parts/floor.ts';
import { goalTable, quick } from './quick.ts';
import { idTokensPart } from './parts/id-tokens.ts';
import { loginsPart } from './parts/logins.ts';
import { mappingPart } from './parts/mapping.ts';
import { redisPart } from './parts/redis.ts';
import { refreshPart } from './parts/refresh.ts';
import { scalePart } from './parts/scale.ts';
import { tokensPart } from './parts/tokens.ts';
import { verifyPart } from './parts/verify.ts';
import { benchRedis, info, stopBenchRedis } from './lib/redis.ts';
import { renderSection, table, type Row, type Section } from './lib/report.ts';

const PARTS: Record<string, () => Promise<Section>> = {
  tokens: () => tokensPart(),
  algorithms: () => algorithmsPart(),
  'id-tokens': () => idTokensPart(),
  logins: () => loginsPart(),
  floor: () => floorPart(),
  refresh: () => refreshPart(),
  verify: () => verifyPart(),
  mapping: () => mappingPart(),
  redis: () => redisPart(),
  scale: () => scalePart(),
};

const args = process.argv.slice(2);
const chosen = args.filter((a) => !a.startsWith('--'));
for (const name of chosen) {
  if (!PARTS[name]) {
    process.stderr.write(`unknown part "${name}"; parts: ${Object.keys(PARTS).join(', ')}\n`);
    process.exit(2);
  }
}
const names = chosen.length ? chosen : Object.keys(PARTS);
const write = chosen.length === 0 || args.includes('--write');

async function machine(): Promise<string[]> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim();
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux-like
  }
  const redis = await benchRedis();
  const server = await info(redis, 'server');
  let redisVersion = server.get('redis_version') ?? 'unknown';
  try {
    redisVersion += ` (${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/malloc=\S+/)?.[0] ?? ''})`;
  } catch {
    // version only
  }
  const version = (name: string) => {
    try {
      return (JSON.parse(fs.readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return [
    `- Date: ${new Date().toISOString()}`,
    `- CPU: ${model}${mhz ? ` (${Math.round(Number(mhz))} MHz reported)` : ''}, ${os.availableParallelism()} cores available`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- OS: ${distro || os.type()} (kernel ${os.release()})`,
    `- Node ${process.version}; Redis ${redisVersion}, a redis-server of the benchmark's own on loopback, no persistence`,
    `- oidc-provider ${version('oidc-provider')}, jose ${version('jose')}, ioredis ${version('ioredis')}, autocannon ${version('autocannon')}`,
    `- Load average at the start: ${load} (the machine is shared; other work may have run alongside)`,
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  const header = await machine();
  process.stdout.write(`Concord benchmarks: ${names.join(', ')}\n${header.join('\n')}\n\n`);
  const sections: Section[] = [];
  for (const name of names) {
    const t0 = Date.now();
    process.stdout.write(`running ${name} ...\n`);
    const section = await PARTS[name]!();
    sections.push(section);
    process.stdout.write(`${renderSection(section)}\n\n(${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s)\n\n`);
  }
  const seconds = (Date.now() - started) / 1000;
  const summary = summaryRows(sections);
  const summaryText = table(summary);
  process.stdout.write(`Summary\n\n${summaryText}\n\nTotal ${seconds.toFixed(0)} s; load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

  if (write) {
    const out = [
      '# Concord benchmark results',
      '',
      'Written by `npm run bench` (bench/run.ts). Every figure and its baseline come from the same run on this machine:',
      '',
      ...header,
      `- Load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; the whole run took ${seconds.toFixed(0)} s`,
      '',
      '## Summary',
      '',
      summaryText,
      '',
      ...goalSection(sections),
      'Reading these figures:',
      '',
      '- Rates are this machine\'s with the load generator on the same 2 cores; the CPU time per operation of each server process (its own user+system time over the run) is the figure that carries over to other machines and into docs/scaling.md.',
      '- Baselines run in the same process model and alternate with what they are compared to, so drift of the shared machine hits both; single runs still move by 10-20 % (see the load averages above).',
      '- Each part runs alone too: `node bench/parts/{tokens,algorithms,id-tokens,logins,floor,refresh,verify,mapping,redis,scale}.ts`, or `npm run bench -- logins redis`; `npm run bench -- --quick` checks issue 17\'s goals in under a minute (bench/quick.ts).',
      '',
      ...sections.flatMap((s) => [renderSection(s), '']),
    ].join('\n');
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.md');
    fs.writeFileSync(file, out);
    process.stdout.write(`written: ${path.relative(process.cwd(), file)}\n`);
  }
}

/** Issue 17's goals against this run's figures, when the run has every part they need. */
function goalSection(sections: Section[]): string[] {
  const f = Object.assign({}, ...sections.map((s) => s.figures ?? {})) as Record<string, number>;
  if (f.floor_ms_per_login === undefined || f.redis_round_trips_per_login === undefined || f.concord_memory_ratio_median === undefined || f.refresh_redis_ratio_median === undefined) return [];
  const goals = goalTable(f, { issuanceRounds: 6, refreshRounds: 4 });
  return ['## Issue 17 goals (this run; `npm run bench -- --quick` checks the same in small)', '', goals.text, ''];
}

/** The headline rows of every section, for the summary table. */
function summaryRows(sections: Section[]): Row[] {
  const rows: Row[] = [];
  for (const s of sections) for (const r of s.rows) if (!r.name.startsWith('  diagnostic')) rows.push({ ...r, note: shorten(r.note) });
  return rows;
}

function shorten(note: string | undefined): string | undefined {
  if (!note) return note;
  const first = note.split(/;|\(/)[0]!.trim();
  return first.length > 70 ? `${first.slice(0, 67)}...` : first;
}

let exitCode = 0;
try {
  if (args.includes('--quick')) {
    const result = await quick();
    if (args.includes('--verbose')) for (const s of result.sections) process.stdout.write(`${renderSection(s)}\n\n`);
    process.stdout.write(`Concord quick benchmark (issue 17 goals)\n\n${result.text}\n`);
    exitCode = result.ok ? 0 : 1;
  } else {
    await main();
  }
} finally {
  await stopBenchRedis();
}
process.exit(exitCode);
