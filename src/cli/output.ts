import { stringify } from 'yaml';

export interface Output {
  json: boolean;
  out(text: string): void;
  err(text: string): void;
}

/** Left-aligned columns for people; empty cells show as "-". */
export function table(headers: string[], rows: Array<Array<string | number | boolean | undefined>>): string {
  const cells = rows.map((row) => row.map((c) => (c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...cells.map(line)].join('\n');
}

/** `--json`: the API's answer as is, for scripts; otherwise what a person reads. */
export function emit(io: Output, data: unknown, human: () => string): void {
  io.out(io.json ? JSON.stringify(data, null, 2) : human());
}

export const yaml = (data: unknown) => stringify(data).trimEnd();
