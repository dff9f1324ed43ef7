import { unmeasured } from './http.ts';

/** After a failed background refresh, the next try waits this long (at most the TTL). */
const REFRESH_RETRY_MS = 30_000;

/**
 * An upstream document (OIDC discovery, SAML metadata) kept for `ttlMs` and then refreshed in the
 * background while the last good copy goes on serving; one fetch at a time, joined by every caller
 * that needs it meanwhile. A failed background refresh keeps the copy and is retried after
 * REFRESH_RETRY_MS (logged by `onRefreshError`); the first load, and `refresh()`, throw.
 */
export class RefreshingValue<T extends { fetchedAt: number }> {
  readonly #load: () => Promise<T>;
  readonly #ttlMs: number;
  readonly #onRefreshError: (err: unknown) => void;
  #current: T | undefined;
  #inflight: Promise<T> | undefined;
  #nextRefreshAttempt = 0;

  constructor(options: { load: () => Promise<T>; ttlMs: number; onRefreshError: (err: unknown) => void }) {
    this.#load = options.load;
    this.#ttlMs = options.ttlMs;
    this.#onRefreshError = options.onRefreshError;
  }

  /** The copy in use, if any (undefined before the first load). */
  get current(): T | undefined {
    return this.#current;
  }

  /** The cached value; past its TTL it is still returned while a refresh runs in the background. */
  async get(): Promise<T> {
    const current = this.#current;
    if (!current) return this.refresh();
    const now = Date.now();
    if (now - current.fetchedAt >= this.#ttlMs && !this.#inflight && now >= this.#nextRefreshAttempt) {
      unmeasured(() =>
        this.refresh().catch((err: unknown) => {
          this.#nextRefreshAttempt = Date.now() + Math.min(REFRESH_RETRY_MS, this.#ttlMs);
          this.#onRefreshError(err);
        }),
      );
    }
    return current;
  }

  /** Loads now (joining a load already running) and makes the result current when it succeeds. */
  refresh(): Promise<T> {
    this.#inflight ??= this.#load()
      .then((next) => {
        this.#current = next;
        return next;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }
}
