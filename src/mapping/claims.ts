import { LIMITS } from './limits.ts';

/**
 * Claims Concord itself asserts about the token or the session. A mapping that could set them
 * could forge identity (`sub`, `idp`), replay protection (`nonce`, `jti`) or token binding.
 * Beyond the protocol list: `s_hash`, `cnf`, `client_id`, `scope`, `act`, `may_act`, `sub_jwk` and the
 * aggregated/distributed-claims pointers, which would make a relying party fetch claims elsewhere.
 * `acr` and `amr` come only from the upstream's verified ID token (through the session), never from
 * a rule or from unsigned userinfo.
 */
export const RESERVED_CLAIMS: readonly string[] = Object.freeze([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'auth_time', 'nonce', 'azp', 'sid', 'at_hash', 'c_hash', 'idp',
  's_hash', 'cnf', 'client_id', 'scope', 'act', 'may_act', 'sub_jwk', '_claim_names', '_claim_sources', 'acr', 'amr',
]);

/**
 * Claims copied from the upstream as they are unless the mapping says otherwise (`passthrough`):
 * every Standard Claim of OpenID Connect Core 1.0 section 5.1 but `sub` (Concord's own), and `groups`.
 */
export const STANDARD_CLAIMS: readonly string[] = Object.freeze([
  'name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile',
  'picture', 'website', 'email', 'email_verified', 'gender', 'birthdate', 'zoneinfo', 'locale',
  'phone_number', 'phone_number_verified', 'address', 'updated_at', 'groups',
]);

const RESERVED = new Set(RESERVED_CLAIMS);
// Names that would reach Object.prototype when used as a property key.
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Why `name` cannot be the target of a rule or a passthrough entry, or undefined when it can. */
export function claimNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a claim name cannot be empty';
  if (name.length > LIMITS.claimName) return `a claim name has at most ${LIMITS.claimName} characters`;
  // Case-insensitive so `SUB` or `Iss` cannot be passed off to a lenient reader as the real thing.
  if (RESERVED.has(name) || RESERVED.has(name.toLowerCase())) return `"${name}" is set by Concord and cannot be set by a mapping`;
  if (UNSAFE_KEYS.has(name)) return `"${name}" cannot be used as a claim name`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a claim name cannot contain control characters';
  return undefined;
}
