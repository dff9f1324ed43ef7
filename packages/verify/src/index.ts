/**
 * concord-verify: verify Concord access tokens (RFC 9068 JWTs) offline against Concord's JWKS,
 * and the DPoP proofs (RFC 9449) of DPoP-bound ones.
 * Depends on jose and node built-ins only; the Koa and Express middleware need neither installed.
 */
export { createVerifier, DEFAULT_ALGORITHMS } from './verifier.ts';
export { VerifyError, isVerifyError, VERIFY_ERROR_CODES } from './errors.ts';
export type { OAuthErrorCode, VerifyErrorCode, VerifyErrorStatus } from './errors.ts';
export { accessTokenHash, createMemoryReplayCache, DEFAULT_DPOP_ALGORITHMS, normaliseHtu, resolveDPoPOptions, verifyDPoPProof } from './dpop.ts';
export type { DPoPNonceSource, DPoPOptions, DPoPProofResult, DPoPReplayCache, DPoPRequest, ResolvedDPoPOptions } from './dpop.ts';
export { hasScope, hasScopes } from './scopes.ts';
export { concordKoa } from './koa.ts';
export type { ConcordKoaMiddleware, ConcordState, KoaContextLike } from './koa.ts';
export { concordExpress } from './express.ts';
export type { ConcordExpressMiddleware, ExpressRequestLike, ExpressResponseLike } from './express.ts';
export type { BearerMiddlewareOptions, MiddlewareOptions } from './http.ts';
export type {
  ConcordAccessTokenClaims,
  FetchLike,
  ResolvedVerifierOptions,
  Verifier,
  VerifierAlgorithm,
  VerifierOptions,
  VerifyCallOptions,
} from './types.ts';
