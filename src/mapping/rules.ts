import { isCelError, type CelResult } from '@bufbuild/cel';
import { Budget, LimitExceeded, withBudget } from './budget.ts';
import { celToJson, claimsView, NOT_JSON, type CelBindings } from './cel-values.ts';
import type { CelProgram } from './cel.ts';
import { LIMITS } from './limits.ts';
import { parsePath, readPath, type Path } from './path.ts';
import { compileRegex, type CompiledRegex } from './regex.ts';
import type { ClaimRule, JsonValue, LookupValue } from './schema.ts';
import { parseTemplate, renderTemplate } from './template.ts';

/* How each kind of claim rule yields its value: compiled once into a function of one Evaluation. */

export const NOTHING = Symbol('nothing');
export const REMOVE = Symbol('remove');
export type Yield = unknown; // a claim value, NOTHING or REMOVE

/**
 * The state of one apply(): the upstream claims, once an expression needs it their CEL form, and the
 * budget of time and cost. A limit hit anywhere throws LimitExceeded out of the rule that hit it: the
 * login ends with that limit's outcome instead of the rule quietly yielding nothing.
 */
export class Evaluation {
  readonly claims: Record<string, unknown>;
  readonly budget: Budget;
  readonly #reads: ReadonlySet<string> | 'all';
  #bindings: CelBindings | undefined;

  constructor(claims: Record<string, unknown>, reads: ReadonlySet<string> | 'all', budget: Budget) {
    this.claims = claims;
    this.budget = budget;
    this.#reads = reads;
  }

  run(program: CelProgram): CelResult {
    if (this.#bindings === undefined) {
      const bindings = claimsView(this.claims, this.#reads);
      if (!bindings) throw new LimitExceeded('claims_too_large', `claims given to expressions <= ${LIMITS.celClaimsValues} values`, 'the upstream claims are too large for expressions');
      this.#bindings = bindings;
    }
    const budget = this.budget;
    budget.startEvaluation();
    const result = withBudget(budget, () => program.evaluate(this.#bindings!));
    if (budget.exceeded) throw budget.exceeded;
    return result;
  }
}

export type Problem = (field: string, message: string) => void;
export type CelCompiler = (field: string, source: string) => CelProgram | undefined;

export function producer(rule: ClaimRule, problem: Problem, cel: CelCompiler): ((evaluation: Evaluation) => Yield) | undefined {
  if (rule.value !== undefined) {
    const constant = deepFreeze(structuredClone(rule.value));
    return () => constant;
  }
  if (rule.template !== undefined) {
    const template = parseTemplate(rule.template);
    if (typeof template === 'string') return void problem('template', template);
    return (evaluation) => renderTemplate(template, evaluation.claims) ?? NOTHING;
  }
  if (rule.cel !== undefined) {
    const program = cel('cel', rule.cel);
    if (!program) return undefined;
    return (evaluation) => {
      const result = evaluation.run(program);
      if (isCelError(result)) return NOTHING;
      const json = celToJson(result);
      return json === NOT_JSON || json === null ? NOTHING : json;
    };
  }
  const sources = typeof rule.from === 'string' ? [rule.from] : rule.from ?? [];
  const paths: Path[] = [];
  sources.forEach((source, i) => {
    const path = parsePath(source);
    if (typeof path === 'string') problem(typeof rule.from === 'string' ? 'from' : `from.${i}`, path);
    else paths.push(path);
  });
  let transform: ((value: unknown, budget: Budget) => Yield) | undefined;
  if (rule.lookup !== undefined) transform = lookup(rule.lookup, rule.unmatched ?? 'drop');
  if (rule.regex !== undefined) {
    const compiled = compileRegex(rule.regex);
    if (Array.isArray(compiled)) for (const issue of compiled) problem(issue.field, issue.message);
    else transform = regex(compiled);
  }
  if (paths.length !== sources.length || (rule.regex !== undefined && !transform)) return undefined;
  return (evaluation) => {
    let value: unknown;
    for (const path of paths) {
      value = readPath(evaluation.claims, path);
      if (value !== undefined) break;
    }
    if (value === undefined) return NOTHING;
    return transform ? transform(value, evaluation.budget) : value;
  };
}

/** Single values map to a single value; arrays element by element, without duplicates. */
function lookup(table: Record<string, LookupValue>, unmatched: 'drop' | 'keep'): (value: unknown) => Yield {
  // A Map, so keys such as "constructor" or "__proto__" are plain data.
  const entries = new Map<string, LookupValue | readonly (string | number | boolean)[]>(
    Object.entries(table).map(([key, value]) => [key, Array.isArray(value) ? Object.freeze([...value]) : value]),
  );
  const keep = unmatched === 'keep';
  const find = (value: unknown) =>
    typeof value === 'string' ? entries.get(value) : typeof value === 'number' || typeof value === 'boolean' ? entries.get(String(value)) : undefined;
  return (value) => {
    if (!Array.isArray(value)) {
      const mapped = find(value);
      return mapped !== undefined ? mapped : keep ? value : REMOVE;
    }
    const out = new Set<unknown>();
    for (const element of value) {
      const mapped = find(element);
      if (mapped === undefined) {
        if (keep && element !== null) out.add(element);
      } else if (Array.isArray(mapped)) {
        for (const m of mapped) out.add(m);
      } else {
        out.add(mapped);
      }
    }
    return Array.from(out);
  };
}

/**
 * Strings (and numbers, as text) are matched; elements of arrays one by one, non-matches dropped.
 * The mapping's deadline is checked before each value: one match is bounded (regex.ts), a list of them
 * is bounded by the time budget.
 */
function regex(compiled: CompiledRegex): (value: unknown, budget: Budget) => Yield {
  const one = (value: unknown): string | undefined =>
    typeof value === 'string' ? compiled(value) : typeof value === 'number' ? compiled(String(value)) : undefined;
  return (value, budget) => {
    budget.checkTime();
    if (!Array.isArray(value)) return one(value) ?? NOTHING;
    const out: string[] = [];
    for (const element of value) {
      budget.checkTime();
      const result = one(element);
      if (result !== undefined) out.push(result);
    }
    return out;
  };
}

function deepFreeze<T extends JsonValue>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child as JsonValue);
    Object.freeze(value);
  }
  return value;
}
