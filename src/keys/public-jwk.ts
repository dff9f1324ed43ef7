import type { JWK } from 'jose';

/** The members of a JWK that are public (RFC 7517 4; RFC 7518 6.2.1, 6.3.1; RFC 8037 2). */
const PUBLIC_MEMBERS = ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'] as const;

/** A JWK without its private members (`d`, `p`, `q`, `dp`, `dq`, `qi`) or `key_ops`: what a JWKS publishes. */
export function publicJwk(jwk: JWK): JWK {
  const out: Record<string, unknown> = {};
  for (const member of PUBLIC_MEMBERS) if (jwk[member] !== undefined) out[member] = jwk[member];
  return out as JWK;
}
