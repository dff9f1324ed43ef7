import { percentile } from './report.ts';

export interface Contender {
  name: string;
  /** One operation; awaited when it returns a promise. */
  op: () => unknown;
}

export interface BatchResult {
  name: string;
  ops: number;
  /** Operations per second over the measured batches. */
  rate: number;
  /** Per-operation latency in milliseconds. */
  p50: number;
  p99: number;
}

/**
 * In-process micro-benchmark: the contenders take turns in batches (A B, B A, A B, ...), so a
 * slowdown of the machine in the middle hits all of them alike. Each operation is timed on its
 * own for the percentiles; the rate is operations over the summed batch times.
 * Bounded: stops after `seconds` or `maxBatches` rounds, whichever comes first.
 */
export async function alternate(contenders: Contender[], options: { batch: number; seconds: number; warmupBatches?: number; maxBatches?: number }): Promise<BatchResult[]> {
  const { batch } = options;
  const times = contenders.map(() => [] as number[]);
  const spent = contenders.map(() => 0);
  const runBatch = async (index: number, record: boolean) => {
    const { op } = contenders[index]!;
    const samples = times[index]!;
    const start = performance.now();
    for (let i = 0; i < batch; i++) {
      const t0 = performance.now();
      const result = op();
      if (result instanceof Promise) await result;
      if (record) samples.push(performance.now() - t0);
    }
    if (record) spent[index]! += performance.now() - start;
  };
  for (let w = 0; w < (options.warmupBatches ?? 2); w++) for (let i = 0; i < contenders.length; i++) await runBatch(i, false);
  const deadline = performance.now() + options.seconds * 1000;
  const maxBatches = options.maxBatches ?? 1000;
  for (let round = 0; round < maxBatches && performance.now() < deadline; round++) {
    const order = contenders.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) await runBatch(i, true);
  }
  return contenders.map((c, i) => {
    const sorted = Float64Array.from(times[i]!).sort();
    return { name: c.name, ops: sorted.length, rate: (sorted.length / spent[i]!) * 1000, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  });
}
