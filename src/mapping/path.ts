import { LIMITS } from './limits.ts';

/**
 * Source paths into the upstream claims: `realm_access.roles`, `emails[0]`, `emails.0`,
 * `["https://acme.example/roles"]` (a quoted key may hold dots), `groups[*].name` (every element).
 * A number reads an array element or an object key spelled that way.
 */
export type Segment = KeySegment | typeof EVERY;
interface KeySegment {
  readonly key: string;
  /** The key as an array index, -1 when it is not a number. */
  readonly index: number;
}

/** `[*]`: the rest of the path is read from every element of an array; the results are flattened. */
export const EVERY: unique symbol = Symbol('[*]');

export interface Path {
  readonly source: string;
  readonly segments: readonly Segment[];
  /** True when the path holds `[*]`: its value is always an array (or missing). */
  readonly many: boolean;
}

export function parsePath(source: string): Path | string {
  if (source.length === 0) return 'a path cannot be empty';
  if (source.length > LIMITS.path) return `a path has at most ${LIMITS.path} characters`;
  const segments: Segment[] = [];
  let i = 0;
  let expectName = true;
  while (i < source.length) {
    const c = source[i];
    if (c === '[') {
      const end = bracketEnd(source, i);
      if (typeof end === 'string') return end;
      const inner = source.slice(i + 1, end);
      if (inner === '*') segments.push(EVERY);
      else if (/^(0|[1-9][0-9]{0,8})$/.test(inner)) segments.push(keySegment(inner));
      else if (/^(["']).*\1$/s.test(inner)) segments.push(keySegment(unquote(inner)));
      else return `"[${inner}]" is not an index, [*] or a quoted key at position ${i}`;
      i = end + 1;
      expectName = false;
    } else if (c === '.') {
      if (expectName) return `empty segment at position ${i}`;
      i++;
      expectName = true;
      if (i === source.length) return 'a path cannot end with "."';
    } else if (c === ']') {
      return `unexpected "]" at position ${i}`;
    } else {
      if (!expectName) return `expected "." or "[" at position ${i}`;
      let j = i;
      while (j < source.length && source[j] !== '.' && source[j] !== '[' && source[j] !== ']') j++;
      const name = source.slice(i, j);
      segments.push(name === '*' ? EVERY : keySegment(name));
      i = j;
      expectName = false;
    }
  }
  return { source, segments, many: segments.includes(EVERY) };
}

function keySegment(key: string): KeySegment {
  return { key, index: /^(0|[1-9][0-9]{0,8})$/.test(key) ? Number(key) : -1 };
}

function bracketEnd(source: string, open: number): number | string {
  const quote = source[open + 1];
  if (quote === '"' || quote === "'") {
    for (let j = open + 2; j < source.length; j++) {
      if (source[j] === '\\') j++;
      else if (source[j] === quote) return source[j + 1] === ']' ? j + 1 : `expected "]" after the quoted key at position ${j + 1}`;
    }
    return `unterminated quoted key at position ${open}`;
  }
  const end = source.indexOf(']', open);
  return end === -1 ? `unterminated "[" at position ${open}` : end;
}

function unquote(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/gs, '$1');
}

/**
 * The value at `path`, or undefined when any step is missing or null: OIDC says an absent claim is
 * omitted, and upstreams that send `null` mean the same. Only own properties are read, so a path can
 * never reach `constructor` or `__proto__` of the claims object.
 */
export function readPath(root: unknown, path: Path): unknown {
  if (!path.many) {
    let value = root;
    for (const segment of path.segments) {
      value = segment === EVERY ? undefined : step(value, segment);
      if (value === undefined) return undefined;
    }
    return value;
  }
  const out: unknown[] = [];
  // Missing unless the path reached an array at a [*]: an empty list upstream stays an empty list.
  return collect(root, path.segments, 0, out) ? out : undefined;
}

function step(value: unknown, segment: KeySegment): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  let next: unknown;
  if (Array.isArray(value)) next = segment.index >= 0 ? value[segment.index] : undefined;
  else next = Object.hasOwn(value, segment.key) ? (value as Record<string, unknown>)[segment.key] : undefined;
  return next === null ? undefined : next;
}

function collect(value: unknown, segments: readonly Segment[], from: number, out: unknown[]): boolean {
  for (let i = from; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === EVERY) {
      if (!Array.isArray(value)) return false;
      for (const element of value) if (element !== null && element !== undefined) collect(element, segments, i + 1, out);
      return true;
    }
    value = step(value, segment);
    if (value === undefined) return false;
  }
  out.push(value);
  return true;
}
