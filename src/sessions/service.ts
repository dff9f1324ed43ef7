import type { Logger } from '../observability/index.ts';
import type { ActiveParticipant, Registry } from '../participants/index.ts';
import type { SecretBox } from '../secrets/index.ts';
import { destroyedHere, requestLocal, type AdapterPayload, type Store } from '../store/index.ts';
import type { Connector } from '../upstream/index.ts';
import type { LogoutNotice } from './delivery.ts';
import { grantsOf, liveSessions, sessionsOf } from './oidc-index.ts';
import { HELD_LOGIN, SessionStore, type PendingSessionLogin, type SessionClient, type SessionRecord, type TakenLogin, type UpstreamSessionState } from './records.ts';
import { recheckForRefresh, type RefreshDecision } from './recheck.ts';

/** Why a session ended: a log field, a metric label and the admin API's word for it. */
export type SessionEndCause =
  /** The user signed out at a service (RP-initiated logout). */
  | 'rp_logout'
  /** The partner's IdP said its session ended (its back-channel logout, or a SAML LogoutRequest). */
  | 'upstream_logout'
  /** A re-check found the user or the grant gone at the partner's IdP. */
  | 'upstream_revoked'
  /** A re-check's fresh claims failed the participant's mapping (a `require` rule). */
  | 'mapping_rejected'
  /** It could not be confirmed upstream for longer than the participant's `session.maxAge`. */
  | 'max_age'
  | 'participant_disabled'
  | 'participant_removed'
  /** POST /admin/v1/participants/{id}/revoke-sessions. */
  | 'participant_revoked'
  /** An administrator ended it (one session, or all of a user's). */
  | 'admin';

export const SESSION_END_CAUSES: readonly SessionEndCause[] = [
  'rp_logout', 'upstream_logout', 'upstream_revoked', 'mapping_rejected', 'max_age', 'participant_disabled', 'participant_removed', 'participant_revoked', 'admin',
];

/** What ending one session did. */
export interface EndedSession {
  /** The session's id (oidc-provider's Session uid). */
  id: string;
  accountId: string;
  participantId: string;
  /** The services it had; each with a back-channel logout URI is sent a logout token. */
  clients: string[];
  /** Grants revoked, with every refresh token and code issued under them. */
  grants: number;
}

/** What ending every session of a participant did (the shape of the admin API's `revoked`). */
export interface RevocationReport {
  accounts: number;
  sessions: number;
  grants: number;
}

/** Which Concord sessions an upstream logout names: see Sessions.endByUpstream. */
export interface UpstreamSessionTarget {
  participantId: string;
  /** OIDC `sub`, SAML NameID: the upstream subject, as the connector's identity named it at login. */
  subject?: string;
  /** OIDC `sid`, SAML SessionIndex: the upstream session, as the connector's identity named it at login (`sessionId`). */
  sessionId?: string;
}

/** How accounts are named and indexed (provider/accounts.ts AccountStore). */
export interface AccountIndex {
  /** `{participantId}:{upstream subject}`. */
  idOf(participantId: string, upstreamSubject: string): string;
  /** The participant of an account id. */
  participantOf(accountId: string): string;
  idsOfParticipant(participantId: string): Promise<string[]>;
  remove(accountId: string): Promise<void>;
  /** Forgets the participant's index of accounts (once they are removed). */
  forgetParticipant(participantId: string): Promise<void>;
}

export interface SessionsOptions {
  store: Store;
  secrets: SecretBox;
  registry: Registry;
  /** The connector of a participant (participants/ ConnectorPool, behind its circuit breaker). */
  connector: (participant: ActiveParticipant) => Connector;
  accounts: AccountIndex;
  /** Queues logout tokens for the services of an ended session (LogoutDelivery.enqueue). */
  notify: (notices: LogoutNotice[]) => Promise<void>;
  /** How long records live: the longest grant's lifetime, seconds. */
  ttlSeconds: number;
  /** An upstream call's timeout, milliseconds: how long a re-check may hold its session's lease. */
  upstreamTimeoutMs: number;
  log: Logger;
  onEnded?: (participantId: string, cause: SessionEndCause) => void;
  onRecheck?: (participantId: string, outcome: RefreshDecision['outcome']) => void;
  /** Epoch milliseconds. */
  now?: () => number;
}

/**
 * The login an interaction carried was bound by another request (two resumes of one interaction at
 * once; Sessions.bind): this request must answer no authorization (the expired page).
 */
export class HeldLoginTaken extends Error {
  constructor(interactionUid: string) {
    super(`the login of interaction ${interactionUid} was bound by another request`);
    this.name = 'HeldLoginTaken';
  }
}

/** The sealed login an interaction's result carries (HELD_LOGIN), if any. */
function heldIn(result: unknown): string | undefined {
  const held = result !== null && typeof result === 'object' ? (result as Record<string, unknown>)[HELD_LOGIN] : undefined;
  return typeof held === 'string' ? held : undefined;
}

/** Sessions read ahead in a request (store requestLocal): uid -> the read, taken by the first get(). */
const readsAhead = requestLocal(() => new Map<string, Promise<SessionRecord | undefined>>());

/**
 * Held logins taken ahead in a request (store requestLocal): interaction uid -> the take, whoever's
 * login it holds; bind() uses it, and settleTakes() holds again what no bind used.
 */
const takesAhead = requestLocal(() => new Map<string, Promise<TakenLogin | undefined>>());

/** Sessions oidc-provider made in a request (a new uid, never saved, store requestLocal): they have no record to read. */
const madeInRequest = requestLocal(() => new Set<string>());

/** oidc-provider's Session payload, as far as ending one needs it. */
interface LiveSession extends AdapterPayload {
  jti: string;
  uid?: string;
  accountId?: string;
  authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;
}

/**
 * Concord sessions: what Concord keeps of each upstream login (records.ts), and the one path by which
 * a session ends, whatever ends it. Ending a session revokes its grants (refresh tokens and codes with
 * them), destroys oidc-provider's session (its cookie signs no one in), removes what Concord kept, and
 * queues a logout token for each of its services that registered a `backchannel_logout_uri`.
 * Sessions from before per-session state existed (oidc-provider's Session alone) end the same way.
 */
export class Sessions {
  readonly #opts: SessionsOptions;
  readonly #records: SessionStore;
  readonly #now: () => number;

  constructor(options: SessionsOptions) {
    this.#opts = options;
    this.#records = new SessionStore(options.store, options.secrets, options.ttlSeconds);
    this.#now = options.now ?? Date.now;
  }

  /** How long session records and their indexes live: the longest grant's lifetime, seconds. */
  get ttlSeconds(): number {
    return this.#opts.ttlSeconds;
  }

  /** Epoch seconds. */
  nowSeconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  // ---- a login becomes a session ----------------------------------------------------------------

  /**
   * What an upstream login brought (claims, upstream session id, what its logout and re-checks need),
   * sealed for the interaction it finishes: the callback puts it in the interaction's result, under
   * HELD_LOGIN (`{ login, ..., held }`), which carries it to the resume, where bind() gives it to the
   * session oidc-provider put the login in. No key of its own: the interaction's save and read carry it.
   * The form of the previous release (the upstream state carried in it, `z2`), still bound; the
   * callback now seals with holdAtCallback.
   */
  sealHeld(interactionUid: string, login: PendingSessionLogin): string {
    return this.#records.sealHeld(interactionUid, login);
  }

  /**
   * As sealHeld, with the login's upstream state (its tokens, a kilobyte or so) written once, sealed
   * under a key of its own for `ttlSeconds` (the interaction's lifetime), and only its id in the held
   * login: the session bind() gives the login to takes the state over where it is (its lifetime
   * extended; SessionStore.holdAtCallback). `written`: the state's write, issued now, to be awaited
   * with the callback's other writes (the interaction's result among them).
   */
  holdAtCallback(interactionUid: string, login: PendingSessionLogin, ttlSeconds: number): { held: string; written: Promise<void> } {
    return this.#records.holdAtCallback(interactionUid, login, ttlSeconds);
  }

  /**
   * Keeps a login under its own key (`session-pending:{interaction uid}`), as earlier versions did
   * at the callback; bind() takes such a login when the interaction's result does not carry one.
   */
  hold(interactionUid: string, login: PendingSessionLogin, ttlSeconds: number): Promise<void> {
    return this.#records.hold(interactionUid, login, ttlSeconds);
  }

  /**
   * Gives the login held for an interaction to the oidc-provider session it landed in (at the resume
   * of the authorization request), if that session is now signed in as the login's account.
   * `client`: the service this request authorizes, recorded with it (as addClient would).
   * `result`: the resumed interaction's result (oidc-provider's `ctx.oidc.result`): the login it
   * carries (HELD_LOGIN) is bound only by the request whose destroy of that interaction found it
   * (store destroyedHere: of two resumes of one interaction, one), so it is used once, as a take of
   * its own key was. A login result without one: the login held under its own key (an earlier
   * version's callback, heldApart). Without a result (an interaction not resumed here): that key too.
   */
  async bind(interactionUid: string, session: { uid: string; accountId?: string | undefined }, client?: SessionClient, result?: unknown): Promise<SessionRecord | undefined> {
    this.#forgetReadsAhead();
    if (!session.accountId) return undefined;
    const carried = heldIn(result);
    if (carried !== undefined) return this.#bindCarried(interactionUid, session as { uid: string; accountId: string }, carried, client);
    const login = result === undefined || this.heldApart(result) ? await this.#take(interactionUid, session.accountId) : undefined;
    if (!login) return undefined;
    return this.#records.put(session.uid, login, login.confirmedAt, client);
  }

  /**
   * Binds the login an interaction's result carries, when this request destroyed that interaction
   * and the login is the session's account's. The record's writes are issued at once (they leave
   * with the request's other writes, as a login taken ahead did), and the destroy's answer, which
   * comes in the same round trip or before, decides: when another request's destroy found the
   * interaction first (two resumes of one interaction at once), what this one wrote for a session
   * that had no record is deleted again and it throws HeldLoginTaken before anything is answered:
   * its caller answers no code, and the login is bound once. (Into a session that had a record, both
   * resumes bind the same login to the same session: the one record either writes.)
   */
  async #bindCarried(interactionUid: string, session: { uid: string; accountId: string }, sealed: string, client: SessionClient | undefined): Promise<SessionRecord | undefined> {
    const destroyed = destroyedHere('Interaction', interactionUid);
    if (destroyed === undefined) return undefined;
    const login = this.#records.openHeld(interactionUid, sealed);
    if (login?.accountId !== session.accountId) return undefined;
    const fresh = this.#records.knownAbsent(session.uid);
    const [record, first] = await Promise.all([this.#records.put(session.uid, login, login.confirmedAt, client), destroyed]);
    if (!first) {
      if (fresh) await this.#records.unput(session.uid);
      throw new HeldLoginTaken(interactionUid);
    }
    return record;
  }

  /**
   * Whether the resume of an interaction with this result may find its login under the key of its
   * own (`session-pending:{uid}`, an earlier version's callback): a login result that carries none
   * (HELD_LOGIN). Not a result that carries one, nor one of another prompt (a consent's, which
   * follows the login's resume, where the login was bound).
   */
  heldApart(result: unknown): boolean {
    const r = result as { login?: unknown; consent?: unknown } | undefined;
    return r?.login !== undefined && r.consent === undefined && heldIn(result) === undefined;
  }

  /** The login held for an interaction, when it is `accountId`'s: the take started ahead in this request, or one now; another's is held again. */
  async #take(interactionUid: string, accountId: string): Promise<PendingSessionLogin | undefined> {
    const started = takesAhead.peek();
    const ahead = started?.get(interactionUid);
    if (!ahead) return this.#records.take(interactionUid, accountId);
    started!.delete(interactionUid);
    const taken = await ahead;
    if (!taken) return undefined;
    if (taken.login.accountId === accountId) return taken.login;
    await this.#records.putBack(interactionUid, taken);
    return undefined;
  }

  /** Records that a service got an authorization response in a session (its sid and grant). */
  async addClient(uid: string, client: SessionClient): Promise<void> {
    this.#forgetReadsAhead();
    await this.#records.addClient(uid, client);
  }

  // ---- reading ----------------------------------------------------------------------------------

  /**
   * The session, or undefined. A read started by readAhead in this request answers the first get of
   * it: that one may hold only the services kept in its record (`clientsInRecordOnly`; clientsOf).
   */
  get(uid: string): Promise<SessionRecord | undefined> {
    if (madeInRequest.peek()?.has(uid)) return Promise.resolve(undefined);
    const started = readsAhead.peek();
    const read = started?.get(uid);
    if (read) {
      started!.delete(uid);
      return read;
    }
    return this.#records.get(uid);
  }

  /**
   * Notes that oidc-provider has just made this session (a new uid, never saved: the browser had no
   * session, or one that is gone): it has no record, so get() answers without reading the store, and
   * the bind that gives it its login writes the record without reading it first. Until the request's
   * next write of a session.
   */
  madeNow(uid: string): void {
    const made = madeInRequest.get();
    if (!made) return;
    made.add(uid);
    this.#records.markAbsent(uid);
  }

  /**
   * Starts reading a session now, for the first get() of it later in this request: a code or
   * refresh token names its session, which findAccount reads once oidc-provider has checked the
   * token and its grant; read with the grant, it costs no round trip of its own. Outside a request,
   * nothing. Any write of a session in the request drops what was read ahead.
   */
  readAhead(uid: string): void {
    const started = readsAhead.get();
    if (!started || started.has(uid)) return;
    // For findAccount: the claims, and the record's own services (clientsOf reads the others when asked).
    const read = this.#records.get(uid, { addedClients: false });
    read.catch(() => {}); // the get() that takes it sees the failure
    started.set(uid, read);
  }

  /**
   * Starts taking the login held for an interaction now, for bind() later in this request: at the
   * resume that finishes a login, as the request begins (the interaction's uid is in its path, and
   * its resume cookie names it), so the take leaves with oidc-provider's read of the interaction
   * instead of in a round trip of its own. The take is the same single-use GETDEL bind makes; what
   * it takes is checked by bind (another account's login is held again), and settleTakes() holds
   * again what no bind used. Outside a request, nothing.
   */
  takeAhead(interactionUid: string): void {
    const started = takesAhead.get();
    if (!started || started.has(interactionUid)) return;
    const take = this.#records.takeHeld(interactionUid);
    take.catch(() => {}); // the bind that uses it sees the failure
    started.set(interactionUid, take);
  }

  /**
   * Holds again the logins taken ahead in this request that no bind used (the resume ended another
   * way: an error, a session signed in as someone else to end first), for the rest of their
   * lifetime, so the interaction can still finish. Called as the request ends.
   */
  async settleTakes(): Promise<void> {
    const started = takesAhead.peek();
    if (!started?.size) return;
    const left = [...started];
    started.clear();
    await Promise.all(
      left.map(async ([interactionUid, take]) => {
        const taken = await take.catch(() => undefined);
        if (taken) await this.#records.putBack(interactionUid, taken);
      }),
    );
  }

  /** A write of this request: sessions read ahead are read again, and those made in it are records now, or may be. */
  #forgetReadsAhead(): void {
    readsAhead.clear();
    madeInRequest.clear();
  }

  /** Every service of a session, reading those added after its record when `record` holds only the record's (clientsInRecordOnly). */
  clientsOf(record: SessionRecord): Promise<SessionClient[]> {
    return this.#records.clientsOf(record);
  }

  /** The sealed part of a session (what its upstream logout and re-checks need). */
  upstream(uid: string): Promise<UpstreamSessionState> {
    return this.#records.upstream(uid);
  }

  /** When a session was last refreshed, epoch seconds. */
  lastRefreshed(uid: string): Promise<number | undefined> {
    return this.#records.lastRefreshed(uid);
  }

  /** An account's sessions, oldest first. */
  async ofAccount(accountId: string): Promise<SessionRecord[]> {
    const records = await Promise.all((await this.#records.ofAccount(accountId)).map((uid) => this.#records.get(uid)));
    return records.filter((r): r is SessionRecord => r !== undefined && r.accountId === accountId).sort((a, b) => a.startedAt - b.startedAt);
  }

  // ---- refresh ----------------------------------------------------------------------------------

  /**
   * What a refresh of `record` may do now: go on (with the claims confirmed upstream when a re-check
   * was due), or not, by the participant's `session.*` policy (recheck.ts). A session a re-check finds
   * gone has ended (services told) by the time this answers.
   */
  async forRefresh(record: SessionRecord, participant: ActiveParticipant): Promise<RefreshDecision> {
    this.#forgetReadsAhead();
    const decision = await recheckForRefresh(record, participant, {
      records: this.#records,
      connector: this.#opts.connector(participant),
      nowSeconds: () => this.nowSeconds(),
      leaseSeconds: Math.ceil(this.#opts.upstreamTimeoutMs / 1000) * 3 + 5,
      log: this.#opts.log,
    });
    this.#opts.onRecheck?.(participant.config.id, decision.outcome);
    if (decision.kind === 'ended') await this.end(record.id, decision.cause);
    else if (decision.kind === 'continue') await this.#records.seen(record.id, this.nowSeconds());
    return decision;
  }

  /**
   * Whether a session may still sign in to a service without a refresh (single sign-on at /auth):
   * one whose upstream cannot confirm it any more must not outlive `session.maxAge`.
   */
  usable(record: SessionRecord, participant: ActiveParticipant): boolean {
    const { maxAge, revalidateAfter } = participant.config.session;
    const rechecked = revalidateAfter !== 'off' && this.#opts.connector(participant).refresh !== undefined;
    return rechecked || this.nowSeconds() - record.confirmedAt < maxAge;
  }

  // ---- ending -----------------------------------------------------------------------------------

  /**
   * Ends one session: its grants are revoked (refresh tokens and codes with them), oidc-provider's
   * session is destroyed, what Concord kept of it is removed, and every service of it that registered
   * a `backchannel_logout_uri` is queued a logout token. Undefined when no such session exists (any
   * more). Idempotent. With `ofAccount`, only a session of that account is ended (an index may
   * still name a session that another account signed in to since).
   */
  async end(uid: string, cause: SessionEndCause, ofAccount?: string): Promise<EndedSession | undefined> {
    this.#forgetReadsAhead();
    const [record, live] = await Promise.all([this.#records.get(uid), this.#liveSession(uid)]);
    if (!record && !live) return undefined;
    const accountId = record?.accountId ?? live!.accountId;
    if (!accountId || (ofAccount !== undefined && accountId !== ofAccount)) return undefined;
    const clients = new Map<string, SessionClient[]>();
    const add = (client: SessionClient) => clients.set(client.clientId, [...(clients.get(client.clientId) ?? []), client]);
    for (const client of record?.clients ?? []) add(client);
    for (const [clientId, auth] of Object.entries(live?.authorizations ?? {})) add({ clientId, ...(auth.sid ? { sid: auth.sid } : {}), ...(auth.grantId ? { grantId: auth.grantId } : {}) });
    const ended = await this.#endParts({ uid, accountId, clients, live, remove: record !== undefined });
    const participantId = record?.participantId ?? this.#opts.accounts.participantOf(accountId);
    this.#opts.onEnded?.(participantId, cause);
    this.#opts.log.info({ participant: participantId, cause, clients: [...clients.keys()], grants: ended.grants }, 'session ended');
    return { id: uid, accountId, participantId, clients: [...clients.keys()], grants: ended.grants };
  }

  /**
   * Ends the Concord sessions an upstream session or subject names: the upstream said the user
   * signed out there (OIDC Back-Channel Logout 1.0 section 2.7; a SAML LogoutRequest alike), or
   * otherwise that its sessions are over. Protocol-neutral: the caller has validated the notice.
   *
   *   - with `sessionId` (OIDC `sid`, SAML SessionIndex): the sessions whose login the upstream put in
   *     that session (the connector identity's `sessionId`); with `subject` as well, only those of
   *     that subject;
   *   - with `subject` alone (OIDC `sub`, SAML NameID): every session of that upstream subject at the
   *     participant (sessions from before per-session state included);
   *   - with neither: nothing.
   *
   * Each ends as `end()` ends one (grants revoked, services sent logout tokens). Resolves with the
   * sessions ended (none when none matched: a notice for a session already gone is not an error).
   * Throws StoreUnavailableError when the store does not answer.
   */
  async endByUpstream(target: UpstreamSessionTarget, cause: SessionEndCause = 'upstream_logout'): Promise<EndedSession[]> {
    const { participantId, subject, sessionId } = target;
    const accountId = subject === undefined ? undefined : this.#opts.accounts.idOf(participantId, subject);
    if (sessionId !== undefined) {
      const ended: EndedSession[] = [];
      for (const uid of await this.#records.ofUpstreamSession(participantId, sessionId)) {
        const record = await this.#records.get(uid);
        if (!record || record.participantId !== participantId || (accountId !== undefined && record.accountId !== accountId)) continue;
        const one = await this.end(uid, cause);
        if (one) ended.push(one);
      }
      return ended;
    }
    if (accountId !== undefined) return (await this.#endAllOfAccount(accountId, cause)).ended;
    return [];
  }

  /** Ends every session of an account (an administrator's revocation). */
  async endAllOfAccount(accountId: string, cause: SessionEndCause): Promise<EndedSession[]> {
    return (await this.#endAllOfAccount(accountId, cause)).ended;
  }

  /**
   * Ends every session of every account that signed in through a participant (offboarding, disable,
   * revoke-sessions), and forgets those accounts. JWT access tokens are not stored: they stay valid
   * until they expire (5 minutes by default), which is why their lifetime is short.
   */
  async endAllOfParticipant(participantId: string, cause: SessionEndCause): Promise<RevocationReport> {
    const report: RevocationReport = { accounts: 0, sessions: 0, grants: 0 };
    const { accounts } = this.#opts;
    for (const accountId of await accounts.idsOfParticipant(participantId)) {
      report.accounts++;
      const { ended, grants } = await this.#endAllOfAccount(accountId, cause);
      report.sessions += ended.length;
      report.grants += grants;
      await accounts.remove(accountId);
    }
    await accounts.forgetParticipant(participantId);
    return report;
  }

  /**
   * After oidc-provider's own end_session (RP-initiated logout): it revoked the grants that do not
   * outlive the session and queued the logout tokens itself (through Client.backchannelLogout, which
   * Concord routes to its delivery). What Concord kept goes with the session, unless a grant of it
   * survives the logout (offline_access): then the session stays for that grant's refreshes, with
   * only such clients.
   */
  async afterEndSession(uid: string, session: { destroyed: boolean; authorizations?: LiveSession['authorizations'] }): Promise<void> {
    this.#forgetReadsAhead();
    const record = await this.#records.get(uid);
    if (!record) return;
    const remaining = session.authorizations ?? {};
    const stays = (client: SessionClient) => (session.destroyed ? remaining[client.clientId]?.persistsLogout === true : client.clientId in remaining);
    const gone = record.clients.filter((c) => !stays(c));
    if (gone.length === record.clients.length && session.destroyed) {
      await this.#records.remove(uid, record);
      this.#opts.onEnded?.(record.participantId, 'rp_logout');
      this.#opts.log.info({ participant: record.participantId, cause: 'rp_logout', clients: record.clients.map((c) => c.clientId) }, 'session ended');
      return;
    }
    for (const client of gone) await this.#records.removeClient(uid, client);
  }

  // ---- internals --------------------------------------------------------------------------------

  async #liveSession(uid: string): Promise<LiveSession | undefined> {
    const payload = (await liveSessions(this.#opts.store.adapter('Session')).findByUid(uid)) as LiveSession | undefined;
    return payload && typeof payload.jti === 'string' ? payload : undefined;
  }

  /** Revokes, destroys, removes and notifies: the parts of ending one session. */
  async #endParts(parts: { uid: string; accountId: string; clients: Map<string, SessionClient[]>; live: LiveSession | undefined; remove: boolean }): Promise<{ grants: number }> {
    const { store, registry, notify } = this.#opts;
    const grantsAdapter = store.adapter('Grant');
    let grants = 0;
    const notices: LogoutNotice[] = [];
    for (const [clientId, entries] of parts.clients) {
      for (const grantId of new Set(entries.map((e) => e.grantId).filter((g): g is string => g !== undefined))) {
        if (await grantsAdapter.find(grantId)) grants++;
        await grantsAdapter.revokeByGrantId(grantId);
        await grantsAdapter.destroy(grantId);
      }
      if (registry.client(clientId)?.backchannel_logout_uri) {
        const sid = entries.find((e) => e.sid !== undefined)?.sid;
        notices.push({ clientId, accountId: parts.accountId, ...(sid ? { sid } : {}) });
      }
    }
    if (parts.live) await store.adapter('Session').destroy(parts.live.jti);
    if (parts.remove) await this.#records.remove(parts.uid, { accountId: parts.accountId });
    // Queued last: by the time a service hears of it, the session is over everywhere.
    if (notices.length) await notify(notices);
    return { grants };
  }

  async #endAllOfAccount(accountId: string, cause: SessionEndCause): Promise<{ ended: EndedSession[]; grants: number }> {
    const { store } = this.#opts;
    const ended: EndedSession[] = [];
    let grants = 0;
    // Concord's records and oidc-provider's Sessions as saved, bound or not (one index by uid), and
    // the account's Grants (in the same index).
    const index = await this.#records.indexOfAccount(accountId);
    const uids = new Set(index.sessions);
    // oidc-provider's Sessions indexed by jti before that, until that index expires.
    const sessionsAdapter = liveSessions(store.adapter('Session'));
    for (const jti of await store.setMembers(sessionsOf(accountId))) {
      const live = (await sessionsAdapter.find(jti)) as LiveSession | undefined;
      if (live?.uid && live.accountId === accountId) uids.add(live.uid);
    }
    for (const uid of uids) {
      const one = await this.end(uid, cause, accountId);
      if (one) {
        ended.push(one);
        grants += one.grants;
      }
    }
    // Grants no session names any more (their session expired): revoked too. Those of the index
    // written before Grants joined the account's index (account-grants), until it expires.
    const grantsAdapter = store.adapter('Grant');
    const legacyGrants = await store.setMembers(grantsOf(accountId));
    for (const grantId of new Set([...index.grants, ...legacyGrants])) {
      if (await grantsAdapter.find(grantId)) grants++;
      await grantsAdapter.revokeByGrantId(grantId);
      await grantsAdapter.destroy(grantId);
    }
    await this.#records.forgetGrants(accountId, index.grants);
    await store.deleteSet(grantsOf(accountId));
    await store.deleteSet(sessionsOf(accountId));
    return { ended, grants };
  }
}
