import { VERIFY_ERROR_CODES, VerifyError, type VerifyErrorCode } from './errors.ts';
import { scopeList } from './scopes.ts';
import type { ConcordAccessTokenClaims, Verifier, VerifierOptions, VerifyCallOptions } from './types.ts';
import { createVerifier } from './verifier.ts';

/** Options of the Koa and Express middleware. */
export interface BearerMiddlewareOptions {
  /** The `realm` of the WWW-Authenticate challenge. Default "concord". */
  realm?: string;
  /** Scopes this route requires, on top of the verifier's own `requiredScopes`. */
  requiredScopes?: readonly string[];
}

/** What the middleware answers: framework-neutral, applied by koa.ts and express.ts. */
export interface Refusal {
  readonly status: 401 | 403 | 503;
  /** The WWW-Authenticate header value; absent for 503. */
  readonly challenge: string | undefined;
  /** JSON body; undefined when the challenge says it all (no token presented). */
  readonly body: string | undefined;
}

export interface BearerAuthenticator {
  /** Resolves to the claims, or to the refusal to send; rejects only on a bug. */
  authenticate(authorization: string | undefined): Promise<ConcordAccessTokenClaims | Refusal>;
}

// RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const SCHEME = /^Bearer(?: |$)/i;
const QUOTABLE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

export function isRefusal(value: ConcordAccessTokenClaims | Refusal): value is Refusal {
  return value instanceof RefusalImpl;
}

class RefusalImpl implements Refusal {
  readonly status: 401 | 403 | 503;
  readonly challenge: string | undefined;
  readonly body: string | undefined;
  constructor(status: 401 | 403 | 503, challenge: string | undefined, body: string | undefined) {
    this.status = status;
    this.challenge = challenge;
    this.body = body;
  }
}

function errorBody(error: string, description: string): string {
  return JSON.stringify({ error, error_description: description });
}

/**
 * The token handling shared by both middlewares. Every refusal except insufficient_scope is built
 * once here, so a refused request costs no string building.
 */
export function createBearerAuthenticator(
  verifierOrOptions: Verifier | VerifierOptions,
  options: BearerMiddlewareOptions = {},
): BearerAuthenticator {
  const verify = typeof verifierOrOptions === 'function' ? verifierOrOptions : createVerifier(verifierOrOptions);
  const realm = options.realm ?? 'concord';
  if (typeof realm !== 'string' || !QUOTABLE.test(realm)) throw new TypeError('realm must be printable ASCII without " or \\');
  const routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
  const callOptions: VerifyCallOptions | undefined = routeScopes.length > 0 ? Object.freeze({ requiredScopes: routeScopes }) : undefined;

  const base = `Bearer realm="${realm}"`;
  const noToken = new RefusalImpl(401, base, undefined);
  const invalid = new Map<VerifyErrorCode, Refusal>();
  for (const [code, info] of Object.entries(VERIFY_ERROR_CODES) as Array<[VerifyErrorCode, (typeof VERIFY_ERROR_CODES)[VerifyErrorCode]]>) {
    if (info.status === 401) {
      invalid.set(code, new RefusalImpl(401, `${base}, error="invalid_token", error_description="${info.description}"`, errorBody('invalid_token', info.description)));
    }
  }
  const unavailable = new RefusalImpl(503, undefined, errorBody('temporarily_unavailable', VERIFY_ERROR_CODES.jwks_unavailable.description));
  const insufficientDescription = VERIFY_ERROR_CODES.insufficient_scope.description;

  function refusalFor(err: VerifyError): Refusal {
    if (err.status === 401) return invalid.get(err.code)!;
    if (err.status === 503) return unavailable;
    const scope = (err.requiredScopes ?? []).join(' ');
    return new RefusalImpl(
      403,
      `${base}, error="insufficient_scope", error_description="${insufficientDescription}", scope="${scope}"`,
      JSON.stringify({ error: 'insufficient_scope', error_description: insufficientDescription, scope }),
    );
  }

  async function authenticate(authorization: string | undefined): Promise<ConcordAccessTokenClaims | Refusal> {
    // No credentials, or another scheme's: a bare challenge, no error code (RFC 6750 §3.1).
    if (authorization === undefined || !SCHEME.test(authorization)) return noToken;
    const match = BEARER.exec(authorization);
    if (match === null) return invalid.get('malformed')!;
    try {
      return await verify(match[1]!, callOptions);
    } catch (err) {
      if (err instanceof VerifyError) return refusalFor(err);
      throw err;
    }
  }

  return { authenticate };
}
