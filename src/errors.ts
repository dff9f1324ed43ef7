/**
 * One family of errors for all of Concord: a stable `code` for programs and tests,
 * the HTTP `status` it maps to, and whether `message` may be shown to an end user.
 * Tests check `code`, never the text.
 */
export interface ConcordErrorOptions {
  status?: number;
  expose?: boolean;
  cause?: unknown;
}

export class ConcordError extends Error {
  readonly code: string;
  readonly status: number;
  /** Whether `message` is safe to show to the person at the browser or API client. */
  readonly expose: boolean;

  constructor(code: string, message: string, options: ConcordErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? this.status < 500;
  }
}
