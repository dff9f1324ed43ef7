import { LimitExceeded } from './budget.ts';
import { LIMITS } from './limits.ts';

export interface ClaimsBounds {
  /** Levels of nesting below the claims object (a string in an array in a claim is at depth 2). */
  depth: number;
  /** Entries of one array or keys of one object. */
  list: number;
  /** Characters (UTF-16 code units) of one string, key or value. */
  string: number;
  /** Approximate size of the claims as JSON, in characters. */
  bytes: number;
}

export const DEFAULT_CLAIMS_BOUNDS: ClaimsBounds = {
  depth: LIMITS.claimsDepth,
  list: LIMITS.claimList,
  string: LIMITS.claimString,
  bytes: LIMITS.claimsBytes,
};

/**
 * Checks a claims object (as an upstream sent it, or as Concord stored it) against the bounds, and
 * returns the first limit it exceeds, or undefined. Linear in the input and stops at the first
 * excess: a 3,000-level nesting is refused at level depth+1, never walked (or recursed) to the bottom.
 * Values JSON cannot hold (functions, symbols) count as nothing; numbers, booleans and null as 8.
 */
export function exceededClaimBound(claims: unknown, bounds: ClaimsBounds = DEFAULT_CLAIMS_BOUNDS): LimitExceeded | undefined {
  let size = 0;
  const visit = (value: unknown, depth: number, where: string): LimitExceeded | undefined => {
    if (typeof value === 'string') {
      if (value.length > bounds.string) return new LimitExceeded('claims_too_large', `claim strings <= ${bounds.string} characters`, `${where} is a string of ${value.length} characters`);
      size += value.length + 2;
    } else if (value !== null && typeof value === 'object') {
      if (depth >= bounds.depth) return new LimitExceeded('claims_too_deep', `claims nesting <= ${bounds.depth}`, `${where} nests deeper than ${bounds.depth} levels`);
      const entries = Array.isArray(value) ? value : Object.keys(value);
      if (entries.length > bounds.list) {
        return new LimitExceeded('claim_list_too_long', `claim arrays and objects <= ${bounds.list} entries`, `${where} has ${entries.length} entries`);
      }
      size += 2;
      if (Array.isArray(value)) {
        for (const element of value) {
          const problem = visit(element, depth + 1, where);
          if (problem) return problem;
          size += 1;
        }
      } else {
        for (const key of entries as string[]) {
          if (key.length > bounds.string) return new LimitExceeded('claims_too_large', `claim strings <= ${bounds.string} characters`, `${where} has a key of ${key.length} characters`);
          size += key.length + 4;
          const problem = visit((value as Record<string, unknown>)[key], depth + 1, where);
          if (problem) return problem;
        }
      }
    } else {
      size += 8;
    }
    if (size > bounds.bytes) return new LimitExceeded('claims_too_large', `claims <= ${bounds.bytes} bytes as JSON`, `the claims are larger than ${bounds.bytes} bytes`);
    return undefined;
  };
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
  for (const name of Object.keys(claims)) {
    const problem = visit((claims as Record<string, unknown>)[name], 0, safeName(name));
    if (problem) return problem;
  }
  return undefined;
}

/** A claim name as it may appear in a log line: an upstream chooses it. */
const safeName = (name: string) => (/^[\w.:-]{1,64}$/.test(name) ? `claim "${name}"` : 'a claim');
