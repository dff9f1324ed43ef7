import { celList, celMap, isCelList, isCelMap, isCelUint, type CelList, type CelMap, type CelValue } from '@bufbuild/cel';
import { LIMITS } from './limits.ts';

/** What an expression is evaluated against: built once per apply() and shared by every expression. */
// A type alias, not an interface: CEL's planner takes bindings as an indexable record.
export type CelBindings = {
  claims: CelMap;
};

const TOO_LARGE = Symbol('too large');

/**
 * The upstream claims as CEL values (only those in `reads`, unless 'all'), or undefined when they exceed
 * what expressions may be given; then every expression of this login fails (see compile.ts). Converting
 * here rather than letting CEL convert on access means each value is converted once per login, and a
 * claim named `constructor` or `$typeName` is plain data rather than something CEL's converter interprets.
 */
export function claimsView(claims: Record<string, unknown>, reads: ReadonlySet<string> | 'all' = 'all'): CelBindings | undefined {
  const budget = { left: LIMITS.celClaimsValues };
  try {
    if (reads === 'all') return { claims: toCelMap(claims, 0, budget) };
    const entries = new Map<string, CelValue>();
    for (const key of reads) {
      const value = Object.hasOwn(claims, key) ? toCelValue(claims[key], 0, budget) : undefined;
      if (value !== undefined) entries.set(key, value);
    }
    return { claims: celMap(entries) };
  } catch (error) {
    if (error === TOO_LARGE) return undefined;
    throw error;
  }
}

function toCelMap(object: object, depth: number, budget: { left: number }): CelMap {
  const keys = Object.keys(object);
  if (keys.length > LIMITS.celList) throw TOO_LARGE;
  const entries = new Map<string, CelValue>();
  for (const key of keys) {
    const value = toCelValue((object as Record<string, unknown>)[key], depth, budget);
    if (value !== undefined) entries.set(key, value);
  }
  return celMap(entries);
}

function toCelValue(value: unknown, depth: number, budget: { left: number }): CelValue | undefined {
  if (--budget.left < 0) throw TOO_LARGE;
  switch (typeof value) {
    case 'string':
      if (value.length > LIMITS.celString) throw TOO_LARGE;
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return value;
    case 'object': {
      if (value === null) return null;
      if (depth >= LIMITS.celClaimsDepth) throw TOO_LARGE;
      if (!Array.isArray(value)) return toCelMap(value, depth + 1, budget);
      if (value.length > LIMITS.celList) throw TOO_LARGE;
      const elements: CelValue[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) elements[i] = toCelValue(value[i], depth + 1, budget) ?? null;
      return celList(elements) as CelList;
    }
    default:
      return undefined;
  }
}

export const NOT_JSON = Symbol('not JSON');

/** A CEL result as a JSON claim value, or NOT_JSON (bytes, timestamps, types, non-string map keys, NaN). */
export function celToJson(value: CelValue): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : NOT_JSON;
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : NOT_JSON;
  }
  if (value === null) return null;
  if (isCelList(value)) {
    const out: unknown[] = [];
    for (const element of value) {
      const json = celToJson(element);
      if (json === NOT_JSON) return NOT_JSON;
      out.push(json);
    }
    return out;
  }
  if (isCelMap(value)) {
    const entries: [string, unknown][] = [];
    for (const [key, element] of value) {
      if (typeof key !== 'string') return NOT_JSON;
      const json = celToJson(element);
      if (json === NOT_JSON) return NOT_JSON;
      entries.push([key, json]);
    }
    // fromEntries defines own properties, so a key such as "__proto__" stays data.
    return Object.fromEntries(entries);
  }
  if (isCelUint(value)) return celToJson(value.value);
  return NOT_JSON;
}
