import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/index.ts';
import type { Store } from '../store/index.ts';

/** One logout token to deliver: a service's part in a session that ended (OIDC Back-Channel Logout 1.0 2.4). */
export interface LogoutNotice {
  clientId: string;
  /** The account the session belonged to: the token's `sub` (pairwise for a pairwise client). */
  accountId: string;
  /** The service's `sid` in that session, when it had one. */
  sid?: string;
}

/** Sends one logout token; throws when the service did not answer 200 or 204 (2.8), with `status` when it answered. */
export type LogoutSender = (notice: LogoutNotice) => Promise<void>;

export interface LogoutDeliveryOptions {
  store: Store;
  send: LogoutSender;
  log: Logger;
  /** How long a notice is retried before it is given up, milliseconds. */
  retryForMs: number;
  /** How often due retries are looked for, milliseconds. Default 1000. */
  intervalMs?: number;
  /** Counts each notice's fate, per client. */
  onOutcome?: (clientId: string, outcome: 'delivered' | 'failed') => void;
  now?: () => number;
}

interface QueuedNotice {
  notice: LogoutNotice;
  attempts: number;
  /** Epoch milliseconds. */
  firstAt: number;
  nextAt: number;
}

const QUEUE = 'logout-notices';
const noticeKey = (id: string) => `logout-notice:${id}`;
const leaseKey = (id: string) => `logout-notice-lease:${id}`;
/** First retry after a second, doubling, at most five minutes apart. */
const backoffMs = (attempts: number) => Math.min(1000 * 2 ** Math.max(0, attempts - 1), 5 * 60_000);
/** A delivery attempt holds its notice this long at most (the sender's own timeout is shorter). */
const LEASE_S = 60;

/**
 * Back-channel logout delivery: a small queue in the store, so notices survive a restart and any
 * instance may deliver them. A notice is tried at once (in the background: the request that ended
 * the session does not wait for services), then again with back-off (1 s, 2 s, 4 s, ... at most
 * 5 min apart) until it is delivered or `retryForMs` has passed, when it is given up and logged.
 * One instance at a time works on a notice (a lease in the store), so a service is not sent the same
 * notice twice at once; a notice whose instance died is picked up when its lease expires.
 */
export class LogoutDelivery {
  readonly #opts: LogoutDeliveryOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  readonly #running = new Set<Promise<void>>();
  #stopped = false;

  constructor(options: LogoutDeliveryOptions) {
    this.#opts = options;
    this.#now = options.now ?? Date.now;
  }

  /** Queues the notices (durably) and starts delivering them; resolves once they are queued. */
  async enqueue(notices: readonly LogoutNotice[]): Promise<void> {
    const now = this.#now();
    const ids: string[] = [];
    for (const notice of notices) {
      const id = randomUUID();
      const queued: QueuedNotice = { notice, attempts: 0, firstAt: now, nextAt: now };
      await this.#opts.store.setTemp(noticeKey(id), queued, this.#ttlSeconds());
      await this.#opts.store.addToSet(QUEUE, id, this.#ttlSeconds());
      ids.push(id);
    }
    for (const id of ids) this.#track(this.#attempt(id));
  }

  /** Retries what is due every `intervalMs`. */
  start(): void {
    if (this.#timer) return;
    this.#stopped = false;
    this.#timer = setInterval(() => this.#track(this.deliverDue()), this.#opts.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Stops the timer and waits for the attempts under way (a notice not delivered stays queued). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#running]);
  }

  /** Tries every queued notice that is due now. */
  async deliverDue(): Promise<void> {
    let ids: string[];
    try {
      ids = await this.#opts.store.setMembers(QUEUE);
    } catch (err) {
      this.#opts.log.warn({ err }, 'back-channel logout: the queue cannot be read (store unavailable); retrying later');
      return;
    }
    await Promise.all(ids.map((id) => this.#attempt(id)));
  }

  /** How many notices wait (tests, metrics). */
  async pending(): Promise<number> {
    return (await this.#opts.store.setMembers(QUEUE)).length;
  }

  #ttlSeconds(): number {
    return Math.ceil(this.#opts.retryForMs / 1000) + LEASE_S;
  }

  #track(run: Promise<void>): void {
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
  }

  async #attempt(id: string): Promise<void> {
    const { store, log } = this.#opts;
    try {
      const queued = await store.getTemp<QueuedNotice>(noticeKey(id));
      if (!queued) {
        await store.removeFromSet(QUEUE, id); // its entry expired (it outlives every retry): nothing left to send
        return;
      }
      if (this.#stopped || queued.nextAt > this.#now()) return;
      if (!(await store.claimTemp(leaseKey(id), 1, LEASE_S))) return;
      try {
        // Read again under the lease: another instance may have delivered it meanwhile.
        const current = await store.getTemp<QueuedNotice>(noticeKey(id));
        if (!current) return;
        await this.#deliver(id, current);
      } finally {
        await store.deleteTemp(leaseKey(id));
      }
    } catch (err) {
      log.warn({ err }, 'back-channel logout: a notice could not be handled (store unavailable); retrying later');
    }
  }

  async #deliver(id: string, queued: QueuedNotice): Promise<void> {
    const { store, log, send, onOutcome } = this.#opts;
    const { notice } = queued;
    const attempts = queued.attempts + 1;
    try {
      await send(notice);
      await store.deleteTemp(noticeKey(id));
      await store.removeFromSet(QUEUE, id);
      onOutcome?.(notice.clientId, 'delivered');
      log.info({ client: notice.clientId, attempts }, 'back-channel logout delivered');
      return;
    } catch (err) {
      const now = this.#now();
      const nextAt = now + backoffMs(attempts);
      const status = (err as { status?: unknown }).status;
      const reason = typeof status === 'number' ? `HTTP ${status}` : ((err as { code?: unknown }).code ?? (err as Error).name ?? 'error');
      if (nextAt - queued.firstAt > this.#opts.retryForMs) {
        await store.deleteTemp(noticeKey(id));
        await store.removeFromSet(QUEUE, id);
        onOutcome?.(notice.clientId, 'failed');
        log.warn({ client: notice.clientId, attempts, reason }, 'back-channel logout given up: the service did not accept the logout token in time');
        return;
      }
      const next: QueuedNotice = { ...queued, attempts, nextAt };
      await store.setTemp(noticeKey(id), next, this.#ttlSeconds());
      log.info({ client: notice.clientId, attempts, reason, retryInMs: nextAt - now }, 'back-channel logout not accepted; will retry');
    }
  }
}
