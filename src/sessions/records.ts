import { createHash, randomBytes } from 'node:crypto';
import { exceededClaimBound } from '../mapping/index.ts';
import type { SecretBox } from '../secrets/index.ts';
import { deferWrite, requestLocal, type Store } from '../store/index.ts';
import type { UpstreamLogout, UpstreamRefreshState } from '../upstream/index.ts';

/**
 * A Concord session as the broker knows it: one upstream login, and what Concord keeps of it. It
 * is keyed by oidc-provider's Session `uid` (which stays the same for the session's whole life, and
 * which every code, access and refresh token issued in it carries as `sessionUid`), and it lives as
 * long as the longest grant that may still refresh from it, so offline refresh tokens still find it
 * after the browser's session cookie expired.
 */
export interface SessionRecord {
  /** oidc-provider's Session uid. */
  id: string;
  /** `{participantId}:{upstream sub}` */
  accountId: string;
  participantId: string;
  /** When the upstream login happened, epoch seconds. */
  startedAt: number;
  /** When the upstream last vouched for the user (the login, or a successful re-check), epoch seconds. */
  confirmedAt: number;
  /** The claims of this login after the participant's mapping and the domain policy (of its last re-check). */
  claims: Record<string, unknown>;
  /** The services that got an authorization in this session (from the authorization responses). */
  clients: SessionClient[];
  /**
   * Set when `clients` holds only the services kept in the record itself (the first one: read
   * without the set of those added later, SessionStore.get `{ addedClients: false }`); clientsOf
   * answers them all.
   */
  clientsInRecordOnly?: true;
  /** Whether an upstream session id (OIDC `sid`, SAML SessionIndex) names this session: its back-channel logout can find it. */
  upstreamSession: boolean;
  /** The id its upstream state is kept under since its login's callback (PendingSessionLogin `stateId`), when so: withUpstream's hint. */
  stateId?: string;
}

/** A service's part in a session: its OIDC session id (`sid`) and the grant its tokens hang on. */
export interface SessionClient {
  clientId: string;
  /** The `sid` its ID tokens and logout tokens carry (OIDC Front/Back-Channel Logout). */
  sid?: string;
  grantId?: string;
}

/** What Concord keeps of an upstream login that is a secret (bearer tokens) or for the upstream alone; sealed at rest. */
export interface UpstreamSessionState {
  /** What the upstream logout needs (the connector's shape; for OIDC the ID token as id_token_hint). */
  logout?: UpstreamLogout;
  /** What Connector.refresh needs to ask the upstream again. */
  refresh?: UpstreamRefreshState;
}

/** One upstream login between the broker callback and the session it lands in (oidc-provider's resume). */
export interface PendingSessionLogin {
  accountId: string;
  participantId: string;
  claims: Record<string, unknown>;
  /** The upstream's session id (Connector identity `sessionId`). */
  upstreamSessionId?: string;
  upstream: UpstreamSessionState;
  /** Epoch seconds. */
  confirmedAt: number;
  /**
   * Set when the upstream state is kept already, sealed under its own key
   * (`session-upstream:{stateId}`, SessionStore.holdAtCallback), for the session to take over as it
   * is (put: its lifetime extended, the record naming it); `upstream` is then empty.
   */
  stateId?: string;
}

interface StoredSession {
  v: 1;
  accountId: string;
  participantId: string;
  startedAt: number;
  confirmedAt: number;
  claims: Record<string, unknown>;
  /** The index key of its upstream session id, to leave that index when the session ends or changes. */
  upstreamKey?: string;
  /** SecretBox(UpstreamSessionState), context `session:{uid}:upstream`: in records written before it got its own key (upstreamStateKey). */
  sealed?: string;
  /**
   * Where the sealed state is when it was written at the login's callback and taken over as it was
   * (PendingSessionLogin `stateId`): `session-upstream:{stateId}`, sealed for that id and the
   * account (stateContext); else, in `session-upstream:{uid}` (or `sealed`, or none).
   */
  stateId?: string;
  /**
   * The services known when the record was written (clientMember form): the first one gets its
   * authorization in the very request that binds the login, so it goes in with the record instead
   * of a set of its own. Those added later go to the set `session-clients:{uid}` (an atomic add,
   * whatever else writes the record). Absent in records written before.
   */
  clients?: string[];
}

/**
 * A session's record as written now (`v: 2`), kept for weeks: the fields of StoredSession under
 * one-letter names, without what the rest says (its participant is the head of its account id,
 * accountIdOf; its upstream index key is that participant's and a hash, of which only the hash is
 * kept; `confirmedAt` as seconds after `startedAt`, absent when the same), its services as arrays
 * rather than JSON text inside JSON. 85 bytes less of each live session's record (498 -> 413 in
 * bench/session-keys.ts). Records of the previous release (`v: 1`, StoredSession as it is) are
 * still read; a record this form cannot say exactly (an odd participant, a v1 record's `sealed`
 * state rewritten by removeClient) is written as before.
 */
interface CompactSession {
  v: 2;
  /** accountId */
  a: string;
  /** startedAt, epoch seconds */
  t: number;
  /** confirmedAt - startedAt, seconds; absent when 0 */
  c?: number;
  /** claims */
  m: Record<string, unknown>;
  /** clients: each [clientId, sid | null, grantId | null], as clientMember encodes it */
  s?: unknown[];
  /** upstreamKey without its `sessions-of-upstream:{participantId}:` head */
  u?: string;
  /** stateId: the upstream state kept since the login's callback, `session-upstream:{k}` */
  k?: string;
}

/** The participant an account id starts with (accountIdOf: `{participantId}:{sub}`, participant ids have no colon). */
const participantOfId = (accountId: string) => accountId.slice(0, Math.max(0, accountId.indexOf(':')));
const upstreamKeyHead = (participantId: string) => `sessions-of-upstream:${participantId}:`;

/** The form a record is written in: CompactSession when it says the record exactly, else StoredSession as before. */
function encodeSession(stored: StoredSession): CompactSession | StoredSession {
  const { accountId, participantId, startedAt, confirmedAt, claims, clients, upstreamKey, sealed, stateId } = stored;
  const head = upstreamKeyHead(participantId);
  if (sealed !== undefined || participantOfId(accountId) !== participantId || (upstreamKey !== undefined && !upstreamKey.startsWith(head))) return stored;
  let members: unknown[] | undefined;
  try {
    members = clients?.map((m) => JSON.parse(m) as unknown);
  } catch {
    return stored;
  }
  return {
    v: 2,
    a: accountId,
    t: startedAt,
    ...(confirmedAt !== startedAt ? { c: confirmedAt - startedAt } : {}),
    m: claims,
    ...(members?.length ? { s: members } : {}),
    ...(upstreamKey !== undefined ? { u: upstreamKey.slice(head.length) } : {}),
    ...(stateId !== undefined ? { k: stateId } : {}),
  };
}

/** A record as read: a CompactSession put back into StoredSession, a record of before as it is (get() checks it). */
function decodeSession(raw: CompactSession | StoredSession | undefined): StoredSession | undefined {
  if (raw === undefined || raw === null || typeof raw !== 'object' || raw.v !== 2) return raw as StoredSession | undefined;
  const { a, t, c, m, s, u, k } = raw;
  if (typeof a !== 'string' || typeof t !== 'number') return undefined;
  const participantId = participantOfId(a);
  return {
    v: 1,
    accountId: a,
    participantId,
    startedAt: t,
    confirmedAt: t + (typeof c === 'number' ? c : 0),
    claims: m,
    ...(Array.isArray(s) ? { clients: s.map((member) => JSON.stringify(member)) } : {}),
    ...(typeof u === 'string' ? { upstreamKey: upstreamKeyHead(participantId) + u } : {}),
    ...(typeof k === 'string' ? { stateId: k } : {}),
  };
}

/** A pending login as held: with when it expires (epoch ms), so one taken by mistake can be put back. */
interface HeldLogin extends PendingSessionLogin {
  heldUntil?: number;
}

/** A held login as taken (SessionStore.takeHeld): the login, and what holds it again (putBack). */
export interface TakenLogin {
  login: PendingSessionLogin;
  /** The record as it was held. */
  sealed: string;
  /** When it stops being held, epoch ms. */
  heldUntil?: number;
}

/** The time of a session's last refresh: apart from the record, so a refresh never rewrites what a re-check just wrote. */
interface SessionSeen {
  refreshedAt: number;
}

const recordKey = (uid: string) => `session:${uid}`;
const clientsKey = (uid: string) => `session-clients:${uid}`;
const seenKey = (uid: string) => `session-seen:${uid}`;
/**
 * The sealed upstream state of a session (bytes: SecretBox.sealBytes(UpstreamSessionState), `z3`;
 * written before, a JSON string of SecretBox.seal's text, still read), apart from
 * the record: two thirds of what a session keeps, needed only by the upstream logout and a re-check,
 * while the record is read at every code exchange and refresh.
 */
const upstreamStateKey = (uid: string) => `session-upstream:${uid}`;
/** The first byte of a state written as a JSON string (a sealed text, before states were kept as bytes): `"`. */
const JSON_STRING = 0x22;
/** Where earlier versions held a login between its callback and its resume (SessionStore.hold); now the interaction's result carries it (HELD_LOGIN). */
const pendingKey = (interactionUid: string) => `session-pending:${interactionUid}`;
/**
 * The field of an oidc-provider Interaction's `result` that carries the login its callback finished
 * (SessionStore.sealHeld), from the callback to the resume, in the record both already write and
 * read: no key of its own. oidc-provider keeps a result as it is given (and uses only the prompts'
 * names in it).
 */
export const HELD_LOGIN = 'held';
/**
 * An account's index: its sessions by uid (Concord's records, and oidc-provider's Sessions as
 * saved), its oidc-provider Grants as `g:{grant id}` (oidc-index.ts) and the account's own record
 * (ACCOUNT_MEMBERS, provider/accounts.ts), one key per account. A uid is base64url and never holds a ':'.
 */
export const ofAccountKey = (accountId: string) => `sessions-of-account:${accountId}`;
/** A Grant's member in its account's index (ofAccountKey). */
export const grantMember = (grantId: string) => `g:${grantId}`;
const GRANT_MEMBER = 'g:';
/**
 * The members of an account's index that hold the account's own record (provider/accounts.ts),
 * with a value each (Store.putInSet): no session's uid (43 characters of base64url) nor grant member.
 */
export const ACCOUNT_MEMBERS = { record: 'a', issuer: 'i' } as const;
const accountMembers: ReadonlySet<string> = new Set(Object.values(ACCOUNT_MEMBERS));
/** Upstream session ids are the upstream's strings: hashed into the key, so its length and characters are ours. */
const ofUpstreamKey = (participantId: string, upstreamSessionId: string) =>
  `sessions-of-upstream:${participantId}:${createHash('sha256').update(upstreamSessionId, 'utf8').digest('base64url')}`;

const sealContext = (uid: string) => `session:${uid}:upstream`;
/**
 * The context of a state sealed at its login's callback, under its own id (holdAtCallback): bound to
 * that id and to the account, so it opens for no other key, and for no session of another account
 * (the session's record names the id in clear; the held login that carried it to the session was
 * sealed for its interaction).
 */
const stateContext = (stateId: string, accountId: string) => `session-upstream:${stateId}:${accountId}`;
/** The id of a state kept at the callback: 16 random bytes, base64url (22 characters; a session uid is 43). */
const newStateId = () => randomBytes(16).toString('base64url');
const STATE_ID = /^[A-Za-z0-9_-]{22}$/;
/** Upstream tokens and claims, a kilobyte or two of text kept for weeks: sealed DEFLATEd (a third smaller; records sealed before still open). */
const COMPRESSED = { compress: true } as const;
/**
 * A session's sealed state, kept for weeks: DEFLATEd with the dictionary of an upstream's tokens and
 * claims (`z3`, secrets/index.ts), a fifth smaller than COMPRESSED, and kept as bytes (Store.setBytes),
 * a quarter smaller than their base64url text. Records sealed before (`z2`,
 * `v2`) still open. (The held login, a few seconds, stays COMPRESSED: an instance of the previous
 * release may take it.)
 */
const COMPRESSED_TOKENS = { compress: 'tokens' } as const;
const pendingContext = (interactionUid: string) => `session-pending:${interactionUid}`;

/**
 * A compact JWS (RFC 7515 7.1) as the sealed state keeps it: its header and payload as the JSON text
 * they encode, the signature as it was. The upstream's ID token (the logout's `id_token_hint`) carries
 * the very claims the re-check state keeps beside it: as text, DEFLATE finds the second copy and
 * stores it as a few back-references, where two base64url encodings of the same claims share nothing
 * (the sealed state a third smaller). The token is rebuilt byte for byte: only a token whose parts
 * decode to UTF-8 and encode back to the same characters is kept this way.
 */
interface PackedJws {
  jws: [header: string, payload: string, signature: string];
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function packJws(value: string): string | PackedJws {
  if (value.length < 64 || !COMPACT_JWS.test(value)) return value;
  const [h, p, s] = value.split('.') as [string, string, string];
  const header = Buffer.from(h, 'base64url').toString('utf8');
  const payload = Buffer.from(p, 'base64url').toString('utf8');
  if (Buffer.from(header, 'utf8').toString('base64url') !== h || Buffer.from(payload, 'utf8').toString('base64url') !== p) return value;
  return { jws: [header, payload, s] };
}

function unpackJws(value: unknown): unknown {
  // Exactly `{ jws: [...] }`: nothing else a connector keeps has that shape (claims always hold `sub`).
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length !== 1) return value;
  const jws = (value as Partial<PackedJws>).jws;
  if (!Array.isArray(jws) || jws.length !== 3 || !jws.every((part) => typeof part === 'string')) return value;
  return `${Buffer.from(jws[0], 'utf8').toString('base64url')}.${Buffer.from(jws[1], 'utf8').toString('base64url')}.${jws[2]}`;
}

/** Maps the string fields of the state's parts (the connector's `logout` and `refresh`, whose tokens are strings). */
function mapParts(state: UpstreamSessionState, map: (value: unknown) => unknown): UpstreamSessionState {
  const out: Record<string, unknown> = {};
  for (const [part, value] of Object.entries(state)) {
    out[part] = value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, map(v)])) : value;
  }
  return out as UpstreamSessionState;
}

/** The upstream state as sealed: its tokens packed (PackedJws). */
const packState = (state: UpstreamSessionState) => mapParts(state, (v) => (typeof v === 'string' ? packJws(v) : v));
/** The upstream state as opened: packed tokens rebuilt; a state sealed before packing has none. */
const unpackState = (state: UpstreamSessionState) => mapParts(state, unpackJws);

/** A client list member: JSON, so a set add (atomic) records a client without rewriting the record. */
const clientMember = (c: SessionClient) => JSON.stringify([c.clientId, c.sid ?? null, c.grantId ?? null]);
function parseClient(member: string): SessionClient | undefined {
  try {
    const [clientId, sid, grantId] = JSON.parse(member) as [unknown, unknown, unknown];
    if (typeof clientId !== 'string') return undefined;
    return { clientId, ...(typeof sid === 'string' ? { sid } : {}), ...(typeof grantId === 'string' ? { grantId } : {}) };
  } catch {
    return undefined;
  }
}

/** Session records this request read and found absent (store requestLocal): their put need not read them again. */
const absentInRequest = requestLocal(() => new Set<string>());
const noteAbsent = (uid: string): void => void absentInRequest.get()?.add(uid);
const knownAbsent = (uid: string): boolean => absentInRequest.peek()?.has(uid) === true;
const forgetAbsent = (uid: string): void => void absentInRequest.peek()?.delete(uid);

/**
 * The store side of sessions: records, their client lists and indexes (by account, by upstream
 * session id), the pending login of an interaction. What is secret is sealed with the SecretBox for
 * its own session: a sealed value copied to another record does not open there.
 *
 * Key families: `session:{uid}` (with the services known when it was written), `session-clients:{uid}`
 * (set: the services added later), `session-upstream:{uid}` (the sealed state), `session-seen:{uid}`,
 * `session-pending:{interaction uid}` (a held login, as earlier versions wrote it: read, no longer written), `sessions-of-account:{accountId}` (set),
 * `sessions-of-upstream:{participantId}:{sha256(upstream session id)}` (set). Everything lives
 * `ttlSeconds` from when it was written (the longest grant's lifetime): nothing outlives it.
 */
export class SessionStore {
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #ttl: number;

  constructor(store: Store, box: SecretBox, ttlSeconds: number) {
    this.#store = store;
    this.#box = box;
    this.#ttl = ttlSeconds;
  }

  /**
   * An upstream login sealed for the interaction it finishes (SecretBox, context
   * `session-pending:{interaction uid}`, DEFLATEd): what the interaction's result carries to its
   * resume (HELD_LOGIN), where openHeld() gives it back. A string of base64url text.
   */
  sealHeld(interactionUid: string, login: PendingSessionLogin): string {
    const held: HeldLogin = { ...login, upstream: packState(login.upstream) };
    return this.#box.seal(JSON.stringify(held), pendingContext(interactionUid), COMPRESSED);
  }

  /**
   * At a login's callback: its upstream state written once, sealed as a session keeps it (`z3`,
   * bytes), under a key of its own (`session-upstream:{stateId}`, a new random id) for `ttlSeconds`
   * (the interaction's lifetime: a login never resumed leaves nothing longer), and the rest of the
   * login sealed for the interaction (sealHeld), naming that id instead of carrying the state: the
   * interaction's result, written once and read at the resume, stays small, and the session takes
   * the state over where it is (put: its lifetime extended) instead of writing it again. Without
   * upstream state, nothing is written and the held login names none. `written` is the state's write
   * (issued now, to be awaited with the callback's other writes).
   */
  holdAtCallback(interactionUid: string, login: PendingSessionLogin, ttlSeconds: number): { held: string; written: Promise<void> } {
    const { upstream, ...rest } = login;
    // The claims it carries DEFLATE better with the tokens' and claims' dictionary (z3): ~60 bytes
    // less of the interaction's save and read (instances replaced together: no earlier one opens it).
    const sealHeld = (held: object) => this.#box.seal(JSON.stringify(held), pendingContext(interactionUid), COMPRESSED_TOKENS);
    if (!upstream.logout && !upstream.refresh) return { held: sealHeld({ ...rest, upstream: {} }), written: Promise.resolve() };
    const stateId = newStateId();
    const sealed = this.#box.sealBytes(JSON.stringify(packState(upstream)), stateContext(stateId, login.accountId), COMPRESSED_TOKENS);
    const written = this.#store.setBytes(upstreamStateKey(stateId), sealed, ttlSeconds);
    return { held: sealHeld({ ...rest, stateId }), written };
  }

  /** The login sealHeld() sealed for this interaction; undefined when it does not open (another interaction's, another key). */
  openHeld(interactionUid: string, sealed: string): PendingSessionLogin | undefined {
    let held: HeldLogin;
    try {
      held = JSON.parse(this.#box.open(sealed, pendingContext(interactionUid))) as HeldLogin;
    } catch {
      return undefined;
    }
    const { heldUntil: _until, stateId, ...login } = held;
    // A state kept at the callback is named by its id (holdAtCallback); one carried here (earlier versions) is unpacked.
    if (typeof stateId === 'string' && STATE_ID.test(stateId)) return { ...login, upstream: {}, stateId };
    return { ...login, upstream: unpackState(login.upstream ?? {}) };
  }

  /**
   * Keeps an upstream login under its own key, `session-pending:{interaction uid}`, until
   * oidc-provider puts it in a session: the form earlier versions wrote (now the interaction's
   * result carries it: sealHeld), which take() and takeHeld() still read.
   */
  async hold(interactionUid: string, login: PendingSessionLogin, ttlSeconds: number): Promise<void> {
    const held: HeldLogin = { ...login, upstream: packState(login.upstream), heldUntil: Date.now() + ttlSeconds * 1000 };
    const sealed = this.#box.seal(JSON.stringify(held), pendingContext(interactionUid), COMPRESSED);
    await this.#store.setTemp(pendingKey(interactionUid), sealed, ttlSeconds);
  }

  /**
   * Takes (single use) the login held for an interaction, when it is `accountId`'s; another's is put
   * back for the rest of its lifetime (oidc-provider first ends a session signed in as someone else,
   * then resumes again). One that does not open is dropped. One GETDEL: the record is read once.
   */
  async take(interactionUid: string, accountId: string): Promise<PendingSessionLogin | undefined> {
    const held = await this.takeHeld(interactionUid);
    if (!held) return undefined;
    if (held.login.accountId !== accountId) {
      await this.putBack(interactionUid, held);
      return undefined;
    }
    return held.login;
  }

  /**
   * Takes (single use: one GETDEL) the login held for an interaction, whoever's it is, with what
   * putBack needs to hold it again. One that does not open is dropped.
   */
  async takeHeld(interactionUid: string): Promise<TakenLogin | undefined> {
    const sealed = await this.#store.takeTemp<string>(pendingKey(interactionUid));
    if (typeof sealed !== 'string') return undefined;
    let held: HeldLogin;
    try {
      held = JSON.parse(this.#box.open(sealed, pendingContext(interactionUid))) as HeldLogin;
    } catch {
      return undefined;
    }
    const { heldUntil, ...login } = held;
    return { login: { ...login, upstream: unpackState(login.upstream ?? {}) }, sealed, ...(typeof heldUntil === 'number' ? { heldUntil } : {}) };
  }

  /** Holds a taken login again for the rest of its lifetime (nothing when that is over, or unknown). */
  async putBack(interactionUid: string, taken: TakenLogin): Promise<void> {
    const left = taken.heldUntil === undefined ? 0 : (taken.heldUntil - Date.now()) / 1000;
    if (left > 0) await this.#store.setTemp(pendingKey(interactionUid), taken.sealed, left);
  }

  /**
   * Writes a session's record from a login: a new session, or a new login in the same session (the
   * same account signing in again), which replaces what the previous login kept and keeps its clients.
   * `client`: the service whose authorization this request answers, kept in the record itself.
   */
  async put(uid: string, login: PendingSessionLogin, startedAt: number, client?: SessionClient): Promise<SessionRecord> {
    const upstreamKey = login.upstreamSessionId === undefined ? undefined : ofUpstreamKey(login.participantId, login.upstreamSessionId);
    const stored: StoredSession = {
      v: 1,
      accountId: login.accountId,
      participantId: login.participantId,
      startedAt,
      confirmedAt: login.confirmedAt,
      claims: login.claims,
      ...(upstreamKey ? { upstreamKey } : {}),
    };
    // A state kept at the callback (stateId) is taken over where it is: the record names it.
    if (login.stateId !== undefined) stored.stateId = login.stateId;
    const sealed = login.stateId === undefined && (login.upstream.logout || login.upstream.refresh) ? this.#box.sealBytes(JSON.stringify(packState(login.upstream)), sealContext(uid), COMPRESSED_TOKENS) : undefined;
    // A record is never left where an upstream logout or an account's revocation cannot find it: its
    // indexes are written first, or with it. The previous record is read in the same round trip as
    // the indexes, unless this request found none (the resume of a new session: findAccount looked),
    // when there is none to read: then the record's write leaves with the indexes (on one connection,
    // after them; on a Cluster, in the same round to their nodes), and should an index write fail,
    // the new record is deleted before the failure goes on (fail closed: a session without a record
    // is refused at its code exchange).
    const absent = knownAbsent(uid);
    const indexes = Promise.all([
      absent ? undefined : this.#read(uid),
      this.#store.addToSet(ofAccountKey(login.accountId), uid, this.#ttl),
      upstreamKey ? this.#store.addToSet(upstreamKey, uid, this.#ttl) : undefined,
    ]);
    if (!absent) await indexes;
    forgetAbsent(uid);
    const [previous] = absent ? [undefined] : await indexes;
    if (previous?.upstreamKey && previous.upstreamKey !== upstreamKey) await this.#store.removeFromSet(previous.upstreamKey, uid);
    // The previous login's services stay the session's; the service of this authorization joins them.
    const members = [...new Set([...(previous?.clients ?? []), ...(client ? [clientMember(client)] : [])])];
    if (members.length) stored.clients = members;
    const written = Promise.all([
      this.#write(uid, stored),
      // This login's state: kept at its callback (its lifetime now the session's), or written here.
      login.stateId !== undefined ? this.#store.expireTemp(upstreamStateKey(login.stateId), this.#ttl) : undefined,
      // A previous login's state goes with it: the session keeps this login's, or none.
      sealed !== undefined ? this.#store.setBytes(upstreamStateKey(uid), sealed, this.#ttl) : previous ? this.#store.deleteTemp(upstreamStateKey(uid)) : undefined,
      previous?.stateId !== undefined && previous.stateId !== login.stateId ? this.#store.deleteTemp(upstreamStateKey(previous.stateId)) : undefined,
    ]);
    if (absent) {
      const [indexed] = await Promise.allSettled([indexes, written]);
      if (indexed.status === 'rejected') {
        // (A state kept at the callback stays: it expires with the rest of the session's lifetime, named by nothing.)
        await Promise.allSettled([this.#store.deleteTemp(recordKey(uid)), this.#store.deleteTemp(upstreamStateKey(uid))]);
        throw indexed.reason;
      }
    }
    await written;
    // A new session has no clients but the one given (others are added after this, as it gets authorizations).
    return this.#view(uid, stored, previous ? await this.#setClients(uid) : []);
  }

  /** Whether this request knows the session has no record (it read none, or markAbsent): a put now makes it. */
  knownAbsent(uid: string): boolean {
    return knownAbsent(uid);
  }

  /**
   * Deletes what a put just wrote for a session that had no record (its record and its sealed
   * upstream state); its index entries stay, as those of an ended session do until they expire
   * (readers check the record: get() answers none). A state kept at the callback (stateId) stays:
   * the login is bound by the other resume, whose session names it.
   */
  async unput(uid: string): Promise<void> {
    await Promise.all([this.#store.deleteTemp(recordKey(uid)), this.#store.deleteTemp(upstreamStateKey(uid))]);
  }

  /**
   * Notes that a session has no record (oidc-provider has just made it: a new uid, never saved), as a
   * get that found none would: its put in this request writes it without reading it first.
   */
  markAbsent(uid: string): void {
    noteAbsent(uid);
  }

  /** What a re-check found: fresh claims, the time, and what to keep for the next re-check. */
  async confirm(uid: string, update: { claims: Record<string, unknown>; confirmedAt: number; upstream: UpstreamSessionState }): Promise<void> {
    forgetAbsent(uid);
    const stored = await this.#read(uid);
    if (!stored) return;
    const { sealed: _before, ...rest } = stored;
    const next: StoredSession = { ...rest, claims: update.claims, confirmedAt: update.confirmedAt };
    // Where the record says the state is: under its own id (sealed for that id and the account), or the session's.
    const stateId = typeof stored.stateId === 'string' ? stored.stateId : undefined;
    const sealed = this.#box.sealBytes(JSON.stringify(packState(update.upstream)), stateId === undefined ? sealContext(uid) : stateContext(stateId, stored.accountId), COMPRESSED_TOKENS);
    await Promise.all([this.#write(uid, next), this.#store.setBytes(upstreamStateKey(stateId ?? uid), sealed, this.#ttl)]);
  }

  /**
   * The session, or undefined. A record whose claims are not an object within the mapping's claim
   * bounds (damaged, or written before the bounds) counts as absent: the user signs in again, where
   * the bounds apply, instead of every request for them failing on it.
   */
  async get(uid: string, options: { addedClients?: boolean } = {}): Promise<SessionRecord | undefined> {
    // `addedClients: false`: the record alone, without the set of services added later (one command
    // fewer: a code exchange and a refresh need a session's claims, and their own service's `sid`,
    // which is the record's for the first service; clientsOf reads the rest).
    const withSet = options.addedClients !== false;
    const [stored, clients] = await Promise.all([this.#read(uid), withSet ? this.#setClients(uid) : undefined]);
    if (stored === undefined) noteAbsent(uid);
    return stored === undefined ? undefined : this.#record(uid, stored, clients);
  }

  /** The session a stored record is (get), with the services added later (`clients`; undefined: not read, clientsInRecordOnly). */
  #record(uid: string, stored: StoredSession, clients: string[] | undefined): SessionRecord | undefined {
    if (!stored || stored.v !== 1 || typeof stored.accountId !== 'string') return undefined;
    const claims = stored.claims as unknown;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || exceededClaimBound(claims)) return undefined;
    const view = this.#view(uid, stored, clients ?? []);
    return clients !== undefined ? view : { ...view, clientsInRecordOnly: true };
  }

  /** A session's services: those of `record` when they are all there, else read again (its record and the set of those added later). */
  async clientsOf(record: SessionRecord): Promise<SessionClient[]> {
    if (!record.clientsInRecordOnly) return record.clients;
    return (await this.get(record.id))?.clients ?? record.clients;
  }

  /** The sealed part of a session, or an empty state when it has none or it does not open (another key, another record's). */
  async upstream(uid: string): Promise<UpstreamSessionState> {
    return (await this.withUpstream(uid)).upstream;
  }

  /**
   * A session (its record alone: `clientsInRecordOnly`, as get `{ addedClients: false }`) and its
   * sealed part, read in one round trip: what a re-check needs once it holds the session's lease. A
   * state kept since its login's callback (the record's `stateId`) is read in that round trip when
   * `stateHint` names it (the record the caller read before: SessionRecord `stateId`), else after it.
   */
  async withUpstream(uid: string, stateHint?: string): Promise<{ record: SessionRecord | undefined; upstream: UpstreamSessionState }> {
    // A record written before the state had its own key holds it (read in the same round trip).
    // A state kept since the login's callback is read in its place when hinted (the session's own key
    // holds none then); should the record name another (a new login since), what it names is read after.
    const [first, stored] = await Promise.all([this.#store.getBytes(upstreamStateKey(stateHint ?? uid)), this.#read(uid)]);
    let own: Buffer | undefined;
    let kept: Buffer | undefined;
    if (stateHint !== undefined && stored?.stateId === stateHint) kept = first;
    else {
      own = stateHint === undefined ? first : await this.#store.getBytes(upstreamStateKey(uid));
      kept = stored?.stateId !== undefined && own === undefined ? await this.#store.getBytes(upstreamStateKey(stored.stateId)) : undefined;
    }
    if (stored === undefined) noteAbsent(uid);
    const record = stored === undefined ? undefined : this.#record(uid, stored, undefined);
    return { record, upstream: this.#open(uid, stored, own, kept) };
  }

  /**
   * The upstream state `own` (its key's bytes), `kept` (under the id the record names, sealed for it
   * and the account) or, written before, the record's `sealed`; empty when none opens.
   */
  #open(uid: string, stored: StoredSession | undefined, own: Buffer | undefined, kept?: Buffer): UpstreamSessionState {
    if (stored?.stateId !== undefined && own === undefined) {
      if (kept === undefined) return {};
      try {
        return unpackState(JSON.parse(this.#box.openBytes(kept, stateContext(stored.stateId, stored.accountId))) as UpstreamSessionState);
      } catch {
        return {};
      }
    }
    if (!stored || (own === undefined && stored.sealed === undefined)) return {};
    try {
      // Bytes (sealBytes), or the JSON string of a sealed text written before (`"z2.…"`), or the record's.
      const plain = own === undefined ? this.#box.open(stored.sealed!, sealContext(uid)) : own[0] === JSON_STRING ? this.#box.open(JSON.parse(own.toString('utf8')) as string, sealContext(uid)) : this.#box.openBytes(own, sealContext(uid));
      return unpackState(JSON.parse(plain) as UpstreamSessionState);
    } catch {
      return {};
    }
  }

  /** The members of the session's client set (those added after its record was written). */
  #setClients(uid: string): Promise<string[]> {
    return this.#store.setMembers(clientsKey(uid));
  }

  /** Records that a service got an authorization in the session; an atomic set add, whatever else writes the session. */
  async addClient(uid: string, client: SessionClient): Promise<void> {
    await this.#store.addToSet(clientsKey(uid), clientMember(client), this.#ttl);
  }

  async removeClient(uid: string, client: SessionClient): Promise<void> {
    forgetAbsent(uid);
    const member = clientMember(client);
    const [stored] = await Promise.all([this.#read(uid), this.#store.removeFromSet(clientsKey(uid), member)]);
    if (!stored?.clients?.includes(member)) return;
    const { clients, ...rest } = stored;
    const left = clients.filter((m) => m !== member);
    await this.#write(uid, left.length ? { ...rest, clients: left } : rest);
  }

  /**
   * Notes a refresh (epoch seconds); for the admin view only. Within a request it is not waited for
   * here (store deferWrite): it leaves with the refresh's own writes (the refresh token consumed,
   * the new one saved), which wait for it, and the request is answered only once it is known done,
   * instead of taking a round trip of its own before them. (The memory store has none to save.)
   */
  async seen(uid: string, refreshedAt: number): Promise<void> {
    const written = this.#store.setTemp<SessionSeen>(seenKey(uid), { refreshedAt }, this.#ttl);
    if (this.#store.kind !== 'memory' && deferWrite(written)) return;
    await written;
  }

  async lastRefreshed(uid: string): Promise<number | undefined> {
    return (await this.#store.getTemp<SessionSeen>(seenKey(uid)))?.refreshedAt;
  }

  /** The uids of an account's sessions (some may have ended meanwhile: get() tells). */
  async ofAccount(accountId: string): Promise<string[]> {
    return (await this.indexOfAccount(accountId)).sessions;
  }

  /**
   * An account's index in one read: the uids of its sessions and the ids of its oidc-provider
   * Grants (as saved; some may be gone meanwhile).
   */
  async indexOfAccount(accountId: string): Promise<{ sessions: string[]; grants: string[] }> {
    const sessions: string[] = [];
    const grants: string[] = [];
    for (const member of await this.#store.setMembers(ofAccountKey(accountId))) {
      if (member.startsWith(GRANT_MEMBER)) grants.push(member.slice(GRANT_MEMBER.length));
      else if (!accountMembers.has(member)) sessions.push(member);
    }
    return { sessions, grants };
  }

  /** Takes revoked Grants out of their account's index (one by one: a session or grant added meanwhile stays). */
  async forgetGrants(accountId: string, grantIds: string[]): Promise<void> {
    await Promise.all(grantIds.map((id) => this.#store.removeFromSet(ofAccountKey(accountId), grantMember(id))));
  }

  /** The uids of the sessions an upstream session id names, for a participant. */
  ofUpstreamSession(participantId: string, upstreamSessionId: string): Promise<string[]> {
    return this.#store.setMembers(ofUpstreamKey(participantId, upstreamSessionId));
  }

  /** Removes a session's record, client list and index entries. */
  async remove(uid: string, record?: { accountId: string }): Promise<void> {
    forgetAbsent(uid);
    const stored = await this.#read(uid);
    const accountId = stored?.accountId ?? record?.accountId;
    await this.#store.deleteTemp(recordKey(uid));
    await Promise.all([
      this.#store.deleteSet(clientsKey(uid)),
      this.#store.deleteTemp(seenKey(uid)),
      this.#store.deleteTemp(upstreamStateKey(uid)),
      typeof stored?.stateId === 'string' ? this.#store.deleteTemp(upstreamStateKey(stored.stateId)) : undefined,
      accountId ? this.#store.removeFromSet(ofAccountKey(accountId), uid) : undefined,
      stored?.upstreamKey ? this.#store.removeFromSet(stored.upstreamKey, uid) : undefined,
    ]);
  }

  /**
   * A lease on a session's re-check (one instance, one request at a time asks the upstream: a
   * refresh token used twice would look like a replay to it). True when this caller holds it.
   */
  lock(uid: string, ttlSeconds: number): Promise<boolean> {
    return this.#store.claimTemp(`session-lock:${uid}`, 1, ttlSeconds);
  }

  /**
   * Gives the lease up. Within a request it is not waited for here (store deferWrite): it leaves with
   * the refresh's own writes, and the request is answered only once it is known done. (The memory
   * store has no round trips to save.)
   */
  async unlock(uid: string): Promise<void> {
    const deleted = this.#store.deleteTemp(`session-lock:${uid}`);
    if (this.#store.kind !== 'memory' && deferWrite(deleted)) return;
    await deleted;
  }

  /** A session's record as stored (CompactSession, or a record of before), as StoredSession. */
  async #read(uid: string): Promise<StoredSession | undefined> {
    return decodeSession(await this.#store.getTemp<CompactSession | StoredSession>(recordKey(uid)));
  }

  /** Writes a session's record (encodeSession), living `ttlSeconds`. */
  #write(uid: string, stored: StoredSession): Promise<void> {
    return this.#store.setTemp(recordKey(uid), encodeSession(stored), this.#ttl);
  }

  #view(uid: string, stored: StoredSession, added: string[]): SessionRecord {
    const clients = [...new Set([...(stored.clients ?? []), ...added])].map(parseClient).filter((c): c is SessionClient => c !== undefined);
    return {
      id: uid,
      accountId: stored.accountId,
      participantId: stored.participantId,
      startedAt: stored.startedAt,
      confirmedAt: stored.confirmedAt,
      claims: stored.claims,
      clients,
      upstreamSession: stored.upstreamKey !== undefined,
      ...(stored.stateId !== undefined ? { stateId: stored.stateId } : {}),
    };
  }
}
