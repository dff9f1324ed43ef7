import { errors } from 'jose';

/**
 * Why a token was refused. Stable: programs and tests compare `code`, never the message.
 * Every code but `insufficient_scope` and `jwks_unavailable` means "this token is not acceptable".
 */
export type VerifyErrorCode =
  | 'malformed'
  | 'bad_signature'
  | 'alg_not_allowed'
  | 'unknown_key'
  | 'wrong_type'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'expired'
  | 'not_yet_valid'
  | 'insufficient_scope'
  | 'jwks_unavailable'
  | 'dpop_bound'
  | 'dpop_unbound'
  | 'dpop_proof_missing'
  | 'dpop_proof_invalid'
  | 'dpop_proof_mismatch'
  | 'dpop_proof_stale'
  | 'dpop_proof_replayed'
  | 'dpop_nonce_required';

/**
 * The OAuth error code each refusal is answered with: RFC 6750 §3.1, RFC 9449 §7.1 and §9
 * (`temporarily_unavailable` for a 503, where the fault is ours).
 */
export type OAuthErrorCode = 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce' | 'temporarily_unavailable';

/** The HTTP status each code maps to (RFC 6750 §3.1; 503 when the fault is ours, not the token's). */
export type VerifyErrorStatus = 401 | 403 | 503;

interface CodeInfo {
  readonly status: VerifyErrorStatus;
  readonly error: OAuthErrorCode;
  /** Fixed, safe to show to the API client; contains no `"` or `\` (RFC 6750 error_description). */
  readonly description: string;
}

export const VERIFY_ERROR_CODES: Readonly<Record<VerifyErrorCode, CodeInfo>> = Object.freeze({
  malformed: { status: 401, error: 'invalid_token', description: 'the access token is malformed or lacks a required claim' },
  bad_signature: { status: 401, error: 'invalid_token', description: 'the access token signature is invalid' },
  alg_not_allowed: { status: 401, error: 'invalid_token', description: 'the access token is signed with an algorithm that is not allowed' },
  unknown_key: { status: 401, error: 'invalid_token', description: 'the access token is signed with an unknown key' },
  wrong_type: { status: 401, error: 'invalid_token', description: 'the token is not an access token' },
  wrong_issuer: { status: 401, error: 'invalid_token', description: 'the access token was issued by another issuer' },
  wrong_audience: { status: 401, error: 'invalid_token', description: 'the access token is meant for another audience' },
  expired: { status: 401, error: 'invalid_token', description: 'the access token has expired' },
  not_yet_valid: { status: 401, error: 'invalid_token', description: 'the access token is not valid yet' },
  insufficient_scope: { status: 403, error: 'insufficient_scope', description: 'the access token lacks a required scope' },
  jwks_unavailable: { status: 503, error: 'temporarily_unavailable', description: 'the keys to verify the access token cannot be fetched right now' },
  dpop_bound: { status: 401, error: 'invalid_token', description: 'the access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof' },
  dpop_unbound: { status: 401, error: 'invalid_token', description: 'the access token is not DPoP-bound: present it as a Bearer token' },
  dpop_proof_missing: { status: 401, error: 'invalid_dpop_proof', description: 'a DPoP proof is required: send exactly one DPoP header' },
  dpop_proof_invalid: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof is malformed, not signed by its own public key, or uses an algorithm that is not allowed' },
  dpop_proof_mismatch: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof is not for this request, this access token or the key this access token is bound to' },
  dpop_proof_stale: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof was not issued recently enough' },
  dpop_proof_replayed: { status: 401, error: 'invalid_dpop_proof', description: 'the DPoP proof has been used before' },
  dpop_nonce_required: { status: 401, error: 'use_dpop_nonce', description: 'the DPoP proof must carry the nonce from the DPoP-Nonce header' },
} satisfies Record<VerifyErrorCode, CodeInfo>);

export interface VerifyErrorOptions {
  cause?: unknown;
  /** The claim or header parameter at fault, when one is. */
  claim?: string;
  /** For `insufficient_scope`: every scope the resource requires. */
  requiredScopes?: readonly string[];
  /** For `dpop_nonce_required`: the nonce the client must put in its next proof (RFC 9449 §9). */
  dpopNonce?: string;
}

/**
 * The one error class of `concord-verify`: `code` says why (the DPoP codes say which RFC 9449 §4.3
 * check failed; `claim` names the claim or header parameter). `message` is the fixed description of the code, safe to
 * show; the underlying detail (a jose error, a network error) is in `cause`, for logs only.
 */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  readonly status: VerifyErrorStatus;
  /** The OAuth error code of the answer: `error="..."` in WWW-Authenticate and the JSON body. */
  readonly error: OAuthErrorCode;
  /** Always true: `message` never carries token content or internal detail. */
  readonly expose = true;
  readonly claim: string | undefined;
  readonly requiredScopes: readonly string[] | undefined;
  /** For `dpop_nonce_required`: send it as the `DPoP-Nonce` response header. */
  readonly dpopNonce: string | undefined;

  constructor(code: VerifyErrorCode, options: VerifyErrorOptions = {}) {
    const info = VERIFY_ERROR_CODES[code];
    super(info.description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VerifyError';
    this.code = code;
    this.status = info.status;
    this.error = info.error;
    this.dpopNonce = options.dpopNonce;
    this.claim = options.claim;
    this.requiredScopes = options.requiredScopes;
  }
}

export function isVerifyError(value: unknown): value is VerifyError {
  return value instanceof VerifyError;
}

function claimError(err: errors.JWTClaimValidationFailed): VerifyError {
  const { claim, reason } = err;
  // A missing required claim, or one of the wrong type, is a malformed token whatever the claim.
  if (reason === 'missing' || reason === 'invalid') return new VerifyError('malformed', { cause: err, claim });
  switch (claim) {
    case 'typ':
      return new VerifyError('wrong_type', { cause: err, claim });
    case 'iss':
      return new VerifyError('wrong_issuer', { cause: err, claim });
    case 'aud':
      return new VerifyError('wrong_audience', { cause: err, claim });
    case 'nbf':
      return new VerifyError('not_yet_valid', { cause: err, claim });
    default:
      return new VerifyError('malformed', { cause: err, claim });
  }
}

/**
 * Maps what `jose.jwtVerify` throws to a VerifyError. Key-resolution failures arrive already
 * mapped (see keys.ts). Anything else is not a verdict on the token but a bug: returned unchanged.
 */
export function toVerifyError(err: unknown): unknown {
  if (err instanceof VerifyError) return err;
  if (err instanceof errors.JWTExpired) return new VerifyError('expired', { cause: err, claim: err.claim });
  if (err instanceof errors.JWTClaimValidationFailed) return claimError(err);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new VerifyError('bad_signature', { cause: err });
  if (err instanceof errors.JOSEAlgNotAllowed) return new VerifyError('alg_not_allowed', { cause: err });
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new VerifyError('unknown_key', { cause: err });
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new VerifyError('malformed', { cause: err });
  // An "alg" jose cannot verify with the resolved key: the token does not fit Concord's keys.
  if (err instanceof errors.JOSENotSupported) return new VerifyError('alg_not_allowed', { cause: err });
  return err;
}
