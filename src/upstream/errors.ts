import * as oidc from 'openid-client';
import { ConcordError } from '../errors.ts';

/**
 * Stable codes of every way an upstream login can fail. They are metric labels (login outcomes)
 * and the routes map their kind to pages: never rename one.
 */
export type UpstreamErrorCode =
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'upstream_misconfigured'
  | 'state_mismatch'
  | 'iss_mismatch'
  | 'callback_invalid'
  | 'token_invalid'
  | 'userinfo_invalid'
  | 'discovery_invalid'
  /** A SAML Response (or logout message) failed a check; `check` names which (SAML_CHECKS). */
  | 'assertion_invalid';

/**
 * What kind of failure a code is; it decides what the user is shown, whether the circuit breaker
 * counts it, and whether the health check calls the participant down or misconfigured.
 *
 *   unavailable    the IdP did not answer (refused connection, timeout, 5xx): transient, the only
 *                  kind the circuit breaker counts;
 *   misconfigured  the IdP answered, but it or its registration cannot work with Concord (issuer
 *                  mismatch, no acceptable algorithm, client authentication refused, an answer
 *                  Concord cannot use): permanent until someone fixes the configuration;
 *   refused        the IdP answered an OAuth error about this login (the user cancelled, its policy
 *                  said no, the code expired);
 *   invalid        the answer failed a security check (signature, issuer, audience, nonce, iss,
 *                  a tampered callback): never relaxed;
 *   expired        the callback belongs to no pending login of this browser (state unknown or used).
 */
export type UpstreamErrorKind = 'unavailable' | 'misconfigured' | 'refused' | 'invalid' | 'expired';

const CODES: Record<UpstreamErrorCode, { status: number; kind: UpstreamErrorKind }> = {
  upstream_unreachable: { status: 502, kind: 'unavailable' },
  upstream_timeout: { status: 504, kind: 'unavailable' },
  upstream_error: { status: 502, kind: 'refused' },
  upstream_misconfigured: { status: 502, kind: 'misconfigured' },
  discovery_invalid: { status: 502, kind: 'misconfigured' },
  state_mismatch: { status: 400, kind: 'expired' },
  iss_mismatch: { status: 400, kind: 'invalid' },
  callback_invalid: { status: 400, kind: 'invalid' },
  token_invalid: { status: 502, kind: 'invalid' },
  userinfo_invalid: { status: 502, kind: 'invalid' },
  assertion_invalid: { status: 400, kind: 'invalid' },
};

/**
 * Each check a SAML Response or logout message can fail (saml/checks.ts), in the order they run: the
 * login outcome of an `assertion_invalid` refusal (a metric label and the log line's `outcome`), so
 * each kind of attack or misconfiguration is told apart. Never rename one.
 */
export const SAML_CHECKS = [
  'saml_body_too_large',
  'saml_malformed',
  'saml_doctype',
  'saml_destination',
  'saml_issuer',
  'saml_status',
  'saml_assertion_count',
  'saml_comment',
  'saml_not_encrypted',
  'saml_decryption',
  'saml_algorithm',
  'saml_signature',
  'saml_in_response_to',
  'saml_time',
  'saml_audience',
  'saml_recipient',
  'saml_replay',
  'saml_subject',
] as const;
export type SamlCheck = (typeof SAML_CHECKS)[number];

export const UPSTREAM_ERROR_CODES = Object.keys(CODES) as readonly UpstreamErrorCode[];

export interface UpstreamErrorOptions {
  cause?: unknown;
  participantId?: string;
  /** The OAuth `error` code the upstream sent (`access_denied`, `invalid_client`, ...), when it sent one. */
  upstreamError?: string;
  /** Its `error_description`, clipped: for the log line, never for the user. */
  upstreamErrorDescription?: string;
  /** The participant setting a misconfiguration is about (`upstream.tokenEndpointAuthMethod`, ...), when it is one. */
  setting?: string;
  /** The SAML check that refused the message (with `assertion_invalid`). */
  check?: SamlCheck;
}

/**
 * A failed call to, or a refused answer from, a participant's IdP. `message` is for logs: it may
 * quote what the upstream sent, so it is never shown to the user (`expose: false`).
 */
export class UpstreamError extends ConcordError {
  declare readonly code: UpstreamErrorCode;
  readonly kind: UpstreamErrorKind;
  readonly participantId: string | undefined;
  readonly upstreamError: string | undefined;
  readonly upstreamErrorDescription: string | undefined;
  readonly setting: string | undefined;
  readonly check: SamlCheck | undefined;

  constructor(code: UpstreamErrorCode, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, { status: CODES[code].status, expose: false, cause: options.cause });
    this.kind = CODES[code].kind;
    this.participantId = options.participantId;
    this.upstreamError = options.upstreamError;
    this.upstreamErrorDescription = options.upstreamErrorDescription;
    this.setting = options.setting;
    this.check = options.check;
  }

  /** The login outcome: the SAML check that refused, else the code. */
  get outcome(): UpstreamErrorCode | SamlCheck {
    return this.check ?? this.code;
  }

  /** Only an IdP that did not answer counts toward its circuit breaker or is reported down. */
  get transient(): boolean {
    return this.kind === 'unavailable';
  }

  /** The fields a log line carries: the code, its kind, the upstream's own error and description (never its tokens). */
  logFields(): Record<string, string> {
    return {
      code: this.code,
      kind: this.kind,
      ...(this.check ? { check: this.check } : {}),
      ...(this.upstreamError ? { upstreamError: this.upstreamError } : {}),
      ...(this.upstreamErrorDescription ? { upstreamErrorDescription: this.upstreamErrorDescription } : {}),
    };
  }
}

/** The stage of a login at which an openid-client error was raised; it decides the code. */
export type Stage = 'discovery' | 'token' | 'userinfo';

function* causes(err: unknown): Generator<unknown> {
  const seen = new Set<unknown>();
  let current = err;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    yield current;
    current = (current as { cause?: unknown }).cause;
  }
}

/** Shortens upstream-controlled text before it goes into a message. */
export function clip(text: unknown, max = 200): string {
  const s = String(text ?? '').replace(/[\r\n\t]+/g, ' ');
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** A safe-to-log OAuth error code, or undefined when the upstream sent something odd. */
export function oauthErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\w.-]{1,64}$/.test(value) ? value : undefined;
}

/**
 * OAuth error codes that say Concord's registration at the IdP, or the IdP's support for what
 * Concord asks, is wrong (RFC 6749 4.1.2.1 and 5.2, OIDC Core 3.1.2.6): someone must fix a
 * configuration; retrying cannot help.
 */
const MISCONFIGURATION_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'unsupported_response_type',
  'unsupported_response_mode',
  'invalid_scope',
  'invalid_request',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
]);

/**
 * The UpstreamError for an OAuth error answer (`error`, `error_description`) at the authorization
 * or token endpoint: a misconfiguration (MISCONFIGURATION_ERRORS), or the upstream refusing this
 * login (`access_denied`, `login_required`, `invalid_grant`, ...).
 */
export function oauthError(where: string, error: unknown, description: unknown, participantId: string, cause?: unknown): UpstreamError {
  const upstreamError = oauthErrorCode(error);
  const upstreamErrorDescription = typeof description === 'string' && description ? clip(description) : undefined;
  const code: UpstreamErrorCode = upstreamError && MISCONFIGURATION_ERRORS.has(upstreamError) ? 'upstream_misconfigured' : 'upstream_error';
  return new UpstreamError(code, `${where} answered ${upstreamError ?? '(invalid error code)'}${upstreamErrorDescription ? `: ${upstreamErrorDescription}` : ''}`, {
    participantId,
    ...(cause === undefined ? {} : { cause }),
    ...(upstreamError ? { upstreamError } : {}),
    ...(upstreamErrorDescription ? { upstreamErrorDescription } : {}),
  });
}

/** The HTTP status of the response behind an openid-client error, when there is one. */
function statusOf(err: unknown): number | undefined {
  for (const e of causes(err)) {
    const status = (e as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && status >= 100 && status < 600 && !(e instanceof UpstreamError)) return status;
  }
  return undefined;
}

/**
 * Turns whatever openid-client (or our fetch) threw into one UpstreamError. An UpstreamError
 * anywhere in the cause chain (thrown by our fetch: unreachable, timeout, an answer our checks of
 * its shape refused) wins.
 */
export function toUpstreamError(err: unknown, stage: Stage, participantId: string): UpstreamError {
  for (const e of causes(err)) {
    if (e instanceof UpstreamError) return e;
  }
  for (const e of causes(err)) {
    if (e instanceof Error && e.name === 'TimeoutError') {
      return new UpstreamError('upstream_timeout', `${stage}: the upstream did not answer in time`, { cause: err, participantId });
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const detail = [...causes(err)]
    .slice(1)
    .map((e) => (e instanceof Error ? e.message : undefined))
    .filter((m): m is string => Boolean(m) && m !== message)
    .join(': ');
  const text = `${stage}: ${clip(message)}${detail ? ` (${clip(detail)})` : ''}`;
  const status = statusOf(err);

  // A server error is the IdP being down, at whatever stage.
  if (status !== undefined && status >= 500) {
    return new UpstreamError('upstream_unreachable', `${stage}: the upstream answered HTTP ${status}`, { cause: err, participantId });
  }
  if (stage === 'discovery') {
    return new UpstreamError('discovery_invalid', text, { cause: err, participantId });
  }
  if (err instanceof oidc.ResponseBodyError) {
    return oauthError(`${stage === 'token' ? 'the token' : 'the userinfo'} endpoint`, err.error, err.error_description, participantId, err);
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    // userinfo refusing our access token: the IdP does not accept what it issued to us there.
    return new UpstreamError('upstream_misconfigured', text, { cause: err, participantId });
  }
  if (stage === 'userinfo') {
    // Anything else at userinfo is an answer that is not a userinfo response: not compatible.
    return new UpstreamError('upstream_misconfigured', text, { cause: err, participantId });
  }
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON' || code === 'OAUTH_PARSE_ERROR' || code === 'OAUTH_UNSUPPORTED_OPERATION') {
    return new UpstreamError('upstream_misconfigured', text, { cause: err, participantId });
  }
  // The token response's shape was checked before openid-client read it (oidc.ts): what is left is
  // a check of the ID token that failed.
  return new UpstreamError('token_invalid', text, { cause: err, participantId });
}

/**
 * Why a logout notice from an upstream was refused (OIDC Back-Channel Logout 1.0 section 2.6, one
 * value per check): a metric label and a log field, never shown to the sender beyond the code.
 */
export type LogoutTokenRejection =
  | 'malformed'
  | 'encrypted'
  | 'type'
  | 'algorithm'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'issued_at'
  | 'expired'
  | 'no_subject'
  | 'events'
  | 'nonce'
  | 'no_jti'
  | 'replayed';

export const LOGOUT_TOKEN_REJECTIONS: readonly LogoutTokenRejection[] = [
  'malformed', 'encrypted', 'type', 'algorithm', 'signature', 'issuer', 'audience', 'issued_at', 'expired', 'no_subject', 'events', 'nonce', 'no_jti', 'replayed',
];

/**
 * A logout notice that failed a check: the back-channel logout endpoint answers 400
 * `invalid_request` (section 2.8). `message` is for the log: it may quote what the upstream sent.
 */
export class LogoutTokenError extends ConcordError {
  readonly reason: LogoutTokenRejection;
  readonly participantId: string | undefined;

  constructor(reason: LogoutTokenRejection, message: string, options: { participantId?: string; cause?: unknown } = {}) {
    super('logout_token_invalid', message, { status: 400, expose: false, cause: options.cause });
    this.reason = reason;
    this.participantId = options.participantId;
  }
}
