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
  return {
    ...bind(inner),
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const entry = index(payload, id);
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
