import { randomUUID } from 'node:crypto';
import type { DomainProofSettings } from '../config/index.ts';
import { ConcordError } from '../errors.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import type { Store } from '../store/index.ts';
import { ProofDns } from './dns.ts';
import {
  DOMAIN_PROOFS,
  DOMAIN_STATES,
  domainView,
  leaseKey,
  MIGRATED,
  type CheckResult,
  type DomainOrigin,
  type DomainRecord,
  type DomainView,
  type MethodResult,
} from './records.ts';
import { afterCheck, newRecord, underMode, type ProofEvent, type Timing } from './transitions.ts';
import { WellKnownCheck } from './wellknown.ts';

/** Who made a change, for the audit log: an admin token's label (and the request), or the timer. */
export interface Actor {
  actor: string;
  requestId?: string;
}

/** The timer's and the configuration files' changes are signed by this actor. */
export const SYSTEM_ACTOR: Actor = { actor: 'domain-proof' };

/** Where domain changes are audited (admin/audit.ts's AuditLog fits). */
export interface AuditSink {
  record(entry: { actor: string; action: string; object: { type: 'domain'; id: string }; result?: Record<string, unknown>; requestId?: string }): Promise<unknown>;
}

export interface DomainProofOptions {
  store: Store;
  settings: DomainProofSettings;
  log: Logger;
  metrics: Metrics;
  audit: AuditSink;
  /**
   * The domains each participant lists now (the registry): a listed domain without a record is
   * adopted as pending, and a record whose participant no longer lists it is an orphan.
   */
  claims: () => Iterable<{ id: string; domains: readonly string[] }>;
  /** Makes every instance re-read the store (the config sync's version bump): called after a domain's state changed. */
  announce: () => Promise<void>;
  /** The clock (Unix ms) of every record's times; tests pass a fake one. Default Date.now. */
  now?: () => number;
}

/** A domain is being checked or changed by another request or instance for longer than a check can take. */
export class DomainBusyError extends ConcordError {
  constructor(domain: string) {
    super('domain_busy', `domain ${domain} is being checked or changed elsewhere; try again in a minute`, { status: 409, expose: true });
  }
}

export interface DomainProof {
  /** Every domain's record, as the store holds it now. */
  list(): Promise<DomainRecord[]>;
  get(domain: string): Promise<DomainRecord | undefined>;
  /** Whether domainProof.mode requires proof for domains of this origin. */
  required(origin: DomainOrigin): boolean;
  view(record: DomainRecord): DomainView;
  /**
   * Records for the domains a participant adds at runtime: pending (or verified when proof is not
   * required). A domain whose record holds another participant's claim made within the last hour
   * throws DomainConflictError (409): with the participant records' own check, the first claim holds
   * the domain, pending or not. The same participant claiming again keeps its challenge.
   */
  claim(participantId: string, domains: readonly string[], by: Actor): Promise<DomainRecord[]>;
  /** Removes the records of domains a participant gave up (or of a participant removed). */
  release(participantId: string, domains: readonly string[], by: Actor): Promise<void>;
  /** Records for the configuration files' domains, written when the store is seeded. */
  seed(participantId: string, domains: readonly string[]): Promise<void>;
  /**
   * Once per store: records for the domains of participants stored before domain proof existed,
   * verified by the upgrade, so they keep routing. Returns how many were written.
   */
  migrate(participants: ReadonlyArray<{ id: string; domains: readonly string[] }>): Promise<number>;
  /** Checks a domain now (after a check in progress elsewhere ends); returns its record after the check. */
  check(domain: string, by: Actor): Promise<DomainRecord>;
  /** One round of the timer: adopt, clean up, apply the mode, check every due domain. */
  sweep(): Promise<void>;
  /** Sets the gauges from the records (every instance, whenever it reads them). */
  observe(records: readonly DomainRecord[]): void;
  start(): void;
  stop(): Promise<void>;
}

/** A record whose participant no longer lists its domain is removed this long after its last change. */
const ORPHAN_AGE_MS = 3600_000;
/** How long a claim or check waits for another one on the same domain to end. */
const LEASE_POLL_MS = 100;

/**
 * The domain proof service: claims, checks and the timer, over records in the store shared by
 * every instance. One instance at a time works on a given domain (a lease in the store); every
 * state change is written, audited, logged, counted, and announced through the config sync, so
 * every instance routes by the same states.
 */
export function createDomainProof(options: DomainProofOptions): DomainProof {
  const { store, settings, log, metrics, audit } = options;
  const now = options.now ?? Date.now;
  const timing: Timing = {
    gracePeriodMs: settings.gracePeriod * 1000,
    checkIntervalMs: (settings.checkInterval || 300) * 1000,
    recheckIntervalMs: settings.recheckInterval * 1000,
  };
  const dns = new ProofDns({ resolvers: settings.resolvers, timeoutMs: settings.timeoutMs });
  const wellKnown = new WellKnownCheck({
    timeoutMs: settings.timeoutMs,
    allowPrivateNetwork: settings.allowPrivateNetwork,
    allowInsecureHttp: settings.allowInsecureHttp,
    port: settings.wellKnownPort,
    lookup: dns.lookup(),
    logger: log,
  });
  // Longer than a check can take (T = timeoutMs): the TXT query (2T), then up to four HTTP requests,
  // each an address lookup (2T) and the request (T).
  const leaseSeconds = Math.ceil((settings.timeoutMs * 14) / 1000) + 5;
  const required = (origin: DomainOrigin) => (origin === 'runtime' ? settings.mode.runtime : settings.mode.files) === 'required';

  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let stopped = false;

  const get = (domain: string) => store.getRecord<DomainRecord>(DOMAIN_PROOFS, domain);
  const put = (record: DomainRecord) => store.putRecord(DOMAIN_PROOFS, record.domain, record);
  const list = async () => (await store.listRecords<DomainRecord>(DOMAIN_PROOFS)).map((r) => r.value);

  /** Runs `work` holding the domain's lease; `wait: false` gives up at once when another holds it. */
  async function withLease<T>(domain: string, wait: boolean, work: () => Promise<T>): Promise<T | undefined> {
    const token = randomUUID();
    const giveUp = Date.now() + leaseSeconds * 1000;
    while (!(await store.claimTemp(leaseKey(domain), token, leaseSeconds))) {
      if (!wait) return undefined;
      if (Date.now() > giveUp) throw new DomainBusyError(domain);
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
    }
    try {
      return await work();
    } finally {
      // Only our own lease: had it run out, another holder's is not ours to end.
      if ((await store.getTemp(leaseKey(domain)).catch(() => undefined)) === token) await store.deleteTemp(leaseKey(domain)).catch(() => {});
    }
  }

  async function report(record: DomainRecord, events: ProofEvent[], by: Actor, extra: Record<string, unknown> = {}): Promise<void> {
    for (const event of events) {
      // `proofState`, not `state`: the logger redacts `state` everywhere (the OAuth parameter is a secret).
      const fields = { domain: record.domain, participant: record.participant, proofState: record.state, ...extra };
      const detail = record.lastCheck ? { dns: record.lastCheck.dns.detail, https: record.lastCheck.https.detail } : {};
      if (event === 'verified') log.info({ ...fields, verifiedBy: record.verifiedBy }, 'domain verified: it routes logins');
      if (event === 'proof_restored') log.info({ ...fields, verifiedBy: record.verifiedBy }, 'domain proof found again; flag cleared');
      const suspendsAt = record.proofMissingSince === undefined ? undefined : new Date(record.proofMissingSince + timing.gracePeriodMs).toISOString();
      if (event === 'proof_missing') {
        log.warn({ ...fields, ...detail, suspendsAt }, 'domain proof missing: the domain still routes logins, and is suspended if the proof does not come back within domainProof.gracePeriod');
      }
      if (event === 'suspended') log.error({ ...fields, ...detail }, 'domain suspended: its proof has been missing for domainProof.gracePeriod; it routes no logins');
      await audit.record({
        actor: by.actor,
        action: `domain.${event === 'verified' ? 'verify' : event === 'suspended' ? 'suspend' : event}`,
        object: { type: 'domain', id: record.domain },
        result: {
          participant: record.participant,
          state: record.state,
          ...(record.verifiedBy && record.state === 'verified' ? { verifiedBy: record.verifiedBy } : {}),
          ...(event === 'proof_missing' ? { ...(suspendsAt ? { suspendsAt } : {}), ...detail } : {}),
          ...(event === 'suspended' ? detail : {}),
          ...extra,
        },
        ...(by.requestId ? { requestId: by.requestId } : {}),
      });
    }
  }

  async function audited(action: 'claim' | 'release', record: DomainRecord, by: Actor): Promise<void> {
    log.info({ domain: record.domain, participant: record.participant, proofState: record.state, origin: record.origin }, action === 'claim' ? 'domain claimed' : 'domain released');
    await audit.record({
      actor: by.actor,
      action: `domain.${action}`,
      object: { type: 'domain', id: record.domain },
      result: { participant: record.participant, state: record.state, origin: record.origin },
      ...(by.requestId ? { requestId: by.requestId } : {}),
    });
  }

  /** The TXT record first; the well-known URL when it is not there. */
  async function probe(record: DomainRecord): Promise<CheckResult> {
    const at = now();
    const txt = await dns.checkTxt(record.domain, record.challenge);
    const https: MethodResult = txt.outcome === 'found' ? { outcome: 'skipped', detail: 'not needed: the TXT record proves the domain' } : await wellKnown.check(record.domain, record.challenge);
    for (const [method, result] of [['dns', txt], ['https', https]] as const) {
      if (result.outcome !== 'skipped') metrics.domainProofChecks.inc({ participant: record.participant, method, outcome: result.outcome });
    }
    const method = txt.outcome === 'found' ? 'dns' : https.outcome === 'found' ? 'https' : undefined;
    return { at, found: method !== undefined, ...(method ? { method } : {}), dns: txt, https };
  }

  /** Checks one domain; the caller holds its lease. */
  async function checkHeld(domain: string, by: Actor, onlyIfDue: boolean): Promise<DomainRecord | undefined> {
    const record = await get(domain);
    if (!record) return undefined;
    if (onlyIfDue && (record.nextCheckAt === undefined || record.nextCheckAt > now())) return record;
    const result = await probe(record);
    const { record: next, events } = afterCheck(record, result, required(record.origin), now(), timing);
    await put(next);
    log.debug({ domain, participant: record.participant, found: result.found, dns: result.dns.outcome, https: result.https.outcome, proofState: next.state }, 'domain proof checked');
    await report(next, events, by);
    if (events.length > 0) await options.announce();
    return next;
  }

  function observe(records: readonly DomainRecord[]): void {
    metrics.domainProofState.reset();
    metrics.domainProofMissing.reset();
    const participants = new Set(records.map((r) => r.participant));
    for (const participant of participants) {
      const mine = records.filter((r) => r.participant === participant);
      for (const state of DOMAIN_STATES) metrics.domainProofState.set({ participant, state }, mine.filter((r) => r.state === state).length);
      metrics.domainProofMissing.set({ participant }, mine.filter((r) => r.state === 'verified' && r.proofMissingSince !== undefined).length);
    }
  }

  async function sweep(): Promise<void> {
    const records = new Map((await list()).map((r) => [r.domain, r]));
    const owners = new Map<string, string>();
    for (const participant of options.claims()) for (const domain of participant.domains) owners.set(domain, participant.id);
    let changed = false;

    // Listed but without a record: written by an instance of an older version after this store was
    // migrated. Fail closed: pending, with a challenge, like any domain added at runtime.
    if ((await store.getCounter(MIGRATED)) > 0) {
      for (const [domain, participant] of owners) {
        if (records.has(domain)) continue;
        await withLease(domain, false, async () => {
          if (await get(domain)) return;
          const record = newRecord(domain, participant, 'runtime', required('runtime'), now());
          await put(record);
          await audited('claim', record, SYSTEM_ACTOR);
          records.set(domain, record);
          changed = true;
        });
      }
    }

    for (const record of [...records.values()]) {
      if (stopped) return;
      const domain = record.domain;
      if (owners.get(domain) !== record.participant) {
        if (now() - record.updatedAt < ORPHAN_AGE_MS) continue;
        await withLease(domain, false, async () => {
          const current = await get(domain);
          if (!current || owners.get(domain) === current.participant || now() - current.updatedAt < ORPHAN_AGE_MS) return;
          await store.deleteRecord(DOMAIN_PROOFS, domain);
          await audited('release', current, SYSTEM_ACTOR);
          changed = true;
        });
        continue;
      }
      if (underMode(record, required(record.origin), now())) {
        await withLease(domain, false, async () => {
          const current = await get(domain);
          const moved = current && underMode(current, required(current.origin), now());
          if (!moved) return;
          await put(moved.record);
          await report(moved.record, moved.events, SYSTEM_ACTOR, { reason: 'domainProof.mode' });
          if (moved.events.length > 0) changed = true;
        });
        continue;
      }
      if (record.nextCheckAt !== undefined && record.nextCheckAt <= now()) {
        await withLease(domain, false, () => checkHeld(domain, SYSTEM_ACTOR, true)).catch((error: unknown) => {
          log.warn({ domain, err: error }, 'domain proof check failed');
        });
      }
    }
    if (changed) await options.announce();
    observe(await list());
  }

  return {
    list,
    get,
    required,
    view: (record) => domainView(record, { required: required(record.origin), gracePeriodMs: timing.gracePeriodMs, wellKnownUrl: wellKnown.url(record.domain, record.challenge) }),
    observe,
    sweep,

    async claim(participantId, domains, by) {
      const claimed: DomainRecord[] = [];
      for (const domain of domains) {
        const record = await withLease(domain, true, async () => {
          const existing = await get(domain);
          if (existing && existing.participant !== participantId && now() - existing.updatedAt < ORPHAN_AGE_MS) {
            throw new DomainConflictError(domain, existing.participant);
          }
          // Claimed again by the same participant (re-added, or a write that did not finish): a new
          // claim, which must be proven again, but with the challenge its owner may have published.
          const challenge = existing?.participant === participantId ? existing.challenge : undefined;
          const record = newRecord(domain, participantId, 'runtime', required('runtime'), now(), challenge);
          await put(record);
          return record;
        });
        await audited('claim', record!, by);
        claimed.push(record!);
      }
      return claimed;
    },

    async release(participantId, domains, by) {
      for (const domain of domains) {
        const released = await withLease(domain, true, async () => {
          const existing = await get(domain);
          if (existing?.participant !== participantId) return undefined;
          await store.deleteRecord(DOMAIN_PROOFS, domain);
          return existing;
        });
        if (released) await audited('release', released, by);
      }
    },

    async seed(participantId, domains) {
      for (const domain of domains) {
        if (await get(domain)) continue;
        const record = newRecord(domain, participantId, 'file', required('file'), now());
        await put(record);
        await audited('claim', record, { actor: 'configuration files' });
      }
      if ((await store.getCounter(MIGRATED)) === 0) await store.incr(MIGRATED);
    },

    async migrate(participants) {
      if ((await store.getCounter(MIGRATED)) > 0) return 0;
      // Idempotent: two instances starting together may both write the same records; either stands.
      const existing = new Set((await list()).map((r) => r.domain));
      let written = 0;
      for (const participant of participants) {
        for (const domain of participant.domains) {
          if (existing.has(domain)) continue;
          const record = newRecord(domain, participant.id, 'upgrade', required('upgrade'), now());
          await put(record);
          await audited('claim', record, SYSTEM_ACTOR);
          written++;
        }
      }
      await store.incr(MIGRATED);
      if (written > 0) log.info({ domains: written }, 'domain proof: the domains stored before it are verified by the upgrade (docs/admin.md#domain-proof)');
      return written;
    },

    async check(domain, by) {
      const record = await withLease(domain, true, () => checkHeld(domain, by, false));
      if (!record) throw new ConcordError('not_found', `no domain ${domain}`, { status: 404, expose: true });
      return record;
    },

    start() {
      stopped = false;
      if (settings.checkInterval === 0 || timer) return;
      const round = () => {
        if (sweeping || stopped) return;
        sweeping = sweep()
          .catch((error: unknown) => log.warn({ err: error }, 'domain proof round failed; retrying next round'))
          .finally(() => {
            sweeping = undefined;
          });
      };
      timer = setInterval(round, Math.min(settings.checkInterval, 60) * 1000);
      timer.unref();
      round();
    },

    async stop() {
      stopped = true;
      clearInterval(timer);
      timer = undefined;
      await sweeping;
    },
  };
}
