import { z } from 'zod';
import { claimNameProblem } from './claims.ts';
import { LIMITS } from './limits.ts';
import type { RegexSpec } from './regex.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type LookupValue = string | number | boolean | (string | number | boolean)[];

/** Sets one claim. Exactly one source: `from`, `value`, `template` or `cel`; `lookup` or `regex` refine `from`. */
export interface ClaimRule {
  claim: string;
  when?: string;
  /** A path into the upstream claims, or several: the first one present is used. */
  from?: string | string[];
  value?: JsonValue;
  template?: string;
  cel?: string;
  lookup?: Record<string, LookupValue>;
  /** What happens to a value the lookup table does not list. Default `drop`. */
  unmatched?: 'drop' | 'keep';
  regex?: RegexSpec;
}

/** Refuses the login unless the expression is true. */
export interface RequireRule {
  require: string;
  /** Shown to the user when the requirement fails. */
  message?: string;
  /** A short id for logs and the dry-run; the expression itself when absent. */
  name?: string;
  when?: string;
}

export type MappingRule = ClaimRule | RequireRule;

export interface MappingConfig {
  /** Upstream claims copied as they are before the rules run; default STANDARD_CLAIMS, `[]` for none. */
  passthrough?: string[];
  /** Keep an email outside the participant's domains, with email_verified forced to false, instead of dropping it. */
  keepForeignEmailUnverified?: boolean;
  rules: MappingRule[];
}

const SOURCES = ['from', 'value', 'template', 'cel'] as const;
const CLAIM_ONLY = ['claim', ...SOURCES, 'lookup', 'unmatched', 'regex'] as const;

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

const RegexSpecSchema = z
  .object({
    pattern: z.string().min(1).describe('RE2 regular expression (linear-time matching): JavaScript syntax without backreferences or lookaround; a code point as \\x{e9}'),
    ignoreCase: z.boolean().optional().describe('Match letters case-insensitively'),
    extract: z.string().optional().describe('On a match, yield this: $1, $<name>, $& are filled in from the match'),
    replace: z.string().optional().describe('Replace every match ($1, $<name>, $&, $$ as in JavaScript)'),
  })
  .strict()
  .refine((r) => r.extract === undefined || r.replace === undefined, { message: 'use either extract or replace, not both', path: ['replace'] });

const RuleObject = z
  .object({
    claim: z.string().optional().describe('The claim this rule sets'),
    when: z.string().optional().describe('CEL condition over `claims`: the rule applies only when true'),
    from: z.union([z.string(), z.array(z.string()).min(1).max(16)]).optional().describe('Source path(s): a.b, a[0], a["x.y"], a[*].b'),
    value: z.json().optional().describe('A constant'),
    template: z.string().optional().describe('Text with {path} placeholders'),
    cel: z.string().optional().describe('CEL expression over `claims`'),
    lookup: z.record(z.string(), z.union([Scalar, z.array(Scalar)])).optional().describe('Maps each source value (or array element)'),
    unmatched: z.enum(['drop', 'keep']).optional().describe('Values the lookup does not list: drop (default) or keep'),
    regex: RegexSpecSchema.optional().describe('Extract from or rewrite the source value with an RE2 pattern'),
    require: z.string().optional().describe('CEL condition the upstream claims must meet, or the login is refused'),
    message: z.string().max(LIMITS.message).optional().describe('Shown to the user when the requirement fails'),
    name: z.string().min(1).max(100).optional().describe('Short id of the requirement'),
  })
  .strict();

type RuleInput = z.output<typeof RuleObject>;

function checkRule(rule: RuleInput, ctx: z.core.$RefinementCtx<RuleInput>): void {
  const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const present = (key: keyof RuleInput) => rule[key] !== undefined;
  if (present('require')) {
    for (const key of CLAIM_ONLY) if (present(key)) issue([key], `a require rule cannot have ${key}`);
    return;
  }
  if (rule.claim === undefined) {
    issue([], 'a rule either sets a claim (claim: name) or states a requirement (require: expression)');
    return;
  }
  const problem = claimNameProblem(rule.claim);
  if (problem) issue(['claim'], problem);
  for (const key of ['message', 'name'] as const) if (present(key)) issue([key], `${key} belongs to require rules`);
  const sources = SOURCES.filter(present);
  if (sources.length === 0) issue([], 'a rule needs one of from, value, template or cel');
  if (sources.length > 1) issue([sources[1]!], `use only one of from, value, template, cel (found ${sources.join(', ')})`);
  for (const key of ['lookup', 'regex'] as const) {
    if (present(key) && !present('from')) issue([key], `${key} transforms a source value: add from`);
  }
  if (present('lookup') && present('regex')) issue(['regex'], 'use either lookup or regex in one rule');
  if (present('unmatched') && !present('lookup')) issue(['unmatched'], 'unmatched applies only with lookup');
  if (rule.value === null) issue(['value'], 'a constant cannot be null (leave the claim out of passthrough to drop it)');
  else if (rule.value !== undefined && JSON.stringify(rule.value).length > LIMITS.constantJson) {
    issue(['value'], `a constant has at most ${LIMITS.constantJson} characters as JSON`);
  }
  if (rule.lookup && Object.keys(rule.lookup).length > LIMITS.lookupEntries) {
    issue(['lookup'], `a lookup table has at most ${LIMITS.lookupEntries} entries`);
  }
}

export const MappingRuleSchema: z.ZodType<MappingRule, unknown> = RuleObject.superRefine(checkRule).transform((rule) => rule as MappingRule);

const MappingObject = z
  .object({
    passthrough: z.array(z.string()).max(LIMITS.rules).optional().describe('Upstream claims copied as they are; default: the standard OIDC claims'),
    keepForeignEmailUnverified: z.boolean().optional().describe('Keep an email outside the participant\'s domains, as unverified'),
    rules: z.array(MappingRuleSchema).max(LIMITS.rules).default([]).describe(
      'Rules, run in order: each sets one claim (claim + from, value, template or cel) or states a requirement (require)',
    ),
  })
  .strict()
  .superRefine((mapping, ctx) => {
    mapping.passthrough?.forEach((name, i) => {
      const problem = claimNameProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', path: ['passthrough', i], message: problem });
    });
  });

/**
 * A participant's mapping: `{ passthrough?, keepForeignEmailUnverified?, rules }`, or the rules alone as a
 * list. Checks shape and claim names; expressions and patterns are checked by compileMapping.
 */
export const MappingSchema: z.ZodType<MappingConfig, unknown> = z.preprocess(
  (input) => (Array.isArray(input) ? { rules: input } : input),
  MappingObject,
);
