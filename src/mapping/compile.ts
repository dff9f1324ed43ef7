import { isCelError } from '@bufbuild/cel';
import { Budget, LimitExceeded, type BudgetLimits, type MappingLimitCode } from './budget.ts';
import { compileCel, type CelProgram } from './cel.ts';
import { exceededClaimBound } from './claims-bounds.ts';
import { STANDARD_CLAIMS } from './claims.ts';
import { MappingError, type MappingIssue } from './errors.ts';
import { LIMITS } from './limits.ts';
import { emailPolicy, type EmailPolicy } from './policy.ts';
import { Evaluation, NOTHING, producer, REMOVE, type Yield } from './rules.ts';
import { MappingRuleSchema, MappingSchema, type MappingConfig, type RequireRule } from './schema.ts';

/*
 * Semantics of apply(), in order:
 *  0. the upstream claims are checked against the claim bounds (claims-bounds.ts): past one, the login
 *     ends with that limit's outcome (claims_too_deep, claim_list_too_long, claims_too_large), before
 *     anything is mapped or stored;
 *  1. the passthrough claims are copied from the upstream (absent and null ones are skipped);
 *  2. the rules run in order. Every source (paths, templates, CEL) reads the upstream claims, never the
 *     output of earlier rules, so a rule means the same wherever it stands. A rule that yields a value
 *     sets its claim, overwriting what was there; a rule that yields nothing (missing source, no regex
 *     match, CEL error or null) leaves the claim as it is, so an earlier rule or the passthrough acts as
 *     a fallback. One exception: a lookup with `unmatched: drop` that matches nothing on a single value
 *     removes the claim, because "drop" must not let the unmapped upstream value through.
 *     `when` applies a rule only when it is exactly true (an error counts as false). A `require` rule
 *     refuses the login unless its expression is exactly true (an error refuses too);
 *  3. the email domain policy (policy.ts), whatever the rules did.
 * A limit hit while the rules run (an expression's cost, a value it builds past the list or string
 * limits, the mapping's time budget: budget.ts) also ends the login with that limit's outcome
 * (cel_cost_exceeded, mapping_timeout), whichever kind of rule hit it: a limit is never mistaken for a
 * rule that said no.
 */

export type MappingOutcome =
  | { ok: true; claims: Record<string, unknown> }
  | {
      ok: false;
      code: 'mapping_rejected';
      /** 0-based index of the require rule in `rules`. */
      ruleIndex: number;
      /** The rule's `name`, or its expression. */
      requirement: string;
      /** The participant's message for the user, when configured. */
      message?: string;
      /** Why the expression was not true when it failed rather than returned false: for logs and the dry-run, not for users. */
      error?: string;
    }
  | {
      ok: false;
      /** Which limit (budget.ts): the login's outcome. */
      code: MappingLimitCode;
      /** 0-based index of the rule that was running, or null when the claims were refused before any rule. */
      ruleIndex: number | null;
      /** The limit, for the log: e.g. `claims nesting <= 16`. */
      requirement: string;
      /** What exceeded it, for the log and the dry-run (names a claim, never its value). */
      error: string;
      message?: undefined;
    };

export interface CompiledMapping {
  /**
   * Same code for real logins and dry-run. Pure: no I/O, no logging, never throws. `limits` overrides
   * the time and cost budget (tests).
   */
  apply(upstreamClaims: Record<string, unknown>, limits?: Partial<BudgetLimits>): MappingOutcome;
}

export interface MappingContext {
  participantId: string;
  domains: string[];
}

interface SetStep {
  readonly kind: 'set';
  readonly index: number;
  readonly when: CelProgram | undefined;
  readonly claim: string;
  readonly produce: (evaluation: Evaluation) => Yield;
}

interface RequireStep {
  readonly kind: 'require';
  readonly index: number;
  readonly when: CelProgram | undefined;
  readonly program: CelProgram;
  /** Prebuilt, so a refusal allocates nothing unless it carries an error. */
  readonly refusal: Extract<MappingOutcome, { ok: false }>;
}

type Step = SetStep | RequireStep;

interface Plan {
  readonly passthrough: readonly string[];
  readonly steps: readonly Step[];
  readonly policy: EmailPolicy;
  /** The upstream claims any expression reads: only these are converted for CEL. */
  readonly reads: ReadonlySet<string> | 'all';
}

/** Validates and compiles a participant's mapping once; throws one MappingError listing every issue. */
export function compileMapping(config: MappingConfig | undefined, ctx: MappingContext): CompiledMapping {
  const participant = ctx.participantId;
  const input: unknown = config ?? { rules: [] };
  const parsed = MappingSchema.safeParse(input);
  const issues: MappingIssue[] = parsed.success ? [] : parsed.error.issues.map((issue) => issueOf(participant, issue.path, issue.message));
  // With a shape error somewhere, the rules that are well-formed are still compiled, so one round of
  // fixing sees every issue.
  const rules = parsed.success ? parsed.data.rules : rawRules(input).map((rule) => MappingRuleSchema.safeParse(rule).data);
  const steps: Step[] = [];
  let totalCost = 0;
  let reads: Set<string> | 'all' = new Set();

  rules.forEach((rule, index) => {
    if (rule === undefined) return;
    const problem = (field: string, message: string) => issues.push({ participant, index, field, message });
    const cel = (field: string, source: string): CelProgram | undefined => {
      const program = compileCel(source);
      if (typeof program === 'string') {
        problem(field, program);
        return undefined;
      }
      totalCost += program.cost;
      if (program.reads === 'all' || reads === 'all') reads = 'all';
      else for (const name of program.reads) reads.add(name);
      return program;
    };
    const when = rule.when === undefined ? undefined : cel('when', rule.when);
    if ('require' in rule) {
      const program = cel('require', rule.require);
      if (program) steps.push({ kind: 'require', index, when, program, refusal: refusal(rule, index) });
      return;
    }
    const produce = producer(rule, problem, cel);
    if (produce) steps.push({ kind: 'set', index, when, claim: rule.claim, produce });
  });
  if (totalCost > LIMITS.celCostPerMapping) {
    issues.push({ participant, index: null, field: 'rules', message: `the expressions together are too heavy: estimated cost ${Math.round(totalCost)} exceeds ${LIMITS.celCostPerMapping}` });
  }
  if (!parsed.success || issues.length > 0) throw new MappingError(issues.sort((a, b) => (a.index ?? -1) - (b.index ?? -1)));

  const mapping = parsed.data;
  const plan: Plan = {
    passthrough: mapping.passthrough ?? STANDARD_CLAIMS,
    steps,
    policy: emailPolicy(ctx.domains, mapping.keepForeignEmailUnverified ?? false),
    reads,
  };
  return { apply: (upstream, limits) => apply(upstream, plan, new Budget(limits)) };
}

/** A schema issue, placed in a rule when its path goes through `rules[i]`. */
function issueOf(participant: string, path: readonly PropertyKey[], message: string): MappingIssue {
  const [first, second, ...rest] = path;
  const inRule = first === 'rules' && typeof second === 'number';
  return { participant, index: inRule ? second : null, field: (inRule ? rest : path).map(String).join('.'), message };
}

function rawRules(input: unknown): unknown[] {
  if (Array.isArray(input)) return input;
  const rules = input !== null && typeof input === 'object' ? (input as { rules?: unknown }).rules : undefined;
  return Array.isArray(rules) ? rules : [];
}

function apply(upstream: Record<string, unknown>, { passthrough, steps, policy, reads }: Plan, budget: Budget): MappingOutcome {
  const claims = upstream !== null && typeof upstream === 'object' && !Array.isArray(upstream) ? upstream : {};
  const bound = exceededClaimBound(claims);
  if (bound) return limitOutcome(bound, null);
  const out: Record<string, unknown> = {};
  for (const name of passthrough) {
    const value = Object.hasOwn(claims, name) ? claims[name] : undefined;
    if (value !== undefined && value !== null) out[name] = value;
  }
  const evaluation = new Evaluation(claims, reads, budget);
  let index = 0;
  try {
    for (const step of steps) {
      index = step.index;
      if (step.when && evaluation.run(step.when) !== true) continue;
      if (step.kind === 'require') {
        const result = evaluation.run(step.program);
        if (result === true) continue;
        return isCelError(result) ? { ...step.refusal, error: result.message } : step.refusal;
      }
      const value = step.produce(evaluation);
      if (value === NOTHING) continue;
      if (value === REMOVE) delete out[step.claim];
      else out[step.claim] = value;
    }
  } catch (error) {
    if (error instanceof LimitExceeded) return limitOutcome(error, index);
    throw error;
  }
  policy(out);
  // What is released is stored with the account: it keeps to the same bounds (constants and lookups could grow it).
  const released = exceededClaimBound(out);
  if (released) return limitOutcome(released, null);
  return { ok: true, claims: out };
}

function limitOutcome(error: LimitExceeded, ruleIndex: number | null): MappingOutcome {
  return { ok: false, code: error.code, ruleIndex, requirement: error.limit, error: error.message };
}

function refusal(rule: RequireRule, index: number): Extract<MappingOutcome, { ok: false }> {
  return Object.freeze({
    ok: false as const,
    code: 'mapping_rejected' as const,
    ruleIndex: index,
    requirement: rule.name ?? rule.require,
    ...(rule.message === undefined ? {} : { message: rule.message }),
  });
}
