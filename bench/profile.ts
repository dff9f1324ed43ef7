/**
 * Summarises a V8 CPU profile (.cpuprofile, as written by `node --cpu-prof`, e.g. by
 * `BENCH_CPU_PROF=dir node bench/parts/redis.ts`): time by module, self and inclusive, and the
 * functions with the most self time.
 *
 * A module is the node_modules package a function's script belongs to (`oidc-provider`,
 * `@koa/router`), a file of this repository (`src/provider/local-signing.ts`), `node:<builtin>`,
 * `(native)` for a native function called from JavaScript (`writeUtf8String`: a socket write), or
 * a V8 pseudo-frame: `(garbage collector)`, `(program)` (native code with no JS frame above it),
 * `(idle)`.
 *
 * Self: the samples whose innermost frame is in the module. Inclusive: the samples with the module
 * anywhere on the stack (each sample counted once per module), so a module's inclusive time includes
 * what the libraries it calls spend. Times are V8's: each sample weighs the wall time since the one
 * before, so on a machine with more work than cores the time a thread waits to run again after a
 * system call (a socket write waking Redis) counts against that call. Linux `perf record` of the
 * process counts CPU time only (bench/cpu-curve.ts with PERF=dir records one per window;
 * bench/perf-profile.ts sums it as this file sums a V8 profile).
 *
 *   node bench/profile.ts <file.cpuprofile> [--top 40] [--functions 40] [--skip-idle]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between samples; the first is from startTime. */
  timeDeltas: number[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The module a call frame belongs to (see the header). */
export function moduleOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url;
  let file = url;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (file.startsWith(ROOT + '/')) return path.relative(ROOT, file);
  // Another checkout of this repository (a baseline worktree): keep its path from src/ on.
  const src = file.lastIndexOf('/src/');
  if (src >= 0) return file.slice(src + 1);
  return file;
}

function frameName(frame: CallFrame): string {
  const where = frame.url ? `${moduleOf(frame)}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'} ${where}`.trim();
}

export interface Summary {
  totalMs: number;
  byModule: { module: string; selfMs: number; inclusiveMs: number }[];
  byFunction: { name: string; selfMs: number }[];
}

export function summarise(profile: CpuProfile, options: { skipIdle?: boolean } = {}): Summary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  /** Per node: the modules on its stack, computed once. */
  const stackModules = new Map<number, Set<string>>();
  const modulesOf = (id: number): Set<string> => {
    let set = stackModules.get(id);
    if (set) return set;
    const up = parent.get(id);
    set = new Set(up === undefined ? [] : modulesOf(up));
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName !== '(root)') set.add(moduleOf(frame));
    stackModules.set(id, set);
    return set;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const fnSelf = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    // A sample's time is the interval up to the next sample.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = byId.get(id)!.callFrame;
    if (options.skipIdle && frame.functionName === '(idle)') return;
    total += us;
    const mod = moduleOf(frame);
    self.set(mod, (self.get(mod) ?? 0) + us);
    for (const m of modulesOf(id)) inclusive.set(m, (inclusive.get(m) ?? 0) + us);
    const name = frameName(frame);
    fnSelf.set(name, (fnSelf.get(name) ?? 0) + us);
  });
  const modules = new Set([...self.keys(), ...inclusive.keys()]);
  return {
    totalMs: total / 1000,
    byModule: [...modules]
      .map((module) => ({ module, selfMs: (self.get(module) ?? 0) / 1000, inclusiveMs: (inclusive.get(module) ?? 0) / 1000 }))
      .sort((a, b) => b.selfMs - a.selfMs),
    byFunction: [...fnSelf].map(([name, us]) => ({ name, selfMs: us / 1000 })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  if (!file) {
    console.error('usage: node bench/profile.ts <file.cpuprofile> [--top N] [--functions N] [--skip-idle]');
    process.exit(2);
  }
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const summary = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, { skipIdle: args.includes('--skip-idle') });
  const pct = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)} %`;
  const ms = (x: number) => x.toFixed(0).padStart(8);
  console.log(`${file}: ${summary.totalMs.toFixed(0)} ms sampled${args.includes('--skip-idle') ? ' (idle left out)' : ''}\n`);
  console.log(`${'module'.padEnd(56)} ${'self ms'.padStart(8)} ${'self'.padStart(7)} ${'incl ms'.padStart(8)} ${'incl'.padStart(7)}`);
  for (const m of summary.byModule.slice(0, opt('--top', 40))) {
    console.log(`${m.module.slice(0, 56).padEnd(56)} ${ms(m.selfMs)} ${pct(m.selfMs)} ${ms(m.inclusiveMs)} ${pct(m.inclusiveMs)}`);
  }
  console.log(`\nby inclusive time:`);
  for (const m of [...summary.byModule].sort((a, b) => b.inclusiveMs - a.inclusiveMs).slice(0, opt('--top', 40))) {
    console.log(`${m.module.slice(0, 56).padEnd(56)} ${ms(m.inclusiveMs)} ${pct(m.inclusiveMs)}`);
  }
  console.log(`\nfunctions by self time:`);
  for (const f of summary.byFunction.slice(0, opt('--functions', 40))) console.log(`${f.name.slice(0, 90).padEnd(90)} ${ms(f.selfMs)} ${pct(f.selfMs)}`);
}
