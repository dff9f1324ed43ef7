/**
 * Claim mapping: parse, validate, compile once, evaluate. The same compiled `apply` serves real logins
 * and the admin dry-run.
 */
export { MappingSchema, MappingRuleSchema } from './schema.ts';
export type { MappingConfig, MappingRule, ClaimRule, RequireRule, JsonValue, LookupValue } from './schema.ts';
export type { RegexSpec } from './regex.ts';
export { compileMapping } from './compile.ts';
export type { CompiledMapping, MappingContext, MappingOutcome } from './compile.ts';
export { MappingError } from './errors.ts';
export type { MappingIssue } from './errors.ts';
export { RESERVED_CLAIMS, STANDARD_CLAIMS } from './claims.ts';
export { LIMITS as MAPPING_LIMITS } from './limits.ts';
export { MAPPING_LIMIT_CODES, type MappingLimitCode } from './budget.ts';
export { exceededClaimBound, DEFAULT_CLAIMS_BOUNDS, type ClaimsBounds } from './claims-bounds.ts';
