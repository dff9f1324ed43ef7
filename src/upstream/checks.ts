import { timingSafeEqual } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { UpstreamError, clip, oauthError } from './errors.ts';
import type { CallbackInput, PendingOidcLogin } from './types.ts';

/**
 * The checks of an upstream callback and of its ID token that Concord makes itself, one per
 * function, in the order completeLogin runs them. openid-client repeats the callback checks and
 * makes the rest of the ID token checks (see oidc.ts); these run first so each failure gets its
 * own stable code, and cover what openid-client leaves to the caller.
 */

/** Seconds a clock may be ahead: same tolerance openid-client applies to exp. */
export const CLOCK_TOLERANCE_S = 30;

/** The parameters an authorization response names in the callback. */
const RESPONSE_PARAMETERS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri', 'id_token', 'access_token', 'response'];

/**
 * The authorization response's parameters: the query of a GET (`response_mode=query`), the form of
 * a POST (`form_post`), whichever the upstream used (some ignore `response_mode`), but never a mix of
 * the two, so nothing can be slipped in beside a posted response.
 */
export function responseParameters(callback: CallbackInput, participantId: string): URLSearchParams {
  if (callback.method === 'GET') return callback.query;
  if (RESPONSE_PARAMETERS.some((name) => callback.query.has(name))) {
    throw new UpstreamError('callback_invalid', 'a posted callback also carries response parameters in its query string', { participantId });
  }
  return callback.body;
}

export function single(params: URLSearchParams, name: string): string | undefined | null {
  const values = params.getAll(name);
  if (values.length > 1) return null; // present more than once: never acceptable
  return values[0];
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function checkPending(pending: unknown, participantId: string): asserts pending is PendingOidcLogin {
  const p = pending as PendingOidcLogin | null | undefined;
  const ok =
    p !== null &&
    typeof p === 'object' &&
    p.protocol === 'oidc' &&
    typeof p.state === 'string' && p.state.length > 0 &&
    typeof p.nonce === 'string' && p.nonce.length > 0 &&
    typeof p.codeVerifier === 'string' && p.codeVerifier.length >= 43 &&
    typeof p.redirectUri === 'string';
  if (!ok) throw new UpstreamError('state_mismatch', 'no usable pending login for this callback', { participantId });
}

/** The `state` echoed by the upstream is the one this login sent (CSRF, login swapping). */
export function checkState(params: URLSearchParams, pending: PendingOidcLogin, participantId: string): void {
  const state = single(params, 'state');
  if (state === null) throw new UpstreamError('callback_invalid', 'callback carries state more than once', { participantId });
  if (state === undefined) throw new UpstreamError('state_mismatch', 'callback carries no state', { participantId });
  if (!sameString(state, pending.state)) throw new UpstreamError('state_mismatch', 'callback state does not match the pending login', { participantId });
}

/**
 * RFC 9207: a callback `iss` must be the upstream's issuer, always; it must be present when the
 * upstream advertises authorization_response_iss_parameter_supported (mix-up defence). Runs before
 * the error check, so an error response from the wrong IdP is refused as such too.
 */
export function checkCallbackIssuer(params: URLSearchParams, issuer: string, issAdvertised: boolean, participantId: string): void {
  const iss = single(params, 'iss');
  if (iss === null) throw new UpstreamError('callback_invalid', 'callback carries iss more than once', { participantId });
  if (iss === undefined) {
    if (issAdvertised) throw new UpstreamError('iss_mismatch', 'callback carries no iss although the upstream advertises it (RFC 9207)', { participantId });
    return;
  }
  if (iss !== issuer) throw new UpstreamError('iss_mismatch', `callback iss ${clip(iss, 100)} is not the upstream issuer ${issuer}`, { participantId });
}

/**
 * The upstream answered with `error=` (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6): the user cancelled
 * (`access_denied`), its policy needs an interaction (`login_required`, ...), or Concord's
 * registration there is wrong (`unauthorized_client`, ...): see errors.ts oauthError.
 */
export function checkErrorResponse(params: URLSearchParams, participantId: string): void {
  const error = params.get('error');
  if (error === null) return;
  throw oauthError('the authorization endpoint', error, params.get('error_description'), participantId);
}

/** Exactly one authorization code, and no implicit/hybrid or JARM parameters we did not ask for (token injection). */
export function checkCode(params: URLSearchParams, participantId: string): void {
  const code = single(params, 'code');
  if (code === null) throw new UpstreamError('callback_invalid', 'callback carries code more than once', { participantId });
  if (!code) throw new UpstreamError('upstream_misconfigured', 'callback carries neither code nor error: not an authorization code response', { participantId });
  for (const unexpected of ['id_token', 'access_token', 'response']) {
    if (params.has(unexpected)) throw new UpstreamError('callback_invalid', `callback carries an unexpected ${unexpected} parameter`, { participantId });
  }
}

/** The ID token's `alg` is on this participant's allow-list (openid-client checked it too; this is the last word). */
export function checkIdTokenAlgorithm(idToken: string, allowed: readonly string[], participantId: string): void {
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(idToken).alg;
  } catch (cause) {
    throw new UpstreamError('token_invalid', 'ID token header cannot be decoded', { cause, participantId });
  }
  if (typeof alg !== 'string' || !allowed.includes(alg)) {
    throw new UpstreamError('token_invalid', `ID token alg ${clip(alg, 20)} is not allowed (${allowed.join(' ')})`, { participantId });
  }
}

/** `iat` is not in the future (openid-client only checks its type). */
export function checkIssuedAt(claims: Record<string, unknown>, participantId: string, now = Math.floor(Date.now() / 1000)): void {
  const iat = claims.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new UpstreamError('token_invalid', 'ID token has no numeric iat', { participantId });
  if (iat > now + CLOCK_TOLERANCE_S) throw new UpstreamError('token_invalid', 'ID token iat is in the future', { participantId });
}

/** When `azp` is present it names us (OIDC Core 3.1.3.7 #5); openid-client checks it only for multiple audiences. */
export function checkAuthorizedParty(claims: Record<string, unknown>, clientId: string, participantId: string): void {
  if (claims.azp !== undefined && claims.azp !== clientId) {
    throw new UpstreamError('token_invalid', 'ID token azp is not our client_id', { participantId });
  }
}

/** A usable subject: a non-empty string of at most 255 characters (OIDC Core 2). */
export function checkSubject(claims: Record<string, unknown>, participantId: string): string {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255) {
    throw new UpstreamError('token_invalid', 'ID token sub is missing, empty or longer than 255 characters', { participantId });
  }
  return sub;
}
