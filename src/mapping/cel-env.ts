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
import { LIMITS } from './limits.ts';

/*
 * The CEL environment of mappings: one variable, `claims`, the standard library and the strings
 * extension, where every function that can build a string, bytes or list larger than the runtime limits
 * (`+`, the strings extension) fails instead. This is what makes the load-time cost estimate (cel.ts) hold.
 */

const { STRING, BYTES, INT, DYN } = CelScalar;
const LIST = listType(DYN);

export function tooLarge(what: string): Error {
  return new Error(`${what} larger than the mapping allows`);
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

// Annotated: the inferred type names a private symbol of @bufbuild/cel, which declarations (dist) cannot.
export const ENV: CelEnv = celEnv({ variables: { claims: mapType(STRING, DYN) }, funcs: FUNCTIONS });

/** Calls the planner resolves itself, which are not in the function table. */
const OPERATORS = ['_&&_', '_||_', '_?_:_', '_[_]', '@not_strictly_false', '__not_strictly_false__'];
export const KNOWN_FUNCTIONS: ReadonlySet<string> = new Set([...OPERATORS, ...Array.from(ENV.funcs, (f) => f.name)]);
/** Type names an expression may compare with `type(x) == string`. */
export const TYPE_NAMES: ReadonlySet<string> = new Set(['bool', 'bytes', 'double', 'int', 'list', 'map', 'null_type', 'string', 'type', 'uint']);
