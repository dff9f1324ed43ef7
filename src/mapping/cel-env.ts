import {
  celEnv,
  celFunc,
  celList,
  celListConcat,
  celMethod,
  CelScalar,
  isCelError,
  isCelList,
  listType,
  mapType,
  type CelEnv,
  type CelFunc,
  type CelList,
  type CelValue,
} from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { charge, exceed, LimitExceeded } from './budget.ts';
import { LIMITS } from './limits.ts';
import { compilePattern, matchSteps } from './regex.ts';

/*
 * The CEL environment of mappings: one variable, `claims`, the standard library and the strings
 * extension, where every function that can build a string, bytes or list larger than the runtime limits
 * (`+`, the strings extension) fails instead. This is what makes the load-time cost estimate (cel.ts) hold.
 *
 * Every function is metered: before it runs it charges the active budget (budget.ts) one unit, plus a
 * unit per STRING_CHARS_PER_UNIT characters of the strings it is given, plus, for matches(), a unit per
 * MATCH_STEPS_PER_UNIT steps its RE2 program may take on that input. So the expression's real cost is
 * counted as it runs, and a budget spent or a deadline passed stops it at its next call.
 */

const { STRING, BYTES, INT, BOOL, DYN } = CelScalar;
const LIST = listType(DYN);

/** Characters of string a function reads for one cost unit. */
export const STRING_CHARS_PER_UNIT = 100;
/** RE2 steps (program instructions x input characters) for one cost unit. */
export const MATCH_STEPS_PER_UNIT = 100;

export function tooLarge(what: string): LimitExceeded {
  const bound = what === 'list' ? `lists <= ${LIMITS.celList} entries` : `${what} <= ${LIMITS.celString} characters`;
  return exceed(new LimitExceeded('cel_cost_exceeded', `expression ${bound}`, `an expression built a ${what} larger than the mapping allows`));
}

const sizeUnits = (value: unknown): number =>
  typeof value === 'string' || value instanceof Uint8Array ? Math.ceil(value.length / STRING_CHARS_PER_UNIT) : 0;

/** The same function, charging the budget for each call (see above). */
function metered(func: CelFunc): CelFunc {
  const impl = function (this: CelValue | undefined, ...args: CelValue[]) {
    let units = 1 + sizeUnits(this);
    for (const arg of args) units += sizeUnits(arg);
    charge(units);
    const result = func.call(0, this, args);
    if (result === undefined) throw new Error(`no matching overload for ${func.name}`);
    if (isCelError(result)) throw result;
    return result;
  };
  return func.target
    ? celMethod(func.name, func.target, func.arguments, func.result, impl as never)
    : celFunc(func.name, func.arguments, func.result, impl as never);
}

/**
 * `string.matches(pattern)` on re2js (the RE2 port, linear in its input), replacing the library's own,
 * which compiles the pattern on every call. Patterns are string literals checked at load (cel.ts), so
 * each is compiled once; the cache holds at most MATCHES_CACHE of them.
 */
const MATCHES_CACHE = 1024;
const compiledPatterns = new Map<string, ReturnType<typeof compilePattern>>();

export function matchesPattern(pattern: string) {
  let re = compiledPatterns.get(pattern);
  if (re === undefined) {
    re = compilePattern(pattern);
    if (compiledPatterns.size >= MATCHES_CACHE) compiledPatterns.delete(compiledPatterns.keys().next().value!);
    compiledPatterns.set(pattern, re);
  }
  return re;
}

function matches(this: string, pattern: string): boolean {
  const re = matchesPattern(pattern);
  if (typeof re === 'string') throw new Error(`invalid matches() pattern: ${re}`);
  charge(1 + Math.ceil(matchSteps(re, this.length) / MATCH_STEPS_PER_UNIT));
  return re.test(this);
}

function checkSize(value: unknown): void {
  if (typeof value === 'string' && value.length > LIMITS.celString) throw tooLarge('string');
  if (value instanceof Uint8Array && value.length > LIMITS.celString) throw tooLarge('bytes');
  if (isCelList(value) && value.size > LIMITS.celList) throw tooLarge('list');
}

/** The same function, failing when its result would exceed the runtime limits. */
function guarded(func: CelFunc): CelFunc {
  const impl = function (this: CelValue | undefined, ...args: CelValue[]) {
    const result = func.call(0, this, args);
    if (result === undefined) throw new Error(`no matching overload for ${func.name}`);
    if (isCelError(result)) throw result;
    checkSize(result);
    return result;
  };
  // The wrapper keeps name, target and argument types, so it replaces the original overload (same id).
  return func.target
    ? celMethod(func.name, func.target, func.arguments, func.result, impl as never)
    : celFunc(func.name, func.arguments, func.result, impl as never);
}

/** Linear, and refuses before building a result larger than the limit (the extension's copy is quadratic). */
function replace(this: string, sub: string, repl: string, n?: bigint): string {
  if (sub === '') throw new Error('replace() needs a non-empty substring');
  const limit = n === undefined || n < 0n ? Infinity : Number(n);
  const parts: string[] = [];
  let from = 0;
  let length = this.length;
  for (let count = 0; count < limit; count++) {
    const at = this.indexOf(sub, from);
    if (at === -1) break;
    length += repl.length - sub.length;
    if (length > LIMITS.celString) throw tooLarge('string');
    parts.push(this.slice(from, at), repl);
    from = at + sub.length;
  }
  parts.push(this.slice(from));
  return parts.join('');
}

const FUNCTIONS: CelFunc[] = [
  ...strings.filter((f) => f.name !== 'replace').map(guarded),
  celMethod('replace', STRING, [STRING, STRING], STRING, replace),
  celMethod('replace', STRING, [STRING, STRING, INT], STRING, replace),
  celFunc('_+_', [STRING, STRING], STRING, (l, r) => {
    if (l.length + r.length > LIMITS.celString) throw tooLarge('string');
    return l + r;
  }),
  celFunc('_+_', [BYTES, BYTES], BYTES, (l, r) => {
    if (l.length + r.length > LIMITS.celString) throw tooLarge('bytes');
    const out = new Uint8Array(l.length + r.length);
    out.set(l);
    out.set(r, l.length);
    return out;
  }),
  celFunc('_+_', [LIST, LIST], LIST, (l, r) => {
    if (l.size + r.size > LIMITS.celList) throw tooLarge('list');
    return celListConcat(l, r);
  }),
  celMethod('matches', STRING, [STRING], BOOL, matches),
];

/**
 * map() and filter() expand to a fold whose step is `@result + [x]`: a new list per element, O(n²) in all
 * (and slow to iterate, as nested concatenations). The analysis renames exactly that call to APPEND,
 * which appends in place to the list this fold created. Safe because only the fold can refer to its
 * accumulator: `@result` cannot be written in an expression.
 */
export const APPEND = '@mapping_append';
const appended = new WeakMap<CelList, CelValue[]>();
const SHORT_LIST = 8;

function append(accu: CelList, items: CelList): CelList {
  let array = appended.get(accu);
  let list = accu;
  if (array === undefined) {
    // Short lists are cheaper as the library's concatenation; copy once they grow.
    if (accu.size + items.size <= SHORT_LIST) return celListConcat(accu, items);
    array = Array.from(accu);
    list = celList(array) as CelList;
    appended.set(list, array);
  }
  if (array.length + items.size > LIMITS.celList) throw tooLarge('list');
  for (let i = 0; i < items.size; i++) array.push(items.get(i)!);
  return list;
}

FUNCTIONS.push(celFunc(APPEND, [LIST, LIST], LIST, append));

const variables = { claims: mapType(STRING, DYN) };
// Every overload of the standard library and of FUNCTIONS, metered; matches() meters itself by its input.
const ALL = Array.from(celEnv({ variables, funcs: FUNCTIONS }).funcs).map((func) => (func.name === 'matches' ? func : metered(func)));
// Annotated: the inferred type names a private symbol of @bufbuild/cel, which declarations (dist) cannot.
export const ENV: CelEnv = celEnv({ variables, funcs: ALL });

/** Calls the planner resolves itself, which are not in the function table. */
const OPERATORS = ['_&&_', '_||_', '_?_:_', '_[_]', '@not_strictly_false', '__not_strictly_false__'];
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([...OPERATORS, ...Array.from(ENV.funcs, (f) => f.name)]);
/** Type names an expression may compare with `type(x) == string`. */
export const TYPE_NAMES: ReadonlySet<string> = new Set(['bool', 'bytes', 'double', 'int', 'list', 'map', 'null_type', 'string', 'type', 'uint']);
