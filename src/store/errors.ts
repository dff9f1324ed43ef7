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
