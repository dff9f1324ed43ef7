import { jwtVerify, type JWTVerifyOptions } from 'jose';
import { resolveDPoPOptions, verifyDPoPProof } from './dpop.ts';
import { toVerifyError, VerifyError } from './errors.ts';
import { createKeySource } from './keys.ts';
import { hasScopes, scopeList } from './scopes.ts';
import type {
  ConcordAccessTokenClaims,
  ResolvedVerifierOptions,
  Verifier,
  VerifierAlgorithm,
  VerifierOptions,
  VerifyCallOptions,
} from './types.ts';

export const DEFAULT_ALGORITHMS: readonly VerifierAlgorithm[] = Object.freeze(['ES256', 'EdDSA', 'RS256', 'PS256']);

const ACCEPTABLE_ALGORITHMS: ReadonlySet<string> = new Set<VerifierAlgorithm>([
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
]);

/** RFC 9068 §2.2: required in every JWT access token (iss and aud are added by the checks themselves). */
const REQUIRED_CLAIMS = Object.freeze(['exp', 'iat', 'sub', 'jti', 'client_id']);

/**
 * A verifier of Concord access tokens. Create one per service (per audience) at start-up and keep
 * it: it holds the cached discovery result and keys.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const resolved = resolveOptions(options);
  const keys = createKeySource({ ...resolved, fetch: options.fetch });
  const { requiredScopes } = resolved;

  // Built once: jose gets the same options object on every call.
  const joseOptions: JWTVerifyOptions = Object.freeze({
    typ: 'at+jwt',
    issuer: resolved.issuer,
    audience: [...resolved.audience],
    algorithms: [...resolved.algorithms],
    clockTolerance: resolved.clockTolerance,
    requiredClaims: [...REQUIRED_CLAIMS],
  });

  async function verify(token: string, call?: VerifyCallOptions): Promise<ConcordAccessTokenClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, joseOptions));
    } catch (err) {
      throw toVerifyError(err);
    }
    // jose checked presence; the types of the claims it does not compare are checked here.
    if (typeof payload.sub !== 'string') throw new VerifyError('malformed', { claim: 'sub' });
    if (typeof payload.client_id !== 'string') throw new VerifyError('malformed', { claim: 'client_id' });
    if (typeof payload.jti !== 'string') throw new VerifyError('malformed', { claim: 'jti' });
    // Most tokens are bearer tokens presented as such: no extra await for them.
    if (payload.cnf !== undefined || call?.dpop !== undefined || resolved.dpop.required) await checkBinding(token, payload.cnf, call?.dpop);
    const scope = payload.scope;
    if (scope !== undefined && typeof scope !== 'string') throw new VerifyError('malformed', { claim: 'scope' });
    if (!hasScopes(scope, requiredScopes)) {
      throw new VerifyError('insufficient_scope', { claim: 'scope', requiredScopes });
    }
    const extra = call?.requiredScopes;
    if (extra !== undefined && !hasScopes(scope, extra)) {
      throw new VerifyError('insufficient_scope', { claim: 'scope', requiredScopes: union(requiredScopes, extra) });
    }
    return payload as ConcordAccessTokenClaims;
  }

  /** RFC 9449 §7.1: a bound token only with a valid proof for it; an unbound one only as Bearer. */
  async function checkBinding(token: string, cnf: unknown, dpop: VerifyCallOptions['dpop']): Promise<void> {
    let jkt: string | undefined;
    if (cnf !== undefined) {
      if (typeof cnf !== 'object' || cnf === null) throw new VerifyError('malformed', { claim: 'cnf' });
      const value = (cnf as { jkt?: unknown }).jkt;
      if (value !== undefined && (typeof value !== 'string' || value === '')) throw new VerifyError('malformed', { claim: 'cnf' });
      jkt = value as string | undefined;
    }
    if (jkt === undefined) {
      if (dpop !== undefined || resolved.dpop.required) throw new VerifyError('dpop_unbound', { claim: 'cnf' });
      return;
    }
    if (dpop === undefined) throw new VerifyError('dpop_bound', { claim: 'cnf' });
    await verifyDPoPProof(dpop, resolved.dpop, { accessToken: token, jkt });
  }

  return Object.defineProperties(verify as Verifier, {
    warmUp: { value: keys.warmUp, enumerable: true },
    options: { value: resolved, enumerable: true },
  });
}

function union(a: readonly string[], b: readonly string[]): readonly string[] {
  return a.length === 0 ? b : [...new Set([...a, ...b])];
}

function nonNegative(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0)) throw new TypeError(`${option} must be a non-negative number`);
  return value;
}

function resolveOptions(options: VerifierOptions): Readonly<ResolvedVerifierOptions> {
  if (typeof options !== 'object' || options === null) throw new TypeError('createVerifier: options are required');
  const { issuer, audience } = options;
  if (typeof issuer !== 'string' || URL.parse(issuer) === null) throw new TypeError('issuer must be a URL string');

  const audiences = typeof audience === 'string' ? [audience] : audience;
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('audience must be a non-empty string or a non-empty array of them');
  }

  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new TypeError('algorithms must be a non-empty array');
  for (const alg of algorithms) {
    if (!ACCEPTABLE_ALGORITHMS.has(alg)) {
      throw new TypeError(`algorithm ${JSON.stringify(alg)} is not allowed: only asymmetric JWS algorithms (never none or HS*)`);
    }
  }

  const timeoutDuration = nonNegative(options.timeoutDuration, 5000, 'timeoutDuration');
  if (!Number.isInteger(timeoutDuration)) throw new TypeError('timeoutDuration must be an integer');

  const jwksUri = options.jwksUri === undefined ? undefined : String(options.jwksUri);

  return Object.freeze({
    issuer,
    audience: Object.freeze([...audiences]),
    requiredScopes: scopeList(options.requiredScopes, 'requiredScopes'),
    algorithms: Object.freeze([...new Set(algorithms)]),
    clockTolerance: nonNegative(options.clockTolerance, 5, 'clockTolerance'),
    jwksUri,
    timeoutDuration,
    cooldownDuration: nonNegative(options.cooldownDuration, 30_000, 'cooldownDuration'),
    cacheMaxAge: nonNegative(options.cacheMaxAge, 600_000, 'cacheMaxAge'),
    retryDelay: nonNegative(options.retryDelay, 1000, 'retryDelay'),
    dpop: resolveDPoPOptions(options.dpop, ACCEPTABLE_ALGORITHMS),
  });
}
