import { VERIFY_ERROR_CODES, VerifyError, type VerifyErrorCode } from './errors.ts';
import type { DPoPRequest } from './dpop.ts';
import { scopeList } from './scopes.ts';
import type { ConcordAccessTokenClaims, Verifier, VerifierOptions, VerifyCallOptions } from './types.ts';
import { createVerifier } from './verifier.ts';

/** Options of the Koa and Express middleware. */
export interface BearerMiddlewareOptions {
  /** The `realm` of the WWW-Authenticate challenge. Default "concord". */
  realm?: string;
  /** Scopes this route requires, on top of the verifier's own `requiredScopes`. */
  requiredScopes?: readonly string[];
  /**
   * This service's origin as clients address it, e.g. "https://orders.example.org": the DPoP
   * proof's `htu` (RFC 9449 §4.3) must be this origin plus the request's path. Default: from the
   * request (Koa's `ctx.origin`, which follows `app.proxy`; Express's `req.protocol` and Host).
   * Set it behind a proxy that rewrites the Host or the scheme.
   */
  origin?: string;
}

/** The Koa and Express middleware take the same options: Bearer and DPoP tokens alike. */
export type MiddlewareOptions = BearerMiddlewareOptions;

/** What the middleware answers: framework-neutral, applied by koa.ts and express.ts. */
export interface Refusal {
  readonly status: 401 | 403 | 503;
  /** The WWW-Authenticate header value; absent for 503. */
  readonly challenge: string | undefined;
  /** JSON body; undefined when the challenge says it all (no token presented). */
  readonly body: string | undefined;
  /** The `DPoP-Nonce` header to send (RFC 9449 §9), with `use_dpop_nonce`. */
  readonly dpopNonce: string | undefined;
}

/** The parts of a request the middleware reads, gathered by koa.ts and express.ts. */
export interface PresentedRequest {
  /** The Authorization header. */
  authorization: string | undefined;
  /** The DPoP header (several are joined by ", "). */
  dpop: string | undefined;
  method: string;
  /** The origin (scheme://host[:port]) the request reached, unless the `origin` option is set. */
  origin: string;
  /** The path and query, as requested (Koa's originalUrl, Express's originalUrl). */
  path: string;
}

export interface BearerAuthenticator {
  /** Resolves to the claims, or to the refusal to send; rejects only on a bug. */
  authenticate(request: PresentedRequest): Promise<ConcordAccessTokenClaims | Refusal>;
}

// RFC 6750 §2.1 and RFC 9449 §7.1: the scheme, 1*SP, a b64token / token68; schemes are
// case-insensitive (RFC 9110 §11.1).
const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i;
const SCHEME = /^(Bearer|DPoP)(?: |$)/i;
const QUOTABLE = /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/;

type Scheme = 'Bearer' | 'DPoP';

export function isRefusal(value: ConcordAccessTokenClaims | Refusal): value is Refusal {
  return value instanceof RefusalImpl;
}

class RefusalImpl implements Refusal {
  readonly status: 401 | 403 | 503;
  readonly challenge: string | undefined;
  readonly body: string | undefined;
  readonly dpopNonce: string | undefined;
  constructor(status: 401 | 403 | 503, challenge: string | undefined, body: string | undefined, dpopNonce?: string) {
    this.status = status;
    this.challenge = challenge;
    this.body = body;
    this.dpopNonce = dpopNonce;
  }
}

function errorBody(error: string, description: string): string {
  return JSON.stringify({ error, error_description: description });
}

/** The scheme a refusal's challenge names: DPoP for every DPoP error and a bound token shown as Bearer. */
function challengeScheme(presented: Scheme, code: VerifyErrorCode): Scheme {
  if (code === 'dpop_bound' || (VERIFY_ERROR_CODES[code].error !== 'invalid_token' && code.startsWith('dpop_'))) return 'DPoP';
  if (code === 'dpop_unbound') return 'Bearer';
  return presented;
}

/**
 * The token handling shared by both middlewares: `Authorization: Bearer` (RFC 6750) and
 * `Authorization: DPoP` with a `DPoP` proof header (RFC 9449 §7.1). Every refusal except
 * insufficient_scope and use_dpop_nonce is built once here, so a refused request costs no string building.
 */
export function createBearerAuthenticator(
  verifierOrOptions: Verifier | VerifierOptions,
  options: BearerMiddlewareOptions = {},
): BearerAuthenticator {
  const verify = typeof verifierOrOptions === 'function' ? verifierOrOptions : createVerifier(verifierOrOptions);
  const realm = options.realm ?? 'concord';
  if (typeof realm !== 'string' || !QUOTABLE.test(realm)) throw new TypeError('realm must be printable ASCII without " or \\');
  const routeScopes = scopeList(options.requiredScopes, 'requiredScopes');
  let origin: string | undefined;
  if (options.origin !== undefined) {
    const url = URL.parse(options.origin);
    if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new TypeError('origin must be an http(s) URL');
    origin = url.origin;
  }

  const algs = verify.options.dpop.algorithms.join(' ');
  const bases: Record<Scheme, string> = { Bearer: `Bearer realm="${realm}"`, DPoP: `DPoP realm="${realm}"` };
  const challenge = (scheme: Scheme, params: string) => `${bases[scheme]}${params}${scheme === 'DPoP' ? `, algs="${algs}"` : ''}`;
  // No credentials: both schemes this resource accepts, no error code (RFC 6750 §3.1, RFC 9449 §7.1).
  const noToken = new RefusalImpl(401, `${bases.Bearer}, ${challenge('DPoP', '')}`, undefined);
  const invalid: Record<Scheme, Map<VerifyErrorCode, Refusal>> = { Bearer: new Map(), DPoP: new Map() };
  for (const presented of ['Bearer', 'DPoP'] as const) {
    for (const [code, info] of Object.entries(VERIFY_ERROR_CODES) as Array<[VerifyErrorCode, (typeof VERIFY_ERROR_CODES)[VerifyErrorCode]]>) {
      if (info.status !== 401 || info.error === 'use_dpop_nonce') continue;
      const params = `, error="${info.error}", error_description="${info.description}"`;
      invalid[presented].set(code, new RefusalImpl(401, challenge(challengeScheme(presented, code), params), errorBody(info.error, info.description)));
    }
  }
  const unavailable = new RefusalImpl(503, undefined, errorBody('temporarily_unavailable', VERIFY_ERROR_CODES.jwks_unavailable.description));
  const insufficientDescription = VERIFY_ERROR_CODES.insufficient_scope.description;
  const nonceDescription = VERIFY_ERROR_CODES.dpop_nonce_required.description;
  const scopeCall: VerifyCallOptions | undefined = routeScopes.length > 0 ? Object.freeze({ requiredScopes: routeScopes }) : undefined;

  function refusalFor(err: VerifyError, presented: Scheme): Refusal {
    if (err.status === 503) return unavailable;
    if (err.code === 'dpop_nonce_required') {
      return new RefusalImpl(
        401,
        challenge('DPoP', `, error="use_dpop_nonce", error_description="${nonceDescription}"`),
        errorBody('use_dpop_nonce', nonceDescription),
        err.dpopNonce,
      );
    }
    if (err.status === 401) return invalid[presented].get(err.code)!;
    const scope = (err.requiredScopes ?? []).join(' ');
    return new RefusalImpl(
      403,
      challenge(presented, `, error="insufficient_scope", error_description="${insufficientDescription}", scope="${scope}"`),
      JSON.stringify({ error: 'insufficient_scope', error_description: insufficientDescription, scope }),
    );
  }

  async function authenticate(request: PresentedRequest): Promise<ConcordAccessTokenClaims | Refusal> {
    const { authorization } = request;
    // No credentials, or another scheme's: a bare challenge, no error code (RFC 6750 §3.1).
    if (authorization === undefined || !SCHEME.test(authorization)) return noToken;
    const match = CREDENTIALS.exec(authorization);
    const presented: Scheme = /^dpop/i.test(authorization) ? 'DPoP' : 'Bearer';
    if (match === null) return invalid[presented].get('malformed')!;
    let call = scopeCall;
    if (presented === 'DPoP') {
      const dpop: DPoPRequest = { proof: request.dpop, method: request.method, url: (origin ?? request.origin) + request.path };
      call = scopeCall === undefined ? { dpop } : { requiredScopes: routeScopes, dpop };
    }
    try {
      return await verify(match[2]!, call);
    } catch (err) {
      if (err instanceof VerifyError) return refusalFor(err, presented);
      throw err;
    }
  }

  return { authenticate };
}
