/**
 * Summarises a Linux `perf record -g` of a Concord process (as bench/cpu-curve.ts writes them with
 * PERF=dir and NODE_OPTIONS="--perf-basic-prof-only-functions --interpreted-frames-native-stack"):
 * CPU time by module, self and inclusive, and the functions with the most self time, per login when
 * told how many logins the recording covers.
 *
 * Unlike a V8 CPU profile (bench/profile.ts), whose samples weigh the wall time since the one
 * before, perf samples CPU time only: on a busy machine a socket write that waits for its thread to
 * run again is not charged for the wait. Modules are named as bench/profile.ts names them (moduleOf).
 * A sample's self module is that of its innermost JavaScript frame, which owns the native and
 * kernel work under it (a socket write, zlib, OpenSSL); V8's garbage collection is
 * `(garbage collector)` wherever it runs; a sample with no JavaScript frame is `(native)`; samples of
 * other threads are `(thread {name})` (V8's compiler and GC workers, libuv's pool). Optimised code
 * counts the functions V8 inlined into it as its own.
 *
 *   perf script -i logins-701-1000.data > steady.txt
 *   node bench/perf-profile.ts steady.txt [--logins 300] [--top 30] [--functions 40] [--thread MainThread]
 */
import { readFileSync } from 'node:fs';
import { moduleOf } from './profile.ts';

/** A JavaScript frame as --perf-basic-prof names it: `JS:{tier marks}{name} {url}:{line}:{column}`. */
const JS_FRAME = /^JS:[~^+*']*(.*?) ?(\S*):(\d+):(\d+)$/;
/** V8's garbage collector, on the main thread or its own. */
const GC_SYMBOL = /Scavenge|MarkCompact|ConcurrentMarking|Sweeper|MinorMS|MarkingVisitor|Heap::CollectGarbage|GCTracer/;

export interface PerfSample {
  thread: string;
  /** Nanoseconds of CPU the sample stands for (perf's period). */
  ns: number;
  /** Symbols, innermost first. */
  frames: string[];
}

/** The samples of `perf script`'s default output (a header line, then one frame a line, a blank line between samples). */
export function parsePerfScript(text: string): PerfSample[] {
  const samples: PerfSample[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const head = lines[0];
    if (!head) continue;
    const period = /\s(\d+)\s+[\w:-]+:\s*$/.exec(head);
    const frames = lines.slice(1).map((l) => l.trim().replace(/^[0-9a-f]+ /, '').replace(/ \([^()]*\)$/, '').replace(/\+0x[0-9a-f]+$/, ''));
    samples.push({ thread: head.trim().split(/\s+/)[0]!, ns: period ? Number(period[1]) : 0, frames });
  }
  return samples;
}

interface Named {
  module: string;
  fn: string;
}

function jsFrame(symbol: string): Named | undefined {
  const m = JS_FRAME.exec(symbol);
  if (!m) return undefined;
  const [, name, url, line] = m;
  const module = moduleOf({ functionName: name!, url: url!, lineNumber: Number(line) - 1, columnNumber: 0 });
  return { module, fn: `${name || '(anonymous)'} ${module}:${line}` };
}

export interface PerfSummary {
  totalMs: number;
  byModule: { module: string; selfMs: number; inclusiveMs: number }[];
  byFunction: { name: string; selfMs: number }[];
}

export function summarisePerf(samples: PerfSample[], options: { thread?: string } = {}): PerfSummary {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const fnSelf = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, ns: number) => map.set(key, (map.get(key) ?? 0) + ns);
  let total = 0;
  for (const sample of samples) {
    if (options.thread && sample.thread !== options.thread) continue;
    total += sample.ns;
    if (sample.thread !== 'MainThread') {
      const name = `(thread ${sample.thread.replace(/\d+$/, '')})`;
      add(self, name, sample.ns);
      add(inclusive, name, sample.ns);
      add(fnSelf, name, sample.ns);
      continue;
    }
    const named = sample.frames.map(jsFrame);
    const innermost = named.find((n) => n !== undefined);
    const gc = sample.frames.some((f) => GC_SYMBOL.test(f));
    const own = gc ? { module: '(garbage collector)', fn: '(garbage collector)' } : (innermost ?? { module: '(native)', fn: `${sample.frames[0] ?? '?'} (native)` });
    add(self, own.module, sample.ns);
    add(fnSelf, own.fn, sample.ns);
    const modules = new Set<string>([own.module]);
    for (const n of named) if (n) modules.add(n.module);
    for (const m of modules) add(inclusive, m, sample.ns);
  }
  const ms = (ns: number) => ns / 1e6;
  return {
    totalMs: ms(total),
    byModule: [...inclusive.keys()].map((module) => ({ module, selfMs: ms(self.get(module) ?? 0), inclusiveMs: ms(inclusive.get(module)!) })).sort((a, b) => b.selfMs - a.selfMs),
    byFunction: [...fnSelf].map(([name, ns]) => ({ name, selfMs: ms(ns) })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
  if (!file) {
    console.error('usage: node bench/perf-profile.ts <perf script output> [--logins N] [--top N] [--functions N] [--thread MainThread]');
    process.exit(2);
  }
  const thread = opt('--thread');
  const summary = summarisePerf(parsePerfScript(readFileSync(file, 'utf8')), thread ? { thread } : {});
  const logins = Number(opt('--logins') ?? 0);
  const unit = logins > 0 ? 'ms/login' : 'ms';
  const val = (x: number) => (logins > 0 ? (x / logins).toFixed(3) : x.toFixed(0)).padStart(9);
  const pct = (x: number) => `${((100 * x) / summary.totalMs).toFixed(1).padStart(5)} %`;
  console.log(`${file}: ${val(summary.totalMs).trim()} ${unit} of CPU sampled${thread ? ` (thread ${thread})` : ''}\n`);
  console.log(`${'module'.padEnd(48)} ${`self ${unit}`.padStart(14)} ${'self'.padStart(7)} ${`incl ${unit}`.padStart(14)} ${'incl'.padStart(7)}`);
  for (const m of summary.byModule.slice(0, Number(opt('--top') ?? 30))) {
    console.log(`${m.module.slice(0, 48).padEnd(48)} ${val(m.selfMs).padStart(14)} ${pct(m.selfMs)} ${val(m.inclusiveMs).padStart(14)} ${pct(m.inclusiveMs)}`);
  }
  console.log(`\nfunctions by self time:`);
  for (const f of summary.byFunction.slice(0, Number(opt('--functions') ?? 40))) console.log(`${f.name.slice(0, 90).padEnd(90)} ${val(f.selfMs)} ${pct(f.selfMs)}`);
}
