import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SecretBox } from '../secrets/index.ts';
import type { Store } from '../store/index.ts';
import type { KeyState, KeyView, SigningAlgorithm, StoredKey } from './types.ts';

const COOKIE_KEYS = 'cookie-keys';
const PAIRWISE_SALTS = 'pairwise-salt';

/** Where a key ring lives in the store; the signing keys keep the names they always had. */
interface RingNames {
  /** Record collection of the keys. */
  keys: string;
  /** Counter the first instance increments to create the first key. */
  init: string;
  /** Prefix of the per-period counters of scheduled rotation. */
  rotation: string;
  /** Channel announcing a rotation to the other instances. */
  channel: string;
  /** SecretBox context prefix of each sealed private key (`{seal}:{kid}`). */
  seal: string;
}

const SIGNING_KEYS: RingNames = { keys: 'signing-keys', init: 'keys:init', rotation: 'keys:rotation', channel: 'keys', seal: 'signing-key' };
const ringNames = (collection: string): RingNames => ({ keys: collection, init: `${collection}:init`, rotation: `${collection}:rotation`, channel: collection, seal: collection });

export interface KeyManagerOptions {
  store: Store;
  secrets: SecretBox;
  algorithm: SigningAlgorithm;
  /** seconds a new key is published before it signs */
  activationDelay: number;
  /** seconds the longest-lived signed token lives: how long a superseded key stays published */
  maxTokenTtl: number;
  /** seconds a superseded key stays published after its last token expired; default 60 */
  retireGrace?: number;
  /** scheduled rotation period in seconds; undefined = only on demand */
  rotateEvery?: number | undefined;
  /**
   * Another key ring with the same rotation rules, under this store collection (e.g. Concord's own
   * client keys for private_key_jwt at upstream IdPs). Default: the signing keys.
   */
  collection?: string;
  /** Also keep the cookie keys and the pairwise salt (the signing ring does). Default true. */
  sharedSecrets?: boolean;
  now?: () => number;
}

export interface KeySet {
  /** Private JWKs for oidc-provider: the current key first and able to sign, the others verify-only. */
  jwks: { keys: JWK[] };
  /** Changes whenever a key is added, activates or leaves: the provider is rebuilt then. */
  fingerprint: string;
}

/**
 * Signing and cookie keys, shared by every instance through the store. State is derived from
 * timestamps, so instances agree on which key signs without coordinating beyond the store.
 */
export class KeyManager {
  readonly #opts: KeyManagerOptions;
  #keys: StoredKey[] = [];
  #privateJwks = new Map<string, JWK>();
  #cookieKeys: string[] = [];
  #pairwiseSalt = '';
  readonly #now: () => number;
  readonly #names: RingNames;

  constructor(options: KeyManagerOptions) {
    this.#opts = options;
    this.#names = options.collection === undefined ? SIGNING_KEYS : ringNames(options.collection);
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Loads the key set; on a first start (no key anywhere) one instance generates the first key. */
  async init(): Promise<void> {
    await this.reload();
    if (this.#keys.length === 0 && (await this.#store.incr(this.#names.init)) === 1) {
      await this.#addKey(this.#now());
      await this.reload();
    }
    for (let attempt = 0; this.#keys.length === 0 && attempt < 50; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      await this.reload();
    }
    if (this.#keys.length === 0) throw new Error(`no key of ${this.#names.keys} could be loaded or created`);
    if (this.#opts.sharedSecrets === false) return;
    // Pairwise subjects must never change, whatever happens to the cookie keys: a salt of their own.
    // A new deployment writes its salt before its cookie keys, so cookie keys without a salt mean a
    // store from before the salt existed, whose pairwise subs came from the first cookie key: that
    // key becomes the salt, and every pairwise sub already handed out stays what it was.
    this.#cookieKeys = await this.#sharedSecrets(COOKIE_KEYS, {
      beforeCreate: () => this.#sharedSecrets(PAIRWISE_SALTS),
    });
    [this.#pairwiseSalt] = (await this.#sharedSecrets(PAIRWISE_SALTS, { initial: this.#cookieKeys[0] })) as [string];
  }

  get #store() {
    return this.#opts.store;
  }

  async reload(): Promise<void> {
    const stored = (await this.#store.listRecords<StoredKey>(this.#names.keys)).map((r) => r.value);
    stored.sort((a, b) => b.activatesAt - a.activatesAt || b.createdAt - a.createdAt);
    for (const key of stored) {
      if (!this.#privateJwks.has(key.kid)) this.#privateJwks.set(key.kid, JSON.parse(this.#opts.secrets.open(key.sealedPrivateJwk, `${this.#names.seal}:${key.kid}`)) as JWK);
    }
    this.#keys = stored;
  }

  /** Adds a key that signs after the activation delay. Returns its public view. */
  async rotate(): Promise<KeyView> {
    const key = await this.#addKey(this.#now() + this.#opts.activationDelay);
    await this.reload();
    await this.#store.publish(this.#names.channel, key.kid);
    return this.views().find((v) => v.kid === key.kid)!;
  }

  /** Rotates when the schedule says so; of all instances, one wins each period. */
  async rotateIfDue(): Promise<boolean> {
    const every = this.#opts.rotateEvery;
    if (!every) return false;
    const newest = this.#keys[0];
    if (newest && newest.createdAt + every > this.#now()) return false;
    const period = Math.floor(this.#now() / every);
    if ((await this.#store.incr(`${this.#names.rotation}:${period}`)) !== 1) return false;
    await this.rotate();
    return true;
  }

  /** Drops keys whose tokens have all expired. */
  async sweep(): Promise<number> {
    let removed = 0;
    for (const key of this.#keys) {
      if (this.#stateOf(key) === undefined) {
        await this.#store.deleteRecord(this.#names.keys, key.kid);
        this.#privateJwks.delete(key.kid);
        removed++;
      }
    }
    if (removed) await this.reload();
    return removed;
  }

  /** Calls back when another instance rotated. */
  async onRemoteChange(callback: () => void): Promise<() => Promise<void>> {
    return this.#store.subscribe(this.#names.channel, () => callback());
  }

  keySet(): KeySet {
    const keys: JWK[] = [];
    const states: string[] = [];
    const signing = this.#current();
    for (const key of [signing, ...this.#keys.filter((k) => k !== signing)]) {
      if (!key) continue;
      const state = this.#stateOf(key);
      if (!state) continue;
      const jwk = { ...this.#privateJwks.get(key.kid)!, kid: key.kid, alg: key.alg, use: 'sig' } as JWK;
      if (state !== 'current') jwk.key_ops = ['verify'];
      keys.push(jwk);
      states.push(`${key.kid}:${state}`);
    }
    return { jwks: { keys }, fingerprint: states.join(',') };
  }

  views(): KeyView[] {
    const out: KeyView[] = [];
    for (const key of this.#keys) {
      const state = this.#stateOf(key);
      if (!state) continue;
      const removeAt = this.#removeAt(key);
      out.push({
        kid: key.kid,
        alg: key.alg,
        state,
        createdAt: new Date(key.createdAt * 1000).toISOString(),
        activatesAt: new Date(key.activatesAt * 1000).toISOString(),
        ...(removeAt === undefined ? {} : { removeAt: new Date(removeAt * 1000).toISOString() }),
      });
    }
    return out;
  }

  /** Seconds since the signing key was created, and until the next scheduled rotation (for metrics). */
  ages(): { currentKeyAgeSeconds: number; secondsToNextRotation: number | undefined } {
    const current = this.#current();
    const now = this.#now();
    const newest = this.#keys[0];
    return {
      currentKeyAgeSeconds: current ? now - current.createdAt : 0,
      secondsToNextRotation: this.#opts.rotateEvery && newest ? newest.createdAt + this.#opts.rotateEvery - now : undefined,
    };
  }

  cookieKeys(): string[] {
    return this.#cookieKeys;
  }

  /** The secret pairwise subject identifiers are derived with; the same on every instance, for good. */
  pairwiseSalt(): string {
    return this.#pairwiseSalt;
  }

  /** The newest key whose activation time has come signs. */
  #current(): StoredKey | undefined {
    const now = this.#now();
    return this.#keys.find((k) => k.activatesAt <= now) ?? this.#keys.at(-1);
  }

  /** A key leaves once the key after it has signed for longer than any token lives. */
  #removeAt(key: StoredKey): number | undefined {
    const now = this.#now();
    const successor = this.#keys.filter((k) => k.activatesAt > key.activatesAt && k.activatesAt <= now).at(-1);
    return successor ? successor.activatesAt + this.#opts.maxTokenTtl + (this.#opts.retireGrace ?? 60) : undefined;
  }

  #stateOf(key: StoredKey): KeyState | undefined {
    const now = this.#now();
    const current = this.#current();
    if (key === current) return 'current';
    if (key.activatesAt > now) return 'next';
    const removeAt = this.#removeAt(key);
    return removeAt !== undefined && removeAt <= now ? undefined : 'retiring';
  }

  async #addKey(activatesAt: number): Promise<StoredKey> {
    const alg = this.#opts.algorithm;
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk);
    const key: StoredKey = {
      kid,
      alg,
      createdAt: this.#now(),
      activatesAt,
      sealedPrivateJwk: this.#opts.secrets.seal(JSON.stringify(jwk), `${this.#names.seal}:${kid}`),
    };
    await this.#store.putRecord(this.#names.keys, kid, key);
    return key;
  }

  /** Secrets every instance shares (cookie keys, pairwise salt): the first instance to start makes them. */
  async #sharedSecrets(collection: string, opts: { initial?: string | undefined; beforeCreate?: () => Promise<unknown> } = {}): Promise<string[]> {
    const open = (stored: string[]) => stored.map((s) => this.#opts.secrets.open(s, collection));
    const stored = await this.#store.getRecord<string[]>(collection, 'current');
    if (stored?.length) return open(stored);
    if ((await this.#store.incr(`${collection}:init`)) === 1) {
      await opts.beforeCreate?.();
      const secret = opts.initial ?? randomBytes(32).toString('base64url');
      await this.#store.putRecord(collection, 'current', [this.#opts.secrets.seal(secret, collection)]);
      return [secret];
    }
    for (let attempt = 0; attempt < 50; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      const again = await this.#store.getRecord<string[]>(collection, 'current');
      if (again?.length) return open(again);
    }
    throw new Error(`no ${collection} could be loaded or created`);
  }
}
