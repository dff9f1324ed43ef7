import { ConcordError } from '../errors.ts';

/** The backend did not answer; requests that need it get 503 and retry later. */
export class StoreUnavailableError extends ConcordError {
  constructor(message = 'The session store is unavailable', cause?: unknown) {
    super('store_unavailable', message, { status: 503, expose: true, cause });
  }
}
