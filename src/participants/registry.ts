import { EventEmitter } from 'node:events';
import type { ClientConfig, Participant } from '../config/index.ts';
import { ConcordError } from '../errors.ts';
import { canonicalDomain } from '../domains/index.ts';
import { compileMapping, type CompiledMapping } from '../mapping/index.ts';

/** A participant ready for logins: its configuration and its mapping, compiled once. */
export interface ActiveParticipant {
  readonly config: Participant;
  readonly mapping: CompiledMapping;
  /**
   * The domains that route its logins and count as its own when an email is released: its proven
   * ones (domain-proof/). The others are claimed (no one else may take them) but route nothing.
   */
  readonly verifiedDomains: readonly string[];
}

export type RegistryEvent =
  | { kind: 'participant'; id: string; action: 'set' | 'removed' }
  | { kind: 'client'; id: string; action: 'set' | 'removed' };

/**
 * The participants and clients this instance serves, in memory for every request to read without I/O.
 * A participant is swapped in only after its mapping compiled, so a bad change leaves the previous
 * version in force. Keeping it in step with the store is the sync's job (admin/sync.ts).
 */
export class Registry extends EventEmitter<{ change: [RegistryEvent] }> {
  readonly #participants = new Map<string, ActiveParticipant>();
  readonly #byDomain = new Map<string, string>();
  readonly #clients = new Map<string, ClientConfig>();
  /** Concord's own clients (the console's): not in the store, not listed, not replaced by the sync. */
  readonly #builtIn = new Map<string, ClientConfig>();

  /**
   * Compiles and activates a participant; throws (MappingError, DomainConflictError) and changes
   * nothing on failure. `verifiedDomains` (default: all of them) are those that route logins; the
   * mapping's email policy counts only those as the participant's own.
   */
  setParticipant(config: Participant, verifiedDomains: readonly string[] = config.domains): ActiveParticipant {
    for (const domain of config.domains) {
      const owner = this.#byDomain.get(domain);
      if (owner && owner !== config.id) throw new DomainConflictError(domain, owner);
    }
    const verified = config.domains.filter((domain) => verifiedDomains.includes(domain));
    const active: ActiveParticipant = { config, verifiedDomains: verified, mapping: compileMapping(config.mapping, { participantId: config.id, domains: verified }) };
    this.#unindex(config.id);
    this.#participants.set(config.id, active);
    for (const domain of config.domains) this.#byDomain.set(domain, config.id);
    this.emit('change', { kind: 'participant', id: config.id, action: 'set' });
    return active;
  }

  removeParticipant(id: string): boolean {
    const existed = this.#unindex(id);
    this.#participants.delete(id);
    if (existed) this.emit('change', { kind: 'participant', id, action: 'removed' });
    return existed;
  }

  participant(id: string): ActiveParticipant | undefined {
    return this.#participants.get(id);
  }

  /**
   * The participant whose verified domain this is. Exact match on the whole domain in canonical
   * form (domains/index.ts: `ACME.example.` and `acme.example` are one domain, `bücher.example` is
   * `xn--bcher-kva.example`); never a suffix: `evil-acme.example` never matches `acme.example`. A
   * domain claimed but not proven (pending, suspended) routes nothing: see domainClaim.
   */
  participantForDomain(domain: string): ActiveParticipant | undefined {
    const claim = this.domainClaim(domain);
    return claim?.verified ? claim.participant : undefined;
  }

  /** The participant that claims a domain, proven or not (home-realm discovery says which it is). */
  domainClaim(domain: string): { participant: ActiveParticipant; verified: boolean } | undefined {
    const canonical = canonicalDomain(domain);
    const id = canonical === undefined ? undefined : this.#byDomain.get(canonical);
    const participant = id === undefined ? undefined : this.#participants.get(id);
    return participant && { participant, verified: participant.verifiedDomains.includes(canonical!) };
  }

  participants(): ActiveParticipant[] {
    return [...this.#participants.values()];
  }

  setClient(client: ClientConfig): void {
    this.#clients.set(client.client_id, client);
    this.emit('change', { kind: 'client', id: client.client_id, action: 'set' });
  }

  removeClient(id: string): boolean {
    const existed = this.#clients.delete(id);
    if (existed) this.emit('change', { kind: 'client', id, action: 'removed' });
    return existed;
  }

  /** A built-in client (the console's) wins over a stored one of the same id; the admin API refuses such ids. */
  client(id: string): ClientConfig | undefined {
    return this.#builtIn.get(id) ?? this.#clients.get(id);
  }

  /** Registers one of Concord's own clients (see src/console). `clients()` does not list them. */
  setBuiltInClient(client: ClientConfig): void {
    this.#builtIn.set(client.client_id, client);
  }

  clients(): ClientConfig[] {
    return [...this.#clients.values()];
  }

  #unindex(id: string): boolean {
    const previous = this.#participants.get(id);
    if (!previous) return false;
    for (const domain of previous.config.domains) {
      if (this.#byDomain.get(domain) === id) this.#byDomain.delete(domain);
    }
    return true;
  }
}

export class DomainConflictError extends ConcordError {
  readonly domain: string;
  readonly owner: string;
  constructor(domain: string, owner: string) {
    super('domain_conflict', `domain ${domain} is already owned by participant "${owner}"`, { status: 409, expose: true });
    this.domain = domain;
    this.owner = owner;
  }
}
