import { celError, parse, plan, type CelResult } from '@bufbuild/cel';
import type { CelBindings } from './cel-values.ts';
import { APPEND, ENV, KNOWN_FUNCTIONS, MATCH_STEPS_PER_UNIT, matchesPattern, STRING_CHARS_PER_UNIT, TYPE_NAMES } from './cel-env.ts';
import { LIMITS } from './limits.ts';
import { matchSteps } from './regex.ts';

/*
 * Compiling a CEL expression once, at load. Expressions see one variable, `claims` (the upstream
 * claims), and the functions of cel-env.ts. Their cost is bounded three times:
 *  - here, by source size, bracket nesting, tree size and depth, an allow-list of names, and an
 *    estimated cost in which every comprehension over data runs LIMITS.celList times, every function
 *    reading a string pays for LIMITS.celStringEstimate characters and matches() for its RE2 program
 *    over such a string (Analysis);
 *  - at run time, by the claims an expression is given (cel-values.ts), which hold no list, map or
 *    string larger than the limits, and the functions that could build larger ones, which fail instead;
 *  - and by the meter every function charges as it runs (cel-env.ts, budget.ts): cost and time.
 * An expression that fails evaluates to an error; it never throws.
 */

type Expr = ReturnType<typeof parse>['expr'];

export interface CelProgram {
  readonly source: string;
  /** The load-time cost estimate (roughly, expression nodes evaluated). */
  readonly cost: number;
  /** The top-level claims the expression reads, or 'all' when it uses `claims` as a whole. */
  readonly reads: ReadonlySet<string> | 'all';
  evaluate(bindings: CelBindings): CelResult;
}


export function compileCel(source: string): CelProgram | string {
  if (source.trim() === '') return 'the expression is empty';
  if (source.length > LIMITS.celSource) return `an expression has at most ${LIMITS.celSource} characters`;
  const nesting = bracketNesting(source);
  if (nesting > LIMITS.celNesting) return `too deeply nested: ${nesting} levels of brackets (at most ${LIMITS.celNesting})`;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (error) {
    return `syntax error: ${(error as Error).message.replace(/^<input>:/, 'at ')}`;
  }
  const analysis = new Analysis();
  let cost: number;
  try {
    cost = analysis.estimate(parsed.expr, [], 1);
  } catch (error) {
    if (error instanceof Refusal) return error.message;
    throw error;
  }
  if (cost > LIMITS.celCost) {
    return `too heavy: estimated cost ${Math.round(cost)} exceeds ${LIMITS.celCost} (every comprehension over claims counts ${LIMITS.celList} iterations, nested ones multiply; a matches() costs its pattern's RE2 program over ${LIMITS.celStringEstimate} characters)`;
  }
  let run: (bindings: CelBindings) => CelResult;
  try {
    run = plan(ENV, parsed) as (bindings: CelBindings) => CelResult;
  } catch (error) {
    return `cannot be compiled: ${(error as Error).message}`;
  }
  return {
    source,
    cost,
    reads: analysis.all ? 'all' : analysis.reads,
    evaluate(bindings) {
      try {
        return run(bindings);
      } catch (error) {
        return celError(error);
      }
    },
  };
}

class Refusal extends Error {}

class Analysis {
  nodes = 0;
  /** Claims read as `claims.name` or `claims['name']`; any other use of `claims` sets `all`. */
  readonly reads = new Set<string>();
  all = false;

  /** Estimated evaluation cost of `expr`; throws a Refusal for anything the mapping does not allow. */
  estimate(expr: Expr | undefined, scope: readonly string[], depth: number): number {
    if (expr === undefined) throw new Refusal('incomplete expression');
    if (++this.nodes > LIMITS.celNodes) throw new Refusal(`too large: more than ${LIMITS.celNodes} nodes once macros are expanded`);
    if (depth > LIMITS.celDepth) throw new Refusal(`too deeply nested: more than ${LIMITS.celDepth} levels`);
    const kind = expr.exprKind;
    const next = depth + 1;
    switch (kind.case) {
      case 'constExpr':
        return 1;
      case 'identExpr': {
        const name = kind.value.name;
        if (name === 'claims' && !scope.includes(name)) this.all = true;
        if (name === 'claims' || scope.includes(name) || TYPE_NAMES.has(name)) return 1;
        throw new Refusal(`unknown variable "${name}": expressions see only \`claims\``);
      }
      case 'selectExpr':
        if (this.#readsClaim(kind.value.operand, scope, kind.value.field)) return 2;
        return 1 + this.estimate(kind.value.operand, scope, next);
      case 'listExpr': {
        let cost = 1;
        for (const element of kind.value.elements) cost += this.estimate(element, scope, next);
        return cost;
      }
      case 'structExpr': {
        if (kind.value.messageName !== '') throw new Refusal(`message construction (${kind.value.messageName}{...}) is not allowed`);
        let cost = 1;
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case !== 'mapKey') throw new Refusal('message fields are not allowed');
          cost += this.estimate(entry.keyKind.value, scope, next) + this.estimate(entry.value, scope, next);
        }
        return cost;
      }
      case 'callExpr': {
        const call = kind.value;
        let cost = 1;
        const target = call.target;
        if (target && target.exprKind.case === 'identExpr' && !isVariable(target.exprKind.value.name, scope)) {
          const qualified = `${target.exprKind.value.name}.${call.function}`;
          if (!KNOWN_FUNCTIONS.has(qualified)) throw new Refusal(`unknown function "${qualified}"`);
        } else {
          if (!KNOWN_FUNCTIONS.has(call.function)) throw new Refusal(`unknown function "${call.function}"`);
          const [operand, key] = call.args;
          if (call.function === '_[_]' && key?.exprKind.case === 'constExpr' && key.exprKind.value.constantKind.case === 'stringValue') {
            if (this.#readsClaim(operand, scope, key.exprKind.value.constantKind.value)) return 3;
          }
          if (target) cost += this.estimate(target, scope, next);
        }
        if (call.function === 'matches') cost += matchesCost(call.args[call.target ? 0 : 1]);
        else if (STRING_FUNCTIONS.has(call.function)) cost += Math.ceil(LIMITS.celStringEstimate / STRING_CHARS_PER_UNIT);
        for (const arg of call.args) cost += this.estimate(arg, scope, next);
        return cost;
      }
      case 'comprehensionExpr': {
        const c = kind.value;
        const inner = [...scope, c.accuVar, c.iterVar, ...(c.iterVar2 ? [c.iterVar2] : [])];
        const range = c.iterRange?.exprKind;
        // A literal range runs as often as it has elements; anything else as often as the largest list allowed.
        const n = range?.case === 'listExpr' ? range.value.elements.length : range?.case === 'structExpr' ? range.value.entries.length : LIMITS.celList;
        const outer = this.estimate(c.iterRange, scope, next) + this.estimate(c.accuInit, scope, next) + this.estimate(c.result, [...scope, c.accuVar], next);
        const init = c.accuInit?.exprKind;
        const builds = init?.case === 'listExpr';
        const appends = builds && init.value.elements.length === 0 && useAppend(c.loopStep, c.accuVar);
        const body = this.estimate(c.loopCondition, inner, next) + this.estimate(c.loopStep, inner, next);
        // A list built by copying (any shape other than map()/filter()) costs n²/2 copies.
        return 1 + outer + n * body + (builds && !appends ? (n * n) / 2 : 0);
      }
      default:
        throw new Refusal('unsupported expression');
    }
  }

  /** Records `claims.<name>` so that only the claims read are converted for CEL at each login. */
  #readsClaim(operand: Expr | undefined, scope: readonly string[], name: string): boolean {
    if (operand?.exprKind.case !== 'identExpr' || operand.exprKind.value.name !== 'claims' || scope.includes('claims')) return false;
    ++this.nodes;
    this.reads.add(name);
    return true;
  }
}

/** Renames `accu + [..]` in a fold step to APPEND; true when it found one. */
function useAppend(step: Expr | undefined, accuVar: string): boolean {
  const kind = step?.exprKind;
  if (kind?.case !== 'callExpr') return false;
  const call = kind.value;
  const [left, right] = call.args;
  if (
    call.function === '_+_' &&
    !call.target &&
    left?.exprKind.case === 'identExpr' &&
    left.exprKind.value.name === accuVar &&
    right?.exprKind.case === 'listExpr'
  ) {
    call.function = APPEND;
    return true;
  }
  // filter(): `cond ? accu + [x] : accu`
  return call.function === '_?_:_' && useAppend(call.args[1], accuVar);
}

function isVariable(name: string, scope: readonly string[]): boolean {
  return name === 'claims' || scope.includes(name);
}

/** Functions that read their string arguments through: each call pays for the string's length. */
const STRING_FUNCTIONS = new Set([
  'contains', 'startsWith', 'endsWith', '_+_', 'charAt', 'indexOf', 'lastIndexOf', 'lowerAscii', 'upperAscii', 'replace', 'split', 'substring', 'trim', 'join', 'quote', 'reverse', 'format',
]);

/**
 * RE2 is linear in its input, but compiling a pattern is not free and a large program makes every
 * character cost more: only literal patterns, checked and compiled now; the estimate is the program
 * over a string of LIMITS.celStringEstimate characters.
 */
function matchesCost(pattern: Expr | undefined): number {
  const kind = pattern?.exprKind;
  if (kind?.case !== 'constExpr' || kind.value.constantKind.case !== 'stringValue') {
    throw new Refusal('matches() takes a string literal as its pattern');
  }
  const re = matchesPattern(kind.value.constantKind.value);
  if (typeof re === 'string') throw new Refusal(`invalid matches() pattern: ${re}`);
  return 1 + Math.ceil(matchSteps(re, LIMITS.celStringEstimate) / MATCH_STEPS_PER_UNIT);
}

/** Deepest nesting of (), [] and {} outside string literals: the parser recurses on it, so it is bounded first. */
function bracketNesting(source: string): number {
  let depth = 0;
  let max = 0;
  let quote: string | undefined;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (source.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = undefined;
      }
    } else if (c === '"' || c === "'") {
      quote = source.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
      i += quote.length - 1;
    } else if (c === '(' || c === '[' || c === '{') {
      max = Math.max(max, ++depth);
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
    }
  }
  return max;
}
