/** What each benchmark part returns: rows of one table, plus notes; run.ts prints and writes them. */

export interface Row {
  /** What was measured. */
  name: string;
  /** Operations per second (requests, logins, verifications...). */
  rate?: number;
  /** Unit of `rate`, e.g. "req/s". */
  unit?: string;
  /** Milliseconds. */
  p50?: number;
  p99?: number;
  /** e.g. "0.97 of bare". */
  ratio?: string;
  /** Anything else worth a column: CPU per op, errors, bytes. */
  note?: string;
}

export interface Section {
  title: string;
  /** How it was measured, one or two sentences. */
  method: string;
  rows: Row[];
  /** Extra lines (a second table, observations) in Markdown. */
  extra?: string[];
  /** Machine-readable figures other sections and docs quote. */
  figures?: Record<string, number>;
}

export function fmtRate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  if (n >= 100_000) return Math.round(n).toLocaleString('en-US');
  if (n >= 100) return Math.round(n).toLocaleString('en-US');
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function fmtMs(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  if (n >= 100) return Math.round(n).toString();
  if (n >= 10) return n.toFixed(1);
  if (n >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

export function fmtBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

export function ratio(a: number, b: number): string {
  return b > 0 ? (a / b).toFixed(2) : '';
}

/** A Markdown table of a section's rows. */
export function table(rows: Row[]): string {
  const header = ['measurement', 'rate', 'p50 ms', 'p99 ms', 'ratio', 'notes'];
  const lines = rows.map((r) => [
    r.name,
    r.rate === undefined ? '' : `${fmtRate(r.rate)} ${r.unit ?? ''}`.trim(),
    fmtMs(r.p50),
    fmtMs(r.p99),
    r.ratio ?? '',
    r.note ?? '',
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  const fmt = (l: string[]) => `| ${l.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 || i === 5 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [fmt(header), rule, ...lines.map(fmt)].join('\n');
}

export function renderSection(section: Section): string {
  return [`## ${section.title}`, '', section.method, '', table(section.rows), ...(section.extra?.length ? ['', ...section.extra] : [])].join('\n');
}

/** Percentile (0..100) of a sample, nearest-rank. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function sortedCopy(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs a part on its own (node bench/parts/x.ts): prints its table. */
export async function runAlone(part: () => Promise<Section>): Promise<void> {
  const { stopBenchRedis } = await import('./redis.ts');
  try {
    const section = await part();
    process.stdout.write(`${renderSection(section)}\n`);
  } finally {
    await stopBenchRedis();
  }
  process.exit(0);
}
