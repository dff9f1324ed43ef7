import { ConcordError } from '../errors.ts';
import { compileMapping, MappingError, type CompiledMapping } from '../mapping/index.ts';

/** Whether a console sign-in's claims make an admin: `allowed`, or refused with why (for the log). */
export type AllowDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * `console.allow`: a CEL expression over the claims Concord released to the console. Compiled as a
 * mapping `require` rule, so it runs in the mapping's CEL environment with its cost limits, and an
 * expression that fails (a missing claim, a type error) refuses rather than allows.
 * Throws ConcordError `console_allow_invalid` at start-up when it does not compile.
 */
export function allowPolicy(source: string | undefined): (claims: Record<string, unknown>) => AllowDecision {
  if (source === undefined) return () => ({ allowed: false, reason: 'console.allow is not set: only the admin token signs in' });
  let compiled: CompiledMapping;
  try {
    compiled = compileMapping({ passthrough: [], rules: [{ require: source, name: 'console.allow' }] }, { participantId: 'console', domains: [] });
  } catch (error) {
    const detail = error instanceof MappingError ? error.issues.map((i) => i.message).join('; ') : (error as Error).message;
    throw new ConcordError('console_allow_invalid', `console.allow: ${detail}`);
  }
  return (claims) => {
    const outcome = compiled.apply(claims);
    if (outcome.ok) return { allowed: true };
    return { allowed: false, reason: outcome.error ?? outcome.code };
  };
}
