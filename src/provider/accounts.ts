import { exceededClaimBound } from '../mapping/index.ts';
import type { Store } from '../store/index.ts';

/** What Concord knows of a person: the mapped claims of their last brokered login. Concord owns no users. */
export interface BrokeredAccount {
  /** `{participantId}:{upstream sub}` */
  accountId: string;
  participantId: string;
  upstreamIssuer: string;
  upstreamSubject: string;
  /** Claims after the participant's mapping and the domain policy. */
  claims: Record<string, unknown>;
  /** The upstream ID token, kept only as id_token_hint for upstream logout. */
  upstreamIdToken?: string;
  updatedAt: number;
}

const key = (accountId: string) => `account:${accountId}`;

/** Accounts live as long as the longest grant that may still need their claims (refresh). */
export class AccountStore {
  readonly #store: Store;
  readonly #ttlSeconds: number;

  constructor(store: Store, ttlSeconds: number) {
    this.#store = store;
    this.#ttlSeconds = ttlSeconds;
  }

  async save(account: BrokeredAccount): Promise<void> {
    await this.#store.setTemp(key(account.accountId), account, this.#ttlSeconds);
    // The index lives as long as the newest account in it; older members may outlive their record,
    // which offboarding tolerates (it removes what it finds).
    await this.#store.addToSet(`participant-accounts:${account.participantId}`, account.accountId, this.#ttlSeconds);
  }

  /**
   * The account, or undefined. A record whose claims are not an object within the mapping's claim
   * bounds (stored before the bounds existed, or damaged) counts as absent: the user signs in again,
   * where the bounds apply, instead of every request for them failing on it.
   */
  async find(accountId: string): Promise<BrokeredAccount | undefined> {
    const account = await this.#store.getTemp<BrokeredAccount>(key(accountId));
    if (!account) return undefined;
    const claims = account.claims as unknown;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || exceededClaimBound(claims)) return undefined;
    return account;
  }

  async remove(accountId: string): Promise<void> {
    await this.#store.deleteTemp(key(accountId));
  }

  /** Accounts that signed in through a participant (for offboarding). */
  idsOfParticipant(participantId: string): Promise<string[]> {
    return this.#store.setMembers(`participant-accounts:${participantId}`);
  }
}

/** `{participantId}:{upstream sub}`: two IdPs can never produce the same account. */
export function accountIdOf(participantId: string, upstreamSubject: string): string {
  return `${participantId}:${upstreamSubject}`;
}
