import type { Adapter, AdapterPayload, Store } from '../store/index.ts';

/** Sets of an account's oidc-provider Grant ids and Session ids (as saved), for revocation. */
export const grantsOf = (accountId: string) => `account-grants:${accountId}`;
export const sessionsOf = (accountId: string) => `account-sessions:${accountId}`;

/**
 * oidc-provider finds grants and sessions by id only. To end everything an account or a
 * participant's users hold, Concord indexes each Grant and Session by account as oidc-provider saves
 * it; the index outlives the newest record in it, so it never outgrows the account's activity.
 */
export function indexingAdapter(store: Store, name: string): Adapter {
  const inner = store.adapter(name);
  if (name !== 'Grant' && name !== 'Session') return inner;
  const indexKey = name === 'Grant' ? grantsOf : sessionsOf;
  return {
    ...bind(inner),
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      // Issued together (the index first: on one connection it is written first), one round trip.
      await Promise.all([payload.accountId ? store.addToSet(indexKey(payload.accountId), id, expiresIn) : undefined, inner.upsert(id, payload, expiresIn)]);
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
