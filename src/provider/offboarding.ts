import type { Adapter, AdapterPayload, Store } from '../store/index.ts';
import type { AccountStore } from './accounts.ts';

const grantsOf = (accountId: string) => `account-grants:${accountId}`;
const sessionsOf = (accountId: string) => `account-sessions:${accountId}`;

/**
 * oidc-provider finds grants and sessions by id only. To end everything a participant's users hold,
 * Concord indexes each Grant and Session by account as oidc-provider saves it.
 */
export function indexingAdapter(store: Store, name: string): Adapter {
  const inner = store.adapter(name);
  if (name !== 'Grant' && name !== 'Session') return inner;
  const indexKey = name === 'Grant' ? grantsOf : sessionsOf;
  return {
    ...bind(inner),
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      await inner.upsert(id, payload, expiresIn);
      // The index outlives the newest record in it, so it never outgrows the account's activity.
      if (payload.accountId) await store.addToSet(indexKey(payload.accountId), id, expiresIn);
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

export interface RevocationReport {
  accounts: number;
  sessions: number;
  grants: number;
}

/**
 * Ends the sessions and revokes the grants (with their refresh tokens, codes and stored tokens) of
 * every account that signed in through a participant. JWT access tokens are not stored: they stay
 * valid until they expire (5 minutes by default), which is why their lifetime is short.
 */
export async function revokeParticipantSessions(store: Store, accounts: AccountStore, participantId: string): Promise<RevocationReport> {
  const report: RevocationReport = { accounts: 0, sessions: 0, grants: 0 };
  for (const accountId of await accounts.idsOfParticipant(participantId)) {
    report.accounts++;
    const ended = await endAccountSessions(store, accountId);
    report.sessions += ended.sessions;
    report.grants += ended.grants;
    await accounts.remove(accountId);
  }
  await store.deleteSet(`participant-accounts:${participantId}`);
  return report;
}

/**
 * Ends every Concord session of one account and revokes its grants (refresh tokens, codes): what an
 * upstream's own logout of that user means here (SAML IdP-initiated single logout). Account-wide:
 * the sessions are not yet told apart by upstream session (a SAML SessionIndex, an OIDC `sid`).
 * Returns how many sessions it found.
 */
export async function endAccountSessions(store: Store, accountId: string): Promise<{ sessions: number; grants: number }> {
  const grants = store.adapter('Grant');
  const sessions = store.adapter('Session');
  const ended = { sessions: 0, grants: 0 };
  for (const grantId of await store.setMembers(grantsOf(accountId))) {
    if (await grants.find(grantId)) ended.grants++;
    await grants.revokeByGrantId(grantId);
    await grants.destroy(grantId);
  }
  for (const sessionId of await store.setMembers(sessionsOf(accountId))) {
    if (await sessions.find(sessionId)) ended.sessions++;
    await sessions.destroy(sessionId);
  }
  await store.deleteSet(grantsOf(accountId));
  await store.deleteSet(sessionsOf(accountId));
  return ended;
}
