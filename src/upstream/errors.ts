import * as oidc from 'openid-client';
import { ConcordError } from '../errors.ts';

/**
 * Stable codes of every way an upstream login can fail. They are metric labels and the lead's
 * routes map them to pages: never rename one.
 */
export type UpstreamErrorCode =
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'state_mismatch'
  | 'iss_mismatch'
  | 'token_invalid'
  | 'userinfo_invalid'
  | 'discovery_invalid';

export const UPSTREAM_ERROR_CODES: readonly UpstreamErrorCode[] = [
  'upstream_unreachable',
  'upstream_timeout',
  'upstream_error',
  'state_mismatch',
  'iss_mismatch',
  'token_invalid',
  'userinfo_invalid',
  'discovery_invalid',
];

const STATUS: Record<UpstreamErrorCode, number> = {
  upstream_unreachable: 502,
  upstream_timeout: 504,
  upstream_error: 502,
  state_mismatch: 400,
  iss_mismatch: 400,
  token_invalid: 502,
  userinfo_invalid: 502,
  discovery_invalid: 502,
};

export interface UpstreamErrorOptions {
  cause?: unknown;
  participantId?: string;
  /** For `upstream_error`: the OAuth `error` code the upstream sent (`access_denied`, `invalid_grant`, ...). */
  upstreamError?: string;
}

/**
 * A failed call to, or a refused answer from, a participant's IdP. `message` is for logs: it may
 * quote what the upstream sent, so it is never shown to the user (`expose: false`).
 */
export class UpstreamError extends ConcordError {
  declare readonly code: UpstreamErrorCode;
  readonly participantId: string | undefined;
  readonly upstreamError: string | undefined;

  constructor(code: UpstreamErrorCode, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, { status: STATUS[code], expose: false, cause: options.cause });
    this.participantId = options.participantId;
    this.upstreamError = options.upstreamError;
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
 * Turns whatever openid-client (or our fetch) threw into one UpstreamError. An UpstreamError
 * anywhere in the cause chain (thrown by our fetch: unreachable, timeout) wins.
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

  if (stage === 'discovery') {
    return new UpstreamError('discovery_invalid', text, { cause: err, participantId });
  }
  if (stage === 'userinfo') {
    return new UpstreamError('userinfo_invalid', text, { cause: err, participantId });
  }
  // Token endpoint: an OAuth error answer, or an answer that is not a token response at all.
  if (err instanceof oidc.ResponseBodyError) {
    const upstreamError = oauthErrorCode(err.error);
    return new UpstreamError('upstream_error', `token endpoint answered ${upstreamError ?? 'an error'}: ${clip(err.error_description)}`, {
      cause: err,
      participantId,
      ...(upstreamError ? { upstreamError } : {}),
    });
  }
  if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.WWWAuthenticateChallengeError) {
    return new UpstreamError('upstream_error', text, { cause: err, participantId });
  }
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
    return new UpstreamError('upstream_error', text, { cause: err, participantId });
  }
  // Everything else is a check of the token response / ID token that failed.
  return new UpstreamError('token_invalid', text, { cause: err, participantId });
}
