import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { LoginEvent } from '../interactions/index.ts';
import { requestContext } from '../observability/index.ts';
import type { Store } from '../store/index.ts';

const MINUTE = 60_000;
const HOUR_MINUTES = 60;

/** A login that did not succeed: its outcome, when (ISO 8601), and the reference its error page showed. */
export interface LastLoginError {
  outcome: string;
  at: string;
  reference?: string;
}

/**
 * Brokered logins of the last hour by participant and outcome, as this instance saw them (the
 * cluster-wide numbers are the `concord_login_total` counters in Prometheus). Minute buckets, at most
 * 60 per participant, so memory stays flat whatever the traffic.
 */
export class LoginTally {
  readonly #buckets = new Map<string, Map<number, Map<string, number>>>();
  readonly #lastError = new Map<string, LastLoginError>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  observe(event: LoginEvent): void {
    if (event.participant === undefined) return;
    const minute = Math.floor(this.#now() / MINUTE);
    let perMinute = this.#buckets.get(event.participant);
    if (!perMinute) this.#buckets.set(event.participant, (perMinute = new Map()));
    let outcomes = perMinute.get(minute);
    if (!outcomes) {
      perMinute.set(minute, (outcomes = new Map()));
      for (const old of perMinute.keys()) if (old <= minute - HOUR_MINUTES) perMinute.delete(old);
    }
    outcomes.set(event.outcome, (outcomes.get(event.outcome) ?? 0) + 1);
    if (event.outcome !== 'success') {
      // The error page of this request showed its request id as the reference (pages/errors.ts).
      const reference = requestContext.getStore()?.requestId;
      this.#lastError.set(event.participant, { outcome: event.outcome, at: new Date(this.#now()).toISOString(), ...(reference ? { reference } : {}) });
    }
  }

  /** Outcome -> count over the last 60 minutes. */
  lastHour(participant: string): Record<string, number> {
    const since = Math.floor(this.#now() / MINUTE) - HOUR_MINUTES;
    const totals: Record<string, number> = {};
    for (const [minute, outcomes] of this.#buckets.get(participant) ?? []) {
      if (minute <= since) continue;
      for (const [outcome, n] of outcomes) totals[outcome] = (totals[outcome] ?? 0) + n;
    }
    return totals;
  }

  lastError(participant: string): LastLoginError | undefined {
    return this.#lastError.get(participant);
  }
}

/** One Concord instance as the console lists it: which configuration version it serves. */
export interface InstanceView {
  id: string;
  host: string;
  version: number;
  /** ISO 8601 of its last heartbeat. */
  seenAt: string;
}

const SET = 'instances';
const keyOf = (id: string) => `instance:${id}`;
const BEAT_MS = 10_000;
const TTL_S = 30;

/**
 * Every instance writes a heartbeat with the configuration version it serves every 10 s (kept 30 s):
 * the overview shows which instances have which version. An instance that stops beating drops out.
 */
export function instanceHeartbeat(store: Store, version: () => number): { start(): void; stop(): Promise<void>; list(): Promise<InstanceView[]>; readonly id: string } {
  const id = randomUUID();
  const host = hostname();
  let timer: NodeJS.Timeout | undefined;
  const beat = async () => {
    await store.setTemp<InstanceView>(keyOf(id), { id, host, version: version(), seenAt: new Date().toISOString() }, TTL_S);
    await store.addToSet(SET, id);
  };
  return {
    id,
    start() {
      void beat().catch(() => {});
      timer = setInterval(() => void beat().catch(() => {}), BEAT_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await store.deleteTemp(keyOf(id)).catch(() => {});
      await store.removeFromSet(SET, id).catch(() => {});
    },
    async list() {
      const views: InstanceView[] = [];
      for (const member of await store.setMembers(SET)) {
        const view = await store.getTemp<InstanceView>(keyOf(member));
        if (view) views.push(view);
        else await store.removeFromSet(SET, member);
      }
      return views.sort((a, b) => a.host.localeCompare(b.host) || a.id.localeCompare(b.id));
    },
  };
}
