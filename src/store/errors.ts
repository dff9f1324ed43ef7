import { ConcordError } from '../errors.ts';

/**
 * The backend did not answer; requests that need it get 503 and retry later.
 * It also carries the fields oidc-provider reads from an error (`statusCode`, `message` as the
 * OAuth error code, `error_description`), so its endpoints answer `temporarily_unavailable`.
 */
export class StoreUnavailableError extends ConcordError {
  readonly statusCode = 503;
  readonly error_description: string;

  constructor(description = 'The session store is unavailable', cause?: unknown) {
    super('store_unavailable', 'temporarily_unavailable', { status: 503, expose: true, cause });
    this.error_description = description;
  }
}

/**
 * The embedded store is at its cap (entries or bytes): new interactions, sessions and tokens are
 * refused with 503 until entries expire. A StoreUnavailableError, so every path that answers a store
 * outage (503, Retry-After, `temporarily_unavailable`, the error page) answers this too.
 */
export class StoreFullError extends StoreUnavailableError {
  /** Entries and bytes held and the caps, for the log (not for callers). */
  readonly detail: string;
  constructor(detail: string) {
    super('Concord is at capacity (too many sign-ins in progress); try again shortly');
    this.detail = detail;
  }
}
