import type { DPoPOptions, DPoPRequest, ResolvedDPoPOptions } from './dpop.ts';

/**
 * The claims of a Concord access token (RFC 9068) once verified. `iss`, `aud`, `exp` and the
 * header `typ` have been checked; `sub`, `client_id`, `jti` are known to be strings.
 */
export interface ConcordAccessTokenClaims {
  /** Concord's issuer URL, exactly as configured. */
  readonly iss: string;
  /** The account: `{participantId}:{upstream sub}`, or a pairwise hash of it for pairwise clients. */
  readonly sub: string;
  /** Contains (or is) the audience the verifier was configured with. */
  readonly aud: string | readonly string[];
  /** The OAuth client the token was issued to. */
  readonly client_id: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** Unique token id. */
  readonly jti: string;
  /** Space-separated granted scopes. Absent when none were granted. */
  readonly scope?: string;
  readonly nbf?: number;
  readonly auth_time?: number;
  readonly acr?: string;
  readonly amr?: readonly string[];
  /** RFC 9449 §6.1: a DPoP-bound token's key thumbprint, `jkt`; checked against the proof. */
  readonly cnf?: { readonly jkt?: string; readonly [member: string]: unknown };
  /** Any other claim, unchecked. */
  readonly [claim: string]: unknown;
}

/**
 * Asymmetric JWS algorithms a verifier may accept. `none`, HS256/384/512 (and anything a public
 * key could be abused as a shared secret with) are not representable, and refused at run time too.
 */
export type VerifierAlgorithm =
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'EdDSA'
  | 'Ed25519'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512';

/**
 * What the verifier needs for fetching: the global `fetch` fits. Called with a `redirect: 'manual'`
 * init and an AbortSignal carrying the timeout.
 */
export type FetchLike = (
  url: string,
  init: { method: 'GET'; headers: Headers; redirect: 'manual'; signal: AbortSignal },
) => Promise<Response>;

export interface VerifierOptions {
  /** Concord's issuer, exactly as in its discovery document and the tokens' `iss`. */
  issuer: string;
  /** This service's audience (a resource indicator); a token must name one of them in `aud`. */
  audience: string | readonly string[];
  /** Scopes every token must carry (each route may ask for more in the middleware). Default none. */
  requiredScopes?: readonly string[];
  /** Accepted `alg` values. Default ES256, EdDSA, RS256, PS256. */
  algorithms?: readonly VerifierAlgorithm[];
  /** Seconds of clock skew tolerated on `exp` and `nbf`. Default 5. */
  clockTolerance?: number;
  /** The JWKS URL; given, discovery is skipped. Default: `jwks_uri` of `{issuer}/.well-known/openid-configuration`. */
  jwksUri?: string | URL;
  /** Milliseconds before a discovery or JWKS request is aborted. Default 5000. */
  timeoutDuration?: number;
  /**
   * Milliseconds after a successful JWKS fetch during which a token with an unknown `kid` is refused
   * without fetching again. Default 30000. Keep it below the delay between Concord publishing a key
   * and signing with it (15 minutes by default).
   */
  cooldownDuration?: number;
  /** Milliseconds the fetched JWKS is used before it is fetched again. Default 600000 (10 minutes). */
  cacheMaxAge?: number;
  /**
   * Milliseconds after a failed discovery or JWKS fetch during which no new request is made (tokens
   * needing it are refused with `jwks_unavailable`). Default 1000.
   */
  retryDelay?: number;
  /** Fetch implementation (for proxies, custom agents, tests). Default the global `fetch`. */
  fetch?: FetchLike;
  /**
   * DPoP (RFC 9449): how proofs for DPoP-bound tokens (`cnf.jkt`) are checked. A bound token is
   * always refused without a valid proof; these settings only tune the check.
   */
  dpop?: DPoPOptions;
}

/** Per-call options of a verifier. Create the object once, not per request. */
export interface VerifyCallOptions {
  /** Scopes this call requires, in addition to the verifier's `requiredScopes`. */
  requiredScopes?: readonly string[];
  /**
   * The request's DPoP proof, method and URL, when the token was presented with the `DPoP` scheme
   * (RFC 9449 §7.1). Absent (a Bearer presentation), a DPoP-bound token is refused (`dpop_bound`);
   * present, the token must be bound (`dpop_unbound`) and the proof valid for it.
   */
  dpop?: DPoPRequest;
}

export interface Verifier {
  /** Verifies a compact JWT access token; throws VerifyError on any refusal. */
  (token: string, options?: VerifyCallOptions): Promise<ConcordAccessTokenClaims>;
  /**
   * Fetches discovery and the JWKS now unless cached, so a service can fail its readiness check
   * early instead of refusing the first requests. Throws VerifyError `jwks_unavailable`.
   */
  warmUp(): Promise<void>;
  /** The normalised options in effect. */
  readonly options: Readonly<ResolvedVerifierOptions>;
}

export interface ResolvedVerifierOptions {
  issuer: string;
  audience: readonly string[];
  requiredScopes: readonly string[];
  algorithms: readonly VerifierAlgorithm[];
  clockTolerance: number;
  jwksUri: string | undefined;
  timeoutDuration: number;
  cooldownDuration: number;
  cacheMaxAge: number;
  retryDelay: number;
  dpop: Readonly<ResolvedDPoPOptions>;
}
