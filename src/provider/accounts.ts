import { exceededClaimBound } from '../mapping/index.ts';
import type { SecretBox } from '../secrets/index.ts';
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
/** SecretBox context of an account's upstream ID token: a sealed token copied to another account does not open. */
const idTokenContext = (accountId: string) => `account:${accountId}:upstreamIdToken`;

/** An account as the store holds it: the upstream ID token sealed like other secrets (records from before hold it in the clear). */
type StoredAccount = Omit<BrokeredAccount, 'upstreamIdToken'> & { upstreamIdToken?: string; sealedUpstreamIdToken?: string };

/**
 * Accounts live as long as the longest grant that may still need their claims (refresh). The
 * upstream ID token (kept only as id_token_hint for upstream logout) is sealed with the SecretBox:
 * read access to the store does not yield it.
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
    const { upstreamIdToken, ...rest } = account;
    const stored: StoredAccount =
      upstreamIdToken === undefined ? rest : this.#box ? { ...rest, sealedUpstreamIdToken: this.#box.seal(upstreamIdToken, idTokenContext(account.accountId)) } : account;
    await this.#store.setTemp(key(account.accountId), stored, this.#ttlSeconds);
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
    const stored = await this.#store.getTemp<StoredAccount>(key(accountId));
    if (!stored) return undefined;
    const claims = stored.claims as unknown;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims) || exceededClaimBound(claims)) return undefined;
    const { sealedUpstreamIdToken, ...account } = stored;
    if (sealedUpstreamIdToken === undefined) return account;
    // A token that does not open (another key, copied from another record) is only a logout hint: drop it, keep the account.
    let upstreamIdToken: string | undefined;
    try {
      upstreamIdToken = this.#box?.open(sealedUpstreamIdToken, idTokenContext(accountId));
    } catch {
      upstreamIdToken = undefined;
    }
    return upstreamIdToken === undefined ? account : { ...account, upstreamIdToken };
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
