/**
 * A circuit breaker for one participant's IdP, so that while it is down its users get the
 * "sign-in service unavailable" page at once instead of waiting for a timeout (or being sent to
 * a dead login page).
 *
 *   closed     calls pass; `threshold` availability failures in a row (timeouts, refused
 *              connections, 5xx) open it, and so does a failed health probe (`trip`).
 *   open       calls are refused until `cooldownMs` has passed since it opened (or last failed);
 *   half_open  then the next caller gets the one trial (a probe, run by the caller before its own
 *              call) while everybody else is still refused; its success closes the circuit, its
 *              failure opens it for another cool-down. A successful scheduled probe closes it too.
 *
 * Answers the upstream gave (an OAuth error, a 4xx, a bad ID token) are not availability
 * failures: they pass through and reset the count.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];

/** What `acquire` grants: go ahead, go ahead as the half-open trial, or refused. */
export type Admission = 'pass' | 'trial' | 'reject';

export interface CircuitBreakerOptions {
  /** Availability failures in a row that open the circuit. Default 5. */
  threshold?: number;
  /** How long the circuit stays open before a trial. Default 30 s. */
  cooldownMs?: number;
  now?: () => number;
  onChange?: (state: CircuitState, previous: CircuitState) => void;
}

export class CircuitBreaker {
  readonly threshold: number;
  readonly cooldownMs: number;
  readonly #now: () => number;
  readonly #onChange: ((state: CircuitState, previous: CircuitState) => void) | undefined;
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    this.threshold = Math.max(1, options.threshold ?? 5);
    this.cooldownMs = Math.max(0, options.cooldownMs ?? 30_000);
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
  }

  get state(): CircuitState {
    return this.#state;
  }

  /** Consecutive availability failures counted while closed. */
  get failures(): number {
    return this.#failures;
  }

  /** Milliseconds until an open circuit allows its trial (0 when not open). */
  retryInMs(): number {
    return this.#state === 'open' ? Math.max(0, this.#openedAt + this.cooldownMs - this.#now()) : 0;
  }

  /** Asks to make a call: `pass`, `trial` (the caller must report success or failure), or `reject`. */
  acquire(): Admission {
    if (this.#state === 'closed') return 'pass';
    if (this.#state === 'open' && this.retryInMs() === 0) {
      this.#set('half_open');
      return 'trial';
    }
    return 'reject';
  }

  /** A call or probe that proved the upstream answers: closes the circuit. */
  success(): void {
    this.#failures = 0;
    this.#set('closed');
  }

  /** An availability failure: counts while closed; a failed trial (or a failure while open) (re)opens. */
  failure(): void {
    if (this.#state === 'closed') {
      this.#failures++;
      if (this.#failures >= this.threshold) this.#open();
      return;
    }
    this.#open();
  }

  /**
   * The outcome of an ordinary call (not a trial): only counts while closed, so that calls that
   * were already under way when the circuit opened cannot close it again.
   */
  record(ok: boolean): void {
    if (this.#state !== 'closed') return;
    if (ok) this.#failures = 0;
    else this.failure();
  }

  /** Opens now, whatever the count (a failed health probe). */
  trip(): void {
    this.#open();
  }

  /** Back to closed with a clean count (the participant's upstream configuration changed). */
  reset(): void {
    this.#failures = 0;
    this.#set('closed');
  }

  #open(): void {
    this.#failures = Math.max(this.#failures, this.threshold);
    this.#openedAt = this.#now();
    this.#set('open');
  }

  #set(state: CircuitState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#onChange?.(state, previous);
  }
}
