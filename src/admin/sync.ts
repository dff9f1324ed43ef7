import { sharedUpstream, upstreamIdentity, type ClientConfig, type Participant } from '../config/index.ts';
import { ConcordError } from '../errors.ts';
import { verifiedDomains, type Actor, type DomainProof, type DomainRecord } from '../domain-proof/index.ts';
import { compileMapping } from '../mapping/index.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import { DomainConflictError, type Registry } from '../participants/index.ts';
import type { SecretBox } from '../secrets/index.ts';
import type { Store } from '../store/index.ts';
import { AdminError, notFound } from './errors.ts';
import { CLIENTS, PARTICIPANTS, openClient, openParticipant, sealClient, sealParticipant, type StoredClient, type StoredParticipant } from './stored.ts';

/*
 * Keeps every instance's Registry in step with the participants and clients in the store.
 *
 *   records `participants/{id}`, `clients/{id}`   the documents (secrets sealed)
 *   counter `config:version`                       bumped by every change; 0 = never seeded
 *   counter `config:seeded`                        the instance that increments it to 1 seeds
 *   record  `config-meta/last-change`              { version, at } of the newest change, for the lag metric
 *   channel `config`                               the new version, published after each change
 *   records `domain-proofs/{domain}`               each domain's proof state (domain-proof/): read with the
 *                                                  participants, so a participant routes its verified domains only
 *
 * A published message makes instances look at once; each also checks the version every
 * `intervalMs`, so a missed message (reconnect, dropped subscriber) costs at most one interval.
 */
const VERSION = 'config:version';
const SEEDED = 'config:seeded';
const META = 'config-meta';
const CHANNEL = 'config';

export interface ConfigSyncOptions {
  store: Store;
  registry: Registry;
  secrets: SecretBox;
  metrics: Metrics;
  log: Logger;
  /** The configuration files: written to the store once, by the first instance to start on it. */
  seed: { participants: Participant[]; clients: ClientConfig[] };
  /** Default 500 ms. */
  intervalMs?: number;
  /** Domain proof: without it (unit tests), every domain of a participant routes. */
  domains?: DomainProof;
}

export interface ConfigSync {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Looks at the store's version now and applies what changed. */
  refresh(): Promise<void>;
  /** The store version this instance serves; 0 while it serves the files alone. */
  readonly version: number;
  /** Throws MappingError or DomainConflictError when the participant could not be served. */
  checkParticipant(participant: Participant): Promise<void>;
  storedParticipant(id: string): Promise<Participant | undefined>;
  storedClient(id: string): Promise<ClientConfig | undefined>;
  /**
   * Writes, bumps the version, publishes and applies here. Returns the previous version.
   * `expect` refuses (409/404) when the id is taken / absent, checked inside the write lock.
   * Domains added are claimed first (domain proof: pending until proven), domains given up released
   * after; `by` signs those changes in the audit log.
   */
  putParticipant(participant: Participant, expect?: Expectation, by?: Actor): Promise<Participant | undefined>;
  removeParticipant(id: string, by?: Actor): Promise<Participant | undefined>;
  /** A change made elsewhere in the store (a domain's proof state): bump, publish, apply here. */
  announce(): Promise<void>;
  putClient(client: ClientConfig, expect?: Expectation): Promise<ClientConfig | undefined>;
  removeClient(id: string): Promise<ClientConfig | undefined>;
}


export type Expectation = 'new' | 'existing' | 'any';

function expectation(kind: 'participant' | 'client', id: string, previous: unknown, expect: Expectation): void {
  if (expect === 'new' && previous) {
    throw new AdminError(409, 'already_exists', `${kind} "${id}" already exists; change it with PUT /admin/v1/${kind}s/${id}`, { field: kind === 'client' ? 'client_id' : 'id' });
  }
  if (expect === 'existing' && !previous) throw notFound(kind, id);
}

/** Who changes what when no admin request does (a test, the seed). */
const SYSTEM: Actor = { actor: 'system' };

export function createConfigSync(options: ConfigSyncOptions): ConfigSync {
  const { store, registry, secrets, metrics, log, domains } = options;
  const intervalMs = options.intervalMs ?? 500;
  let applied = 0;
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;
  /** What was last applied (or refused) per id, so an unchanged record is not recompiled on every version. */
  const seenParticipants = new Map<string, string>();
  const seenClients = new Map<string, string>();

  // ---- reading the store -------------------------------------------------------------------

  let inflight: Promise<void> | undefined;
  let followUp: Promise<void> | undefined;
  /** One refresh at a time; a call during one gets a fresh one after it, so nothing is missed. */
  function refresh(): Promise<void> {
    if (!inflight) {
      inflight = applyFromStore().finally(() => {
        inflight = undefined;
      });
      return inflight;
    }
    followUp ??= inflight
      .catch(() => {})
      .then(() => {
        followUp = undefined;
        return refresh();
      });
    return followUp;
  }

  async function applyFromStore(): Promise<void> {
    let version = await store.getCounter(VERSION);
    if (version === 0) {
      if (!(await seedIfFirst())) return;
      version = await store.getCounter(VERSION);
    }
    if (version === applied) return;
    const [participants, clients, meta] = await Promise.all([
      store.listRecords<StoredParticipant>(PARTICIPANTS),
      store.listRecords<StoredClient>(CLIENTS),
      store.getRecord<{ version: number; at: number }>(META, 'last-change'),
    ]);
    // A store from before domain proof: its domains get records (verified by the upgrade) before they are first read.
    if (applied === 0) await domains?.migrate(participants.map(({ value }) => value.config));
    const proofs = domains ? await domains.list() : undefined;
    applyParticipants(participants, proofs && new Map(proofs.map((r) => [r.domain, r])));
    if (proofs) domains?.observe(proofs);
    applyClients(clients);
    if (applied === 0) log.info({ version }, 'serving participants and clients from the store');
    applied = version;
    metrics.configVersion.set(version);
    if (meta?.version === version) metrics.configSyncLag.set(Math.max(0, (Date.now() - meta.at) / 1000));
  }

  function applyParticipants(records: Array<{ id: string; value: StoredParticipant }>, proofs: ReadonlyMap<string, DomainRecord> | undefined): void {
    const wanted = new Map(records.map((r) => [r.id, r.value]));
    const verified = (config: Participant) => (proofs ? verifiedDomains(config, proofs) : config.domains);
    // What a participant is served as: its record, and which of its domains are proven.
    const signatureOf = (stored: StoredParticipant) => JSON.stringify([stored, verified(stored.config)]);
    // Removals first, so a domain that moved to another participant is free when that one is applied.
    for (const { config } of registry.participants()) {
      if (wanted.has(config.id)) continue;
      registry.removeParticipant(config.id);
      seenParticipants.delete(config.id);
      log.info({ participant: config.id }, 'participant removed');
    }
    let todo = [...wanted].filter(([id, stored]) => seenParticipants.get(id) !== signatureOf(stored));
    // A domain moving between participants in one change conflicts in one order: retry until no progress.
    while (todo.length > 0) {
      const conflicts: Array<[string, StoredParticipant, DomainConflictError]> = [];
      for (const [id, stored] of todo) {
        const signature = signatureOf(stored);
        try {
          registry.setParticipant(openParticipant(stored, secrets), verified(stored.config));
          seenParticipants.set(id, signature);
          log.info({ participant: id }, 'participant applied');
        } catch (error) {
          if (error instanceof DomainConflictError) {
            conflicts.push([id, stored, error]);
            continue;
          }
          // Refused for good (does not compile here, unreadable secret): the previous version stays in force.
          seenParticipants.set(id, signature);
          log.error({ participant: id, reason: describe(error) }, 'participant from the store cannot be served by this instance; keeping its previous version');
        }
      }
      if (conflicts.length < todo.length) {
        todo = conflicts.map(([id, stored]) => [id, stored]);
        continue;
      }
      // No progress: a swap (each holds what the other wants). An owner whose stored version gave
      // the domain up is taken out so both can be applied; a real conflict stays refused.
      const released = new Set<string>();
      for (const [, , conflict] of conflicts) {
        const ownerWants = wanted.get(conflict.owner);
        if (ownerWants && !ownerWants.config.domains.includes(conflict.domain) && registry.removeParticipant(conflict.owner)) released.add(conflict.owner);
      }
      if (released.size === 0) {
        for (const [id, , conflict] of conflicts) log.error({ participant: id, reason: conflict.message }, 'participant from the store claims a domain another participant owns here; keeping its previous version');
        break;
      }
      todo = [...conflicts.map(([id, stored]) => [id, stored] as [string, StoredParticipant]), ...[...released].filter((id) => !conflicts.some(([c]) => c === id)).map((id) => [id, wanted.get(id)!] as [string, StoredParticipant])];
    }
  }

  function applyClients(records: Array<{ id: string; value: StoredClient }>): void {
    const wanted = new Map(records.map((r) => [r.id, r.value]));
    for (const client of registry.clients()) {
      if (wanted.has(client.client_id)) continue;
      registry.removeClient(client.client_id);
      seenClients.delete(client.client_id);
    }
    for (const [id, stored] of wanted) {
      const signature = JSON.stringify(stored);
      if (seenClients.get(id) === signature) continue;
      seenClients.set(id, signature);
      try {
        registry.setClient(openClient(stored, secrets));
      } catch (error) {
        log.error({ client: id, reason: describe(error) }, 'client from the store cannot be served by this instance; keeping its previous version');
      }
    }
  }

  // ---- seeding -----------------------------------------------------------------------------

  /** Writes the files' entries that the store lacks (it never overwrites a record). */
  async function seedMissing(): Promise<void> {
    for (const participant of options.seed.participants) {
      if (await store.getRecord(PARTICIPANTS, participant.id)) continue;
      // Domain records first: a participant is never read without them.
      await domains?.seed(participant.id, participant.domains);
      await store.putRecord(PARTICIPANTS, participant.id, sealParticipant(participant, secrets));
    }
    for (const client of options.seed.clients) {
      if (!(await store.getRecord(CLIENTS, client.client_id))) await store.putRecord(CLIENTS, client.client_id, sealClient(client, secrets));
    }
  }

  /** On a store never seeded, one instance (the one whose incr returns 1) seeds it. */
  async function seedIfFirst(): Promise<boolean> {
    if ((await store.incr(SEEDED)) !== 1) return false;
    await seedMissing();
    await bump();
    log.info({ participants: options.seed.participants.length, clients: options.seed.clients.length }, 'seeded the store from the configuration files');
    return true;
  }

  // ---- writing -----------------------------------------------------------------------------

  async function bump(): Promise<number> {
    const version = await store.incr(VERSION);
    await store.putRecord(META, 'last-change', { version, at: Date.now() });
    await store.publish(CHANNEL, String(version));
    return version;
  }

  let writes: Promise<unknown> = Promise.resolve();
  /** Writes from this instance one at a time, so two requests cannot both pass the domain check. */
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = writes.then(work, work);
    writes = run.catch(() => {});
    return run;
  }

  /** A write before the seed finished (or on a store seeded by someone who died) must not drop the files' entries. */
  async function ensureSeeded(): Promise<void> {
    if ((await store.getCounter(VERSION)) === 0) await seedMissing();
  }

  async function checkParticipant(participant: Participant): Promise<void> {
    compileMapping(participant.mapping, { participantId: participant.id, domains: participant.domains });
    const owners = new Map<string, string>();
    const upstreams = new Map<string, string>();
    const index = (id: string, config: Pick<Participant, 'domains' | 'upstream'>) => {
      for (const d of config.domains) owners.set(d, id);
      upstreams.set(upstreamIdentity({ id, upstream: config.upstream }), id);
    };
    // The store is the truth when it has a version: this instance may not have seen a change made elsewhere yet.
    if ((await store.getCounter(VERSION)) > 0) {
      for (const { id, value } of await store.listRecords<StoredParticipant>(PARTICIPANTS)) index(id, value.config);
    } else {
      for (const { config } of registry.participants()) index(config.id, config);
    }
    for (const domain of participant.domains) {
      const owner = owners.get(domain);
      if (owner !== undefined && owner !== participant.id) throw new DomainConflictError(domain, owner);
    }
    // One upstream (issuer + client) serves one participant: otherwise idp_hint would let a user pick
    // which participant's identity, domains and mapping their login gets.
    const sharing = upstreams.get(upstreamIdentity(participant));
    if (sharing !== undefined && sharing !== participant.id) {
      const { field, message } = sharedUpstream(participant, sharing);
      throw new AdminError(409, 'upstream_conflict', message, { field });
    }
  }

  async function storedParticipant(id: string): Promise<Participant | undefined> {
    const stored = await store.getRecord<StoredParticipant>(PARTICIPANTS, id);
    if (stored) return openParticipant(stored, secrets);
    return (await store.getCounter(VERSION)) === 0 ? registry.participant(id)?.config : undefined;
  }

  async function storedClient(id: string): Promise<ClientConfig | undefined> {
    const stored = await store.getRecord<StoredClient>(CLIENTS, id);
    if (stored) return openClient(stored, secrets);
    return (await store.getCounter(VERSION)) === 0 ? registry.client(id) : undefined;
  }

  async function commit(): Promise<void> {
    await bump();
    await refresh();
  }

  return {
    get version() {
      return applied;
    },
    refresh,
    checkParticipant,
    storedParticipant,
    storedClient,

    async start() {
      // Subscribe before the first read, so a change made in between is not missed.
      unsubscribe = await store.subscribe(CHANNEL, () => {
        refresh().catch((err) => log.warn({ reason: describe(err) }, 'configuration refresh failed'));
      });
      await refresh();
      timer = setInterval(() => {
        refresh().catch((err) => log.warn({ reason: describe(err) }, 'configuration refresh failed; retrying'));
      }, intervalMs);
      timer.unref();
    },

    async stop() {
      clearInterval(timer);
      timer = undefined;
      await unsubscribe?.().catch(() => {});
      unsubscribe = undefined;
      await inflight?.catch(() => {});
    },

    announce: commit,

    putParticipant: (participant, expect = 'any', by = SYSTEM) =>
      exclusive(async () => {
        await ensureSeeded();
        const previous = await storedParticipant(participant.id);
        expectation('participant', participant.id, previous, expect);
        await checkParticipant(participant);
        const added = participant.domains.filter((d) => !previous?.domains.includes(d));
        const removed = previous?.domains.filter((d) => !participant.domains.includes(d)) ?? [];
        // Claimed before the participant record names them, so it is never read without their records.
        const claimed: string[] = [];
        try {
          for (const domain of added) {
            await domains?.claim(participant.id, [domain], by);
            claimed.push(domain);
          }
          await store.putRecord(PARTICIPANTS, participant.id, sealParticipant(participant, secrets));
        } catch (error) {
          await domains?.release(participant.id, claimed, by).catch((err: unknown) => log.warn({ participant: participant.id, reason: describe(err) }, 'could not release the domains of a refused change; they are removed within the hour'));
          throw error;
        }
        await commit();
        await domains?.release(participant.id, removed, by);
        return previous;
      }),

    removeParticipant: (id, by = SYSTEM) =>
      exclusive(async () => {
        await ensureSeeded();
        const previous = await storedParticipant(id);
        if (!previous) return undefined;
        await store.deleteRecord(PARTICIPANTS, id);
        await commit();
        await domains?.release(id, previous.domains, by);
        return previous;
      }),

    putClient: (client, expect = 'any') =>
      exclusive(async () => {
        await ensureSeeded();
        const previous = await storedClient(client.client_id);
        expectation('client', client.client_id, previous, expect);
        await store.putRecord(CLIENTS, client.client_id, sealClient(client, secrets));
        await commit();
        return previous;
      }),

    removeClient: (id) =>
      exclusive(async () => {
        await ensureSeeded();
        const previous = await storedClient(id);
        if (!previous) return undefined;
        await store.deleteRecord(CLIENTS, id);
        await commit();
        return previous;
      }),
  };
}

/** A reason safe to log: codes and messages, never the failing document (it may hold a secret). */
function describe(error: unknown): string {
  if (error instanceof ConcordError) return `${error.code}: ${error.message}`;
  const issues = (error as { issues?: Array<{ path: PropertyKey[]; message: string }> } | null)?.issues;
  if (Array.isArray(issues)) return issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ');
  return error instanceof Error ? error.message : String(error);
}
