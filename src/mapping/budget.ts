import { LIMITS } from './limits.ts';

/**
 * Why one login's mapping stopped at a limit. Stable codes: they are the login's outcome in the log
 * and in `concord_login_total{outcome}`.
 *
 *   claims_too_deep       an upstream claim nests deeper than LIMITS.claimsDepth
 *   claim_list_too_long   an array or object in the claims has more than LIMITS.claimList entries
 *   claims_too_large      a string over LIMITS.claimString characters, or the claims over LIMITS.claimsBytes
 *   cel_cost_exceeded     an expression spent more than LIMITS.celRuntimeCost, or built a list or string
 *                         larger than LIMITS.celList / LIMITS.celString
 *   mapping_timeout       the mapping ran past LIMITS.mappingTimeMs
 */
export const MAPPING_LIMIT_CODES = ['claims_too_deep', 'claim_list_too_long', 'claims_too_large', 'cel_cost_exceeded', 'mapping_timeout'] as const;
export type MappingLimitCode = (typeof MAPPING_LIMIT_CODES)[number];

/** Cost units between two reads of the clock (about 10 to 50 microseconds of work). */
const CLOCK_EVERY = 32;

/**
 * Milliseconds of CPU this thread has spent. The budget counts the mapping's own work, not wall
 * time: CEL runs synchronously on the main thread, so its CPU time is the time it blocks the event
 * loop, while wall time would also count whatever else the machine runs (a loaded host would time
 * out mappings that are well within budget).
 */
function threadCpuMs(): number {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1000;
}

/** A limit was hit; `limit` names it for the log (e.g. `claims.depth <= 16`). */
export class LimitExceeded extends Error {
  readonly code: MappingLimitCode;
  readonly limit: string;
  constructor(code: MappingLimitCode, limit: string, message: string) {
    super(message);
    this.name = 'LimitExceeded';
    this.code = code;
    this.limit = limit;
  }
}

export interface BudgetLimits {
  /** Milliseconds of the main thread's CPU time for the whole mapping. */
  timeMs: number;
  /** Cost units per expression evaluation. */
  celCost: number;
}

/**
 * The resources one apply() may use: a CPU-time deadline for the whole mapping and a cost meter
 * per CEL evaluation. CEL runs synchronously inside @bufbuild/cel, whose functions Concord supplies
 * (cel-env.ts): each one charges the active budget before it works, so an expression that runs past
 * its budget fails at its next call, and every later call fails at once.
 */
export class Budget {
  readonly #deadline: number;
  readonly #timeMs: number;
  readonly #maxCost: number;
  #cost = 0;
  #sinceClock = 0;
  /** The first limit hit; once set, every charge throws it again. */
  exceeded: LimitExceeded | undefined;

  constructor(limits: Partial<BudgetLimits> = {}) {
    this.#timeMs = limits.timeMs ?? LIMITS.mappingTimeMs;
    this.#deadline = threadCpuMs() + this.#timeMs;
    this.#maxCost = limits.celCost ?? LIMITS.celRuntimeCost;
  }

  /** A new expression evaluation: its cost meter starts at zero (the deadline stays). */
  startEvaluation(): void {
    this.#cost = 0;
  }

  /**
   * Spends `units`; throws LimitExceeded when the cost or the time is over. The clock is read once
   * every CLOCK_EVERY units spent (a call costs at least one): reading it on every call cost more
   * than most calls.
   */
  charge(units: number): void {
    if (this.exceeded) throw this.exceeded;
    this.#cost += units;
    if (this.#cost > this.#maxCost) {
      throw this.#fail(new LimitExceeded('cel_cost_exceeded', `expression cost <= ${this.#maxCost} units`, `an expression spent more than ${this.#maxCost} cost units`));
    }
    this.#sinceClock += units;
    if (this.#sinceClock >= CLOCK_EVERY) {
      this.#sinceClock = 0;
      this.checkTime();
    }
  }

  /** Throws LimitExceeded once the deadline has passed. */
  checkTime(): void {
    if (this.exceeded) throw this.exceeded;
    if (threadCpuMs() > this.#deadline) {
      throw this.#fail(new LimitExceeded('mapping_timeout', `mapping time <= ${this.#timeMs} ms`, 'the mapping ran past its time budget'));
    }
  }

  /** Records a limit found outside the meter (an expression building too large a value). */
  fail(error: LimitExceeded): LimitExceeded {
    return this.#fail(error);
  }

  #fail(error: LimitExceeded): LimitExceeded {
    this.exceeded ??= error;
    return this.exceeded;
  }
}

/** The budget of the evaluation running now. CEL evaluation is synchronous, so one slot suffices. */
let active: Budget | undefined;

/** Runs `fn` with `budget` charged by every CEL function it calls. */
export function withBudget<T>(budget: Budget, fn: () => T): T {
  const previous = active;
  active = budget;
  try {
    return fn();
  } finally {
    active = previous;
  }
}

/** Charges the active budget, if any (CEL compiled at load runs without one). */
export function charge(units: number): void {
  active?.charge(units);
}

/** Records a limit an expression hit by building too large a value, then throws it. */
export function exceed(error: LimitExceeded): never {
  throw active ? active.fail(error) : error;
}
