import { createHash } from 'node:crypto';
import { exceededClaimBound } from '../mapping/index.ts';
import type { SecretBox } from '../secrets/index.ts';
import { ACCOUNT_MEMBERS, ofAccountKey } from '../sessions/index.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamLogout } from '../upstream/index.ts';

/**
 * What Concord knows of a person: who they are upstream, and the email of their last brokered login
 * (the administrators' look-up by email). The claims of a login belong to its session (src/sessions),
 * which keeps them once; records written before per-session state hold the claims of the account's
 * last login, read for tokens from then until they expire. Concord owns no users.
 */
export interface BrokeredAccount {
  /** `{participantId}:{upstream sub}` */
  accountId: string;
  participantId: string;
  upstreamIssuer: string;
  upstreamSubject: string;
  /**
   * Claims after the participant's mapping and the domain policy: given to `save` (which keeps only
   * their `email`), read only from records written before per-session state.
   */
  claims?: Record<string, unknown>;
  /** The email the last login's mapping released, as released: what the by-email index was written for. */
  email?: string;
  /**
   * Read from records written before per-session state (the logout of their last login); never
   * written now: what a logout at the upstream needs belongs to the login's session.
   */
  upstreamLogout?: UpstreamLogout;
  updatedAt: number;
}

const key = (accountId: string) => `account:${accountId}`;
/**
 * The accounts that signed in through a participant (for offboarding): one set per participant,
 * without a lifetime, as long-lived as the participant (endAllOfParticipant deletes it). Each login
 * adds its account (SADD, one command: a set every login of the participant lengthened never
 * expired while the participant was in use anyway); members whose account expired stay, which
 * offboarding tolerates (it removes what it finds).
 */
const ofParticipantKey = (participantId: string) => `accounts-of-participant:${participantId}`;
/** The same index as written before (a lifetime lengthened by every add): read and deleted with it until it expires. */
const ofParticipantBefore = (participantId: string) => `participant-accounts:${participantId}`;
/** Accounts by the email their mapping released (lower case), hashed: for an administrator's look-up. */
const byEmailKey = (email: string) => `accounts-by-email:${createHash('sha256').update(email.toLowerCase(), 'utf8').digest('base64url')}`;
/** SecretBox context of an account's upstream logout record: a sealed one copied to another account does not open. */
const logoutContext = (accountId: string) => `account:${accountId}:upstreamLogout`;
/** The context of the upstream ID token alone, as records written before the logout record existed sealed it. */
const idTokenContext = (accountId: string) => `account:${accountId}:upstreamIdToken`;

/**
 * An account as the store holds it: what the upstream logout needs (for OIDC the upstream ID token)
 * sealed like other secrets. Records from before hold the ID token alone, sealed
 * (`sealedUpstreamIdToken`) or, older still, in the clear (`upstreamIdToken`).
 */
type StoredAccount = Partial<BrokeredAccount> & { upstreamIssuer: string; updatedAt: number; sealedUpstreamLogout?: string; sealedUpstreamIdToken?: string; upstreamIdToken?: string };

/**
 * An account as written in its own key (`account:{id}`) when its index holds no values (a SET the
 * release before the previous wrote, see save): its issuer, email and time under one letter each.
 * Records of before (StoredAccount, with `updatedAt`) are read as they are.
 */
interface CompactAccount {
  i: string;
  e?: string;
  t: number;
}

/**
 * An account as its index keeps it (ACCOUNT_MEMBERS): `[updatedAt]` or `[updatedAt, email]` as JSON
 * (record), and the issuer as it is (issuer). Each value in a field of its own: a small hash stays a
 * listpack only while each value is at most 64 bytes (Redis's hash-max-listpack-value).
 */
function accountOfMembers(record: string, issuer: string | undefined): CompactAccount | undefined {
  try {
    const [t, e] = JSON.parse(record) as [unknown, unknown];
    if (typeof t !== 'number') return undefined;
    return { i: issuer ?? '', t, ...(typeof e === 'string' ? { e } : {}) };
  } catch {
    return undefined;
  }
}

/** A stored account as StoredAccount: a CompactAccount's fields under their names, a record of before as it is. */
function storedAccount(raw: StoredAccount | CompactAccount): StoredAccount {
  if (!('t' in raw) || 'updatedAt' in raw) return raw as StoredAccount;
  const { i, e, t, ...rest } = raw as CompactAccount & Partial<StoredAccount>;
  return { ...rest, upstreamIssuer: i, ...(e !== undefined ? { email: e } : {}), updatedAt: t };
}

/**
 * Accounts live as long as the longest grant that may still need their claims (refresh). Records
 * from before per-session state also hold what the upstream logout of their last login needed,
 * sealed with the SecretBox; they are read until they expire.
 */
export class AccountStore {
  readonly #store: Store;
  readonly #ttlSeconds: number;
  readonly #box: SecretBox | undefined;

  constructor(store: Store, ttlSeconds: number, box?: SecretBox) {
    this.#store = store;
    this.#ttlSeconds = ttlSeconds;
    this.#box = box;
  }

  async save(account: BrokeredAccount): Promise<void> {
    // The id, participant and subject are the key's (accountIdOf); the claims are the session's.
    const email = account.claims?.email ?? account.email;
    const indexed = typeof email === 'string' && email.length > 0 && email.length <= 320;
    // The account goes into its sessions' index (sessions-of-account, as ACCOUNT_MEMBERS), a key
    // every account has anyway: no key of its own (about 150 bytes of each account's memory, measured).
    // That index lives as long as its newest add, and every add asks this lifetime (the longest
    // grant's): putInSet's exact lifetime is that newest end. An index of the form written before
    // (a SET, no values) has the account written to its own key, as before.
    const record = JSON.stringify(indexed ? [account.updatedAt, email] : [account.updatedAt]);
    const members = { [ACCOUNT_MEMBERS.record]: record, [ACCOUNT_MEMBERS.issuer]: account.upstreamIssuer };
    const inIndex = this.#store.putInSet(ofAccountKey(account.accountId), members, this.#ttlSeconds).then(async (kept) => {
      if (!kept) await this.#store.setTemp(key(account.accountId), { i: account.upstreamIssuer, ...(indexed ? { e: email } : {}), t: account.updatedAt } satisfies CompactAccount, this.#ttlSeconds);
    });
    // The by-email index lives as long as the newest account in it (every add asks this lifetime:
    // putInSet), the participant's as long as the participant; older members may outlive their
    // record, which offboarding tolerates (it removes what it finds). Written together: one round trip.
    await Promise.all([
      this.#store.addToSet(ofParticipantKey(account.participantId), account.accountId),
      indexed ? this.#store.putInSet(byEmailKey(email), { [account.accountId]: '' }, this.#ttlSeconds) : undefined,
      inIndex,
    ]);
  }

  /** The accounts whose last login released this email (any case), for an administrator; each still has it. */
  async idsByEmail(email: string): Promise<string[]> {
    const ids = await this.#store.setMembers(byEmailKey(email));
    const emailOf = (account: BrokeredAccount | undefined) => account?.email ?? (account?.claims?.email as string | undefined);
    const found = await Promise.all(ids.map(async (id) => emailOf(await this.find(id))?.toLowerCase() === email.toLowerCase()));
    return ids.filter((_, i) => found[i]);
  }

  /**
   * The account, or undefined. A record with claims (written before per-session state) whose claims
   * are not an object within the mapping's claim bounds (stored before the bounds existed, or
   * damaged) counts as absent: the user signs in again, where the bounds apply, instead of every
   * request for them failing on it.
   */
  async find(accountId: string): Promise<BrokeredAccount | undefined> {
    // The account as its index keeps it, or its own key (written before, or beside an index of before): one round trip.
    const [[record, issuer], own] = await Promise.all([
      this.#store.setValues(ofAccountKey(accountId), [ACCOUNT_MEMBERS.record, ACCOUNT_MEMBERS.issuer]),
      this.#store.getTemp<StoredAccount | CompactAccount>(key(accountId)),
    ]);
    const raw = (record ? accountOfMembers(record, issuer) : undefined) ?? own;
    if (!raw || typeof raw !== 'object') return undefined;
    const stored = storedAccount(raw);
    const claims = stored.claims as unknown;
    if (claims !== undefined && (claims === null || typeof claims !== 'object' || Array.isArray(claims) || exceededClaimBound(claims))) return undefined;
    const participantId = participantOfAccount(accountId);
    const { sealedUpstreamLogout, sealedUpstreamIdToken, upstreamIdToken, upstreamLogout, ...rest } = stored;
    const account: BrokeredAccount = { accountId, participantId, upstreamSubject: accountId.slice(participantId.length + 1), ...rest };
    const logout = upstreamLogout ?? this.#openLogout(accountId, sealedUpstreamLogout, sealedUpstreamIdToken, upstreamIdToken);
    return logout === undefined ? account : { ...account, upstreamLogout: logout };
  }

  /** What the stored record keeps for the upstream logout; one that does not open (another key, another record's) is dropped: it is only a hint. */
  #openLogout(accountId: string, sealed: string | undefined, sealedIdToken: string | undefined, idToken: string | undefined): UpstreamLogout | undefined {
    try {
      if (sealed !== undefined) {
        const logout = JSON.parse(this.#box?.open(sealed, logoutContext(accountId)) ?? 'null') as UpstreamLogout | null;
        return logout && typeof logout === 'object' && typeof logout.protocol === 'string' ? logout : undefined;
      }
      const hint = sealedIdToken !== undefined ? this.#box?.open(sealedIdToken, idTokenContext(accountId)) : idToken;
      return typeof hint === 'string' ? { protocol: 'oidc', idTokenHint: hint } : undefined;
    } catch {
      return undefined;
    }
  }

  async remove(accountId: string): Promise<void> {
    await Promise.all([
      this.#store.deleteTemp(key(accountId)),
      ...Object.values(ACCOUNT_MEMBERS).map((member) => this.#store.removeFromSet(ofAccountKey(accountId), member)),
    ]);
  }

  /** Accounts that signed in through a participant (for offboarding). */
  async idsOfParticipant(participantId: string): Promise<string[]> {
    const [now, before] = await Promise.all([this.#store.setMembers(ofParticipantKey(participantId)), this.#store.setMembers(ofParticipantBefore(participantId))]);
    return [...new Set([...now, ...before])];
  }

  /** Forgets a participant's index of accounts (offboarding, once its accounts are removed). */
  async forgetParticipant(participantId: string): Promise<void> {
    await Promise.all([this.#store.deleteSet(ofParticipantKey(participantId)), this.#store.deleteSet(ofParticipantBefore(participantId))]);
  }

  idOf(participantId: string, upstreamSubject: string): string {
    return accountIdOf(participantId, upstreamSubject);
  }

  participantOf(accountId: string): string {
    return participantOfAccount(accountId);
  }
}

/** `{participantId}:{upstream sub}`: two IdPs can never produce the same account. */
export function accountIdOf(participantId: string, upstreamSubject: string): string {
  return `${participantId}:${upstreamSubject}`;
}

/** The participant of an account id (participant ids have no colon). */
export function participantOfAccount(accountId: string): string {
  const colon = accountId.indexOf(':');
  return colon < 0 ? '' : accountId.slice(0, colon);
}
