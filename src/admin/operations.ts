import { z } from 'zod';
import { ClientSchema, clientAlgorithmProblems, clientRedirectProblems, ParticipantIdSchema, ParticipantSchema, type ClientConfig, type Participant } from '../config/index.ts';
import type { Actor, DomainRecord, DomainView } from '../domain-proof/index.ts';
import { canonicalDomain } from '../domains/index.ts';
import type { AlgorithmView, KeyView, SigningAlgorithm } from '../keys/index.ts';
import { compileMapping, MappingSchema } from '../mapping/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import type { EndedSession, RevocationReport } from '../sessions/index.ts';
import { diffOf, type AuditObjectType, type AuditRecord } from './audit.ts';
import { idIn, keepClientSecret, keepParticipantSecret, withoutFlags, type AdminDeps } from './context.ts';
import { AdminError, notFound } from './errors.ts';
import { clientView, participantView, type ClientView, type ParticipantView } from './stored.ts';
import { parseWith } from './validation.ts';

/*
 * What an administrator can do, whichever way they ask: the admin API's routes and the console's
 * forms both call these, so the validation, the onboarding checks and the audit entries are the
 * same code (issue 16 item 4). Each change takes the Actor who makes it (the admin token's label,
 * or a console admin's `sub`), recorded in its audit entry. Failures are AdminErrors (with field
 * and issues), MappingErrors, DomainConflictErrors or store errors: the API turns them into JSON,
 * the console into a page.
 */

/** Client ids Concord keeps for itself (the console's built-in client): the API cannot create or change them. */
export const RESERVED_CLIENT_IDS: ReadonlySet<string> = new Set(['concord-console']);

const DryRunSchema = z
  .object({
    claims: z.record(z.string(), z.unknown()),
    /** An unsaved rule set to try instead of the participant's own. */
    mapping: MappingSchema.optional(),
  })
  .strict();

/** A participant as the API shows it: its configuration (secrets masked), the partner's registration, the upstream's last check. */
export type ParticipantStatusView = ParticipantView & {
  registration: { redirectUri: string; postLogoutRedirectUri: string; backchannelLogoutUri: string };
  status: { state: string; checkedAt?: string; code?: string; reason?: string; circuit?: string };
};

export type DryRunResult =
  | { outcome: 'released'; claims: Record<string, unknown> }
  | { outcome: 'rejected'; code: string; rule: { index: number | null; requirement: string | undefined; message?: string; error?: string } };

export interface EndedSessionView {
  id: string;
  user: string;
  participant: string;
  clients: string[];
  grants: number;
}

export interface AdminOperations {
  /** Records one change with its actor and diff (secrets masked). */
  record(by: Actor, action: string, object: { type: AuditObjectType; id: string }, versions?: { before?: unknown; after?: unknown }, result?: Record<string, unknown>): Promise<void>;

  withStatus(config: Participant): ParticipantStatusView;
  listParticipants(): ParticipantStatusView[];
  /** The participant this instance serves; 404 AdminError when unknown. */
  participant(id: string): ParticipantStatusView;
  /** The participant as stored (with its secret): what an edit starts from. */
  storedParticipant(id: string): Promise<Participant>;
  /** Parses (the files' schema), checks mapping, domains and upstream, writes, audits. `body` as POST /participants takes it. */
  createParticipant(body: unknown, by: Actor): Promise<Participant>;
  /** As PUT /participants/{id}: a body without the secret keeps the stored one. */
  updateParticipant(id: string, body: unknown, by: Actor): Promise<Participant>;
  deleteParticipant(id: string, by: Actor): Promise<{ deleted: string; revoked: RevocationReport }>;
  /** Disabling ends the participant's sessions. Returns the participant as it is now. */
  setEnabled(id: string, enabled: boolean, by: Actor): Promise<Participant>;
  revokeParticipantSessions(id: string, by: Actor): Promise<RevocationReport>;
  /** The mapping a login runs (or an unsaved one) over sample claims. `body`: { claims, mapping? }. */
  dryRun(id: string, body: unknown): DryRunResult;
  /** Runs the onboarding check of an upstream (discovery or metadata) on a participant document that need not be saved. */
  checkUpstream(body: unknown): Promise<Participant>;

  domainsOf(id: string): Promise<DomainView[]>;
  /** The record of one of the participant's domains; 404 when it does not list it. */
  domain(id: string, domain: string, by: Actor): Promise<DomainRecord>;
  checkDomain(id: string, domain: string, by: Actor): Promise<DomainView>;

  listClients(): ClientView[];
  createClient(body: unknown, by: Actor): Promise<ClientConfig>;
  updateClient(id: string, body: unknown, by: Actor): Promise<ClientConfig>;
  deleteClient(id: string, by: Actor): Promise<void>;

  /** Every published key (reloaded from the store first: another instance may have rotated). */
  listKeys(): Promise<KeyView[]>;
  /** Per algorithm which key signs, which is next, which retire (as of the last listKeys or rotation); and the access tokens' algorithm. */
  keyAlgorithms(): { algorithms: AlgorithmView[]; accessTokenAlgorithm: SigningAlgorithm };
  /** A new key for every offered algorithm, all signing after keys.activationDelay; in the order of keys.algorithms. */
  rotateKeys(by: Actor): Promise<KeyView[]>;

  /** Undefined when there is no such session (or the id cannot be one). */
  endSession(id: string, by: Actor): Promise<EndedSessionView | undefined>;
  /** Throws AdminError 400 when `user` is no account id. */
  revokeUserSessions(user: string, by: Actor): Promise<EndedSessionView[]>;
}

/** Account ids are `{participantId}:{upstream sub}`; a sub is at most 255 characters (OIDC Core 2). */
export const USER_ID = /^[a-z0-9][a-z0-9-]{0,62}:.{1,255}$/su;
export const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

const endedView = (ended: EndedSession): EndedSessionView => ({ id: ended.id, user: ended.accountId, participant: ended.participantId, clients: ended.clients, grants: ended.grants });

export function adminOperations(deps: AdminDeps): AdminOperations {
  const { registry, sync, audit, sessions, keys, domains } = deps;
  const participantObject = (id: string) => ({ type: 'participant' as const, id });
  const clientObject = (id: string) => ({ type: 'client' as const, id });

  async function record(by: Actor, action: string, object: { type: AuditObjectType; id: string }, versions?: { before?: unknown; after?: unknown }, result?: Record<string, unknown>) {
    const entry: Omit<AuditRecord, 'at'> = {
      actor: by.actor,
      action,
      object,
      ...(versions ? { diff: diffOf(versions.before, versions.after) } : {}),
      ...(result ? { result } : {}),
      ...(by.requestId === undefined ? {} : { requestId: by.requestId }),
    };
    await audit.record(entry);
  }

  /**
   * A participant as GET shows it: its configuration (secrets masked), what the last check of its
   * upstream found, and what the partner registers for Concord's client there (read-only): the
   * callback, the return after its logout, and where it sends logout tokens (OIDC Back-Channel Logout).
   */
  function withStatus(config: Participant): ParticipantStatusView {
    const status = deps.upstreamStatus(config.id);
    const broker = `${deps.settings.issuer}/broker/${config.id}`;
    return {
      ...participantView(config),
      registration: { redirectUri: `${broker}/callback`, postLogoutRedirectUri: `${broker}/logged-out`, backchannelLogoutUri: `${broker}/backchannel-logout` },
      status: !config.enabled
        ? { state: 'disabled' }
        : {
            state: status?.state ?? 'unknown',
            ...(status?.lastCheck ? { checkedAt: status.lastCheck.toISOString() } : {}),
            ...(status?.code ? { code: status.code } : {}),
            ...(status?.reason ? { reason: status.reason } : {}),
            ...(status ? { circuit: status.circuit } : {}),
          },
    };
  }

  /** Cheap local checks first, then the network: a typo in a rule fails without calling the upstream. */
  async function validate(participant: Participant): Promise<void> {
    await sync.checkParticipant(participant);
    await deps.checkUpstream(participant);
  }

  async function existing(id: string): Promise<Participant> {
    const current = await sync.storedParticipant(id);
    if (!current) throw notFound('participant', id);
    return current;
  }

  /**
   * The deployment's rules on clients, as the config loader applies them: http redirect URIs
   * (clients.allowHttpRedirectUris) and the signing algorithms it offers (keys.algorithms).
   */
  function checkRedirectPolicy(client: ClientConfig): void {
    const [problem] = [...clientRedirectProblems(client, deps.settings.clients.allowHttpRedirectUris), ...clientAlgorithmProblems(client, deps.settings.keys.algorithms)];
    if (problem) throw new AdminError(422, 'invalid_request', `invalid client: ${problem.field}: ${problem.message}`, { field: problem.field });
  }

  /** The files' cross-check, at the API: a client may only name participants that exist. */
  async function checkParticipants(client: ClientConfig): Promise<void> {
    for (const [i, id] of (client.participants ?? []).entries()) {
      if (!registry.participant(id) && !(await sync.storedParticipant(id))) {
        throw new AdminError(422, 'invalid_request', `participants.${i}: no participant "${id}"`, { field: `participants.${i}` });
      }
    }
  }

  function checkReserved(clientId: string): void {
    if (RESERVED_CLIENT_IDS.has(clientId)) throw new AdminError(409, 'reserved_client_id', `client_id "${clientId}" is Concord's own (the console's built-in client)`, { field: 'client_id' });
  }

  /** Records of the domains participants list now (not orphans of an unfinished change). */
  async function claimedRecords(): Promise<DomainRecord[]> {
    const byName = (a: DomainRecord, b: DomainRecord) => a.participant.localeCompare(b.participant) || a.domain.localeCompare(b.domain);
    return (await domains.list()).filter((r) => registry.participant(r.participant)?.config.domains.includes(r.domain)).sort(byName);
  }

  async function domainRecord(id: string, name: string, by: Actor): Promise<DomainRecord> {
    const active = registry.participant(id);
    if (!active) throw notFound('participant', id);
    const domain = canonicalDomain(name);
    if (domain === undefined || !active.config.domains.includes(domain)) throw notFound(`domain of participant "${id}"`, name);
    const found = await domains.get(domain);
    if (found && found.participant === id) return found;
    if (found) throw new DomainConflictError(domain, found.participant);
    // Listed without a record (an instance of an older version added it): recorded now, pending.
    const [claimed] = await domains.claim(id, [domain], by);
    return claimed!;
  }

  return {
    record,
    withStatus,
    listParticipants: () => registry.participants().map((p) => withStatus(p.config)).sort((a, b) => a.id.localeCompare(b.id)),
    participant(id) {
      const active = registry.participant(id);
      if (!active) throw notFound('participant', id);
      return withStatus(active.config);
    },
    storedParticipant: existing,

    async createParticipant(input, by) {
      const body = withoutFlags(input);
      const participant = parseWith(ParticipantSchema, body, { what: 'participant', participant: idIn(body, 'id') ?? '?' });
      if (await sync.storedParticipant(participant.id)) {
        throw new AdminError(409, 'already_exists', `participant "${participant.id}" already exists; change it with PUT /admin/v1/participants/${participant.id}`, { field: 'id' });
      }
      await validate(participant);
      await sync.putParticipant(participant, 'new', by);
      await record(by, 'participant.create', participantObject(participant.id), { after: participant });
      return participant;
    },

    async updateParticipant(id, raw, by) {
      const bodyId = idIn(raw, 'id');
      if (bodyId !== undefined && bodyId !== id) throw new AdminError(422, 'invalid_request', `id: "${bodyId}" does not match the URL's "${id}"`, { field: 'id' });
      const current = await existing(id);
      const body = keepParticipantSecret(typeof raw === 'object' && raw !== null ? { ...raw, id } : raw, current);
      const participant = parseWith(ParticipantSchema, body, { what: 'participant', participant: id });
      await validate(participant);
      const previous = await sync.putParticipant(participant, 'existing', by);
      await record(by, 'participant.update', participantObject(id), { before: previous, after: participant });
      return participant;
    },

    async deleteParticipant(id, by) {
      const previous = await sync.removeParticipant(id, by);
      if (!previous) throw notFound('participant', id);
      // Removed first: from here no instance starts a login through it, so no new session escapes the
      // revocation. Every session ends as any other does: its services are sent logout tokens.
      const revoked = await sessions.endAllOfParticipant(id, 'participant_removed');
      await record(by, 'participant.delete', participantObject(id), { before: previous }, { revoked });
      return { deleted: id, revoked };
    },

    async setEnabled(id, enabled, by) {
      const current = await existing(id);
      if (current.enabled === enabled) return current;
      const next = { ...current, enabled };
      await sync.putParticipant(next, 'existing', by);
      // Disabled: its users' sessions end (findAccount already refuses them everywhere), and their services are told.
      const revoked = enabled ? undefined : await sessions.endAllOfParticipant(id, 'participant_disabled');
      await record(by, enabled ? 'participant.enable' : 'participant.disable', participantObject(id), { before: current, after: next }, revoked === undefined ? undefined : { revoked });
      return next;
    },

    // Also for an id already deleted: finishing an offboarding whose revocation was interrupted.
    async revokeParticipantSessions(rawId, by) {
      const id = parseWith(z.object({ id: ParticipantIdSchema }), { id: rawId }).id;
      const revoked = await sessions.endAllOfParticipant(id, 'participant_revoked');
      await record(by, 'participant.revoke_sessions', participantObject(id), undefined, { revoked });
      return revoked;
    },

    dryRun(id, body) {
      const request = parseWith(DryRunSchema, body, { what: 'dry-run request', participant: id });
      const active = registry.participant(id);
      if (!active) throw notFound('participant', id);
      // The same compiled apply() a real login runs; an unsaved rule set is compiled the same way.
      const mapping = request.mapping === undefined ? active.mapping : compileMapping(request.mapping, { participantId: id, domains: [...active.verifiedDomains] });
      const outcome = mapping.apply(request.claims);
      return outcome.ok
        ? { outcome: 'released', claims: outcome.claims }
        : {
            outcome: 'rejected',
            // mapping_rejected (a require rule said no), or the limit that stopped the mapping (claims_too_deep, ...).
            code: outcome.code,
            rule: {
              index: outcome.ruleIndex,
              requirement: outcome.requirement,
              ...(outcome.message === undefined ? {} : { message: outcome.message }),
              ...(outcome.error === undefined ? {} : { error: outcome.error }),
            },
          };
    },

    async checkUpstream(body) {
      const participant = parseWith(ParticipantSchema, withoutFlags(body), { what: 'participant', participant: idIn(body, 'id') ?? '?' });
      await deps.checkUpstream(participant);
      return participant;
    },

    domainsOf: async (id) => {
      if (!registry.participant(id)) throw notFound('participant', id);
      return (await claimedRecords()).filter((r) => r.participant === id).map(domains.view);
    },
    domain: domainRecord,
    async checkDomain(id, name, by) {
      const found = await domainRecord(id, name, by);
      return domains.view(await domains.check(found.domain, by));
    },

    listClients: () => registry.clients().map(clientView).sort((a, b) => a.client_id.localeCompare(b.client_id)),

    async createClient(input, by) {
      const client = parseWith(ClientSchema, withoutFlags(input), { what: 'client' });
      checkReserved(client.client_id);
      checkRedirectPolicy(client);
      await checkParticipants(client);
      await sync.putClient(client, 'new');
      await record(by, 'client.create', clientObject(client.client_id), { after: client });
      return client;
    },

    async updateClient(id, raw, by) {
      checkReserved(id);
      const bodyId = idIn(raw, 'client_id');
      if (bodyId !== undefined && bodyId !== id) throw new AdminError(422, 'invalid_request', `client_id: "${bodyId}" does not match the URL's "${id}"`, { field: 'client_id' });
      const current = await sync.storedClient(id);
      if (!current) throw notFound('client', id);
      const body = keepClientSecret(typeof raw === 'object' && raw !== null ? { ...raw, client_id: id } : raw, current);
      const client = parseWith(ClientSchema, body, { what: 'client' });
      checkRedirectPolicy(client);
      await checkParticipants(client);
      const previous = await sync.putClient(client, 'existing');
      await record(by, 'client.update', clientObject(id), { before: previous, after: client });
      return client;
    },

    async deleteClient(id, by) {
      checkReserved(id);
      const previous = await sync.removeClient(id);
      if (!previous) throw notFound('client', id);
      await record(by, 'client.delete', clientObject(id), { before: previous });
    },

    async listKeys() {
      // Another instance may have rotated since this one last looked.
      await keys.reload();
      return keys.views();
    },

    keyAlgorithms() {
      return { algorithms: keys.algorithmViews(), accessTokenAlgorithm: deps.settings.keys.accessTokenAlgorithm };
    },

    async rotateKeys(by) {
      const added = await keys.rotate();
      // The audit names the access-token algorithm's key first (the one key of earlier releases), then all.
      const key = added.find((k) => k.alg === deps.settings.keys.accessTokenAlgorithm) ?? added[0]!;
      await record(by, 'keys.rotate', { type: 'keys', id: key.kid }, undefined, {
        kid: key.kid,
        alg: key.alg,
        activatesAt: key.activatesAt,
        keys: added.map((k) => ({ kid: k.kid, alg: k.alg })),
      });
      return added;
    },

    async endSession(id, by) {
      if (!SESSION_ID.test(id)) return undefined;
      const ended = await sessions.end(id, 'admin');
      if (!ended) return undefined;
      await record(by, 'session.end', { type: 'session', id }, undefined, { user: ended.accountId, clients: ended.clients, grants: ended.grants });
      return endedView(ended);
    },

    async revokeUserSessions(user, by) {
      if (!USER_ID.test(user)) throw new AdminError(400, 'invalid_request', 'a user id is {participantId}:{upstream sub}', { field: 'userId' });
      const ended = await sessions.endAllOfAccount(user, 'admin');
      await record(by, 'user.revoke_sessions', { type: 'user', id: user }, undefined, { sessions: ended.length, grants: ended.reduce((n, e) => n + e.grants, 0) });
      return ended.map(endedView);
    },
  };
}
