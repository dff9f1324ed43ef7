import { deferWrite, type Adapter, type AdapterPayload, type Store } from '../store/index.ts';
import { grantMember, ofAccountKey } from './records.ts';

/**
 * Set of an account's oidc-provider Grant ids (as saved), written before Grants went into the
 * account's index with its sessions (`sessions-of-account`, as `g:{grant id}`); still read when
 * ending an account's sessions until it expires, never written.
 */
export const grantsOf = (accountId: string) => `account-grants:${accountId}`;
/**
 * Set of an account's oidc-provider Session ids (jti), written before sessions were indexed by uid
 * (with Concord's own session records, `sessions-of-account`); still read when ending an account's
 * sessions until it expires, never written.
 */
export const sessionsOf = (accountId: string) => `account-sessions:${accountId}`;

/**
 * oidc-provider finds grants and sessions by id only. To end everything an account or a
 * participant's users hold, Concord indexes each Grant and Session by account as oidc-provider saves
 * it; the index outlives the newest record in it, so it never outgrows the account's activity.
 * A Session goes by its `uid` into the index of Concord's session records (`sessions-of-account`,
 * records.ts): one index per account serves both, and a session never bound to a Concord record
 * (its login lost on the way) is still found there. A Grant goes into the same set as `g:{id}`:
 * one key per account, not two (a grant may outlive every session record that names it, so the
 * account's index of grants stays; it need not be a key of its own).
 *
 * `indexTtlSeconds` (Concord's session records' lifetime, Sessions.ttlSeconds): the indexes live at
 * least that long, so every add to `sessions-of-account` asks the same lifetime and the record's
 * add in the same response is answered by this one (RedisStore.addToSet).
 */
export function indexingAdapter(store: Store, name: string, indexTtlSeconds = 0): Adapter {
  const inner = store.adapter(name);
  if (name !== 'Grant' && name !== 'Session') return inner;
  const index = (payload: AdapterPayload, id: string): [string, string] | undefined => {
    if (!payload.accountId) return undefined;
    if (name === 'Grant') return [ofAccountKey(payload.accountId), grantMember(id)];
    return typeof payload.uid === 'string' ? [ofAccountKey(payload.accountId), payload.uid] : undefined;
  };
  const sessions = name === 'Session';
  return {
    ...(sessions ? liveSessions(inner) : bind(inner)),
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const entry = index(payload, id);
      if (sessions) payload = compactSession(payload);
      // Issued together (the index first: on one connection it is written first), one round trip.
      // The index lives at least `indexTtlSeconds`: with Concord's session records' lifetime, a
      // Session's entry is the one its record's index adds in the same response (sent once).
      const ttl = expiresIn === undefined ? undefined : Math.max(expiresIn, indexTtlSeconds);
      const written = Promise.all([entry ? store.addToSet(entry[0], entry[1], ttl) : undefined, inner.upsert(id, payload, expiresIn)]);
      // oidc-provider saves a Session last, as it answers, and a Grant just before the code that
      // hangs on it: within a request the save is deferred (store deferWrite), so it leaves with
      // what is written next (the code; the session's record, at the resume), which waits for it,
      // and the request is answered only once it is known done. (The memory store has no round
      // trips to save: there it is waited for, as before.)
      if (store.kind !== 'memory' && deferWrite(written)) return;
      await written;
    },
  };
}

function bind(adapter: Adapter): Adapter {
  return {
    upsert: adapter.upsert.bind(adapter),
    find: adapter.find.bind(adapter),
    findByUid: adapter.findByUid.bind(adapter),
    findByUserCode: adapter.findByUserCode.bind(adapter),
    consume: adapter.consume.bind(adapter),
    destroy: adapter.destroy.bind(adapter),
    revokeByGrantId: adapter.revokeByGrantId.bind(adapter),
  };
}

/**
 * An oidc-provider Session as the store keeps it (it lives as long as the browser session, 8 hours
 * by default): `loginTs` as the seconds before its `iat` (`l`), `amr` as `m`, `acr` as `r`,
 * `authorizations` as `z`, in which each service's `grantId` is `g` and its `sid` `s`: 40 bytes of
 * its 352 (bench/session-keys.ts). The names the store and the account index read (`uid`,
 * `accountId`) stay. No field oidc-provider writes has one letter, so a record of before (long names)
 * reads as it is.
 */
function compactSession(payload: AdapterPayload): AdapterPayload {
  const { loginTs, amr, acr, authorizations, ...rest } = payload as AdapterPayload & { loginTs?: unknown; authorizations?: unknown };
  const out: Record<string, unknown> = rest;
  if (loginTs !== undefined) {
    if (typeof loginTs === 'number' && typeof payload.iat === 'number') out.l = payload.iat - loginTs;
    else out.loginTs = loginTs;
  }
  if (amr !== undefined) out.m = amr;
  if (acr !== undefined) out.r = acr;
  if (authorizations !== null && typeof authorizations === 'object') {
    const z: Record<string, unknown> = {};
    for (const [clientId, auth] of Object.entries(authorizations as Record<string, unknown>)) {
      if (auth === null || typeof auth !== 'object') z[clientId] = auth;
      else {
        const { grantId, sid, ...others } = auth as Record<string, unknown>;
        z[clientId] = { ...others, ...(grantId !== undefined ? { g: grantId } : {}), ...(sid !== undefined ? { s: sid } : {}) };
      }
    }
    out.z = z;
  } else if (authorizations !== undefined) out.authorizations = authorizations;
  return out as AdapterPayload;
}

/** Puts back what compactSession() left out or shortened (in place: every find parses its own payload). */
function restoreSession(payload: AdapterPayload | undefined | void): AdapterPayload | undefined {
  if (!payload) return undefined;
  const p = payload as Record<string, unknown>;
  if (typeof p.l === 'number' && typeof p.iat === 'number') p.loginTs = p.iat - p.l;
  if ('m' in p) p.amr = p.m;
  if ('r' in p) p.acr = p.r;
  if (p.z !== null && typeof p.z === 'object') {
    const authorizations: Record<string, unknown> = {};
    for (const [clientId, auth] of Object.entries(p.z as Record<string, unknown>)) {
      if (auth === null || typeof auth !== 'object') authorizations[clientId] = auth;
      else {
        const { g, s, ...others } = auth as Record<string, unknown>;
        authorizations[clientId] = { ...others, ...(g !== undefined ? { grantId: g } : {}), ...(s !== undefined ? { sid: s } : {}) };
      }
    }
    p.authorizations = authorizations;
  }
  for (const short of ['l', 'm', 'r', 'z']) delete p[short];
  return payload;
}

/**
 * The Session adapter that reads Sessions as oidc-provider saved them (restoreSession): what Concord
 * reads of a live Session itself (its services, when a session ends: service.ts) goes through it too.
 */
export function liveSessions(adapter: Adapter): Adapter {
  const bound = bind(adapter);
  return {
    ...bound,
    find: async (id: string) => restoreSession(await bound.find(id)),
    findByUid: async (uid: string) => restoreSession(await bound.findByUid(uid)),
    findByUserCode: async (userCode: string) => restoreSession(await bound.findByUserCode(userCode)),
  };
}
