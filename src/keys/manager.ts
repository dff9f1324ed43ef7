import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { SecretBox } from '../secrets/index.ts';
import type { Store } from '../store/index.ts';
import type { AlgorithmView, KeyState, KeyView, SigningAlgorithm, StoredKey } from './types.ts';

const COOKIE_KEYS = 'cookie-keys';
const PAIRWISE_SALTS = 'pairwise-salt';

/** Where a key ring lives in the store; the signing keys keep the names they always had. */
interface RingNames {
  /** Record collection of the keys. */
  keys: string;
  /** Prefix of the lease (`{init}:{alg}`) of the instance creating an algorithm's first key. */
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
  /**
   * Every algorithm the ring keeps a current key for (each its own key, all rotated together).
   * Keys of an algorithm dropped from the list stay published, verify-only, until the next rotation's
   * keys have signed for longer than any token lives.
   */
  algorithms: readonly SigningAlgorithm[];
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
  /**
   * Private JWKs for oidc-provider: each offered algorithm's current key first (in the order of
   * `algorithms`), able to sign; every other published key verify-only (`key_ops: ["verify"]`).
   */
  jwks: { keys: JWK[] };
  /** Changes whenever a key is added, activates or leaves: the provider is rebuilt then. */
  fingerprint: string;
}

/** How long the lease of the instance creating an algorithm's first key lasts (seconds). */
const INIT_LEASE_S = 30;

/**
 * Signing and cookie keys, shared by every instance through the store. State is derived from
 * timestamps, so instances agree on which key signs without coordinating beyond the store.
 *
 * One key ring, several algorithms: each offered algorithm has its own current key, and a rotation
 * adds a key for every one of them at once, so the overlap rules (published `activationDelay` before
 * it signs; published until `maxTokenTtl + retireGrace` after its successor took over) hold for each.
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

  /**
   * Loads the key set. An offered algorithm without a key (a first start, or an algorithm added to
   * the list, e.g. RS256 on a store from the single-algorithm days) gets one, made by one instance
   * (a lease in the store) and signing at once: no token was ever signed with that algorithm, so no
   * verifier holds a stale copy of the key set for it.
   * @throws Error when an algorithm's key can be neither loaded nor created within 5 s.
   */
  async init(): Promise<void> {
    await this.reload();
    await this.addMissing();
    for (let attempt = 0; this.#missing().length > 0 && attempt < 50; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      await this.reload();
    }
    const missing = this.#missing();
    if (missing.length > 0) throw new Error(`no ${missing.join(', ')} key of ${this.#names.keys} could be loaded or created`);
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
    // Newest first; the kid breaks ties, so every instance orders (and picks the signing key) alike.
    stored.sort((a, b) => b.activatesAt - a.activatesAt || b.createdAt - a.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
    for (const key of stored) {
      if (!this.#privateJwks.has(key.kid)) this.#privateJwks.set(key.kid, JSON.parse(this.#opts.secrets.open(key.sealedPrivateJwk, `${this.#names.seal}:${key.kid}`)) as JWK);
    }
    this.#keys = stored;
  }

  /**
   * Gives every offered algorithm without a key one, signing at once (one instance makes it: a lease
   * in the store). At start, and on every reload (app.ts): a key ring emptied of an algorithm's keys
   * (an instance of an earlier, single-algorithm release sweeping them during a rolling upgrade)
   * heals itself instead of leaving that algorithm unable to sign. Returns the algorithms it added.
   */
  async addMissing(): Promise<SigningAlgorithm[]> {
    const added: SigningAlgorithm[] = [];
    for (const alg of this.#missing()) {
      const lease = `${this.#names.init}:${alg}`;
      if (!(await this.#store.claimTemp(lease, 1, INIT_LEASE_S))) continue;
      try {
        // Read again under the lease: another instance may have made the key since.
        await this.reload();
        if (!this.#missing().includes(alg)) continue;
        await this.#addKey(alg, this.#now());
        added.push(alg);
      } finally {
        // Freed once the key is in the store: whoever claims it next reads that key first.
        await this.#store.deleteTemp(lease);
      }
    }
    if (added.length) {
      await this.reload();
      await this.#store.publish(this.#names.channel, added.join(','));
    }
    return added;
  }

  /** The algorithms this ring offers, in the configured order. */
  get algorithms(): readonly SigningAlgorithm[] {
    return this.#opts.algorithms;
  }

  /**
   * Adds a key for every offered algorithm, all signing from the same moment (after the activation
   * delay). Returns their public views, in the order of `algorithms`.
   */
  async rotate(): Promise<KeyView[]> {
    const activatesAt = this.#now() + this.#opts.activationDelay;
    const added: StoredKey[] = [];
    for (const alg of this.#opts.algorithms) added.push(await this.#addKey(alg, activatesAt));
    await this.reload();
    await this.#store.publish(this.#names.channel, added.map((k) => k.kid).join(','));
    const views = this.views();
    return added.map((key) => views.find((v) => v.kid === key.kid)!);
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
    const signing = this.#opts.algorithms.map((alg) => this.#current(alg)).filter((k): k is StoredKey => k !== undefined);
    for (const key of [...signing, ...this.#keys.filter((k) => !signing.includes(k))]) {
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

  /** Each algorithm's keys by state: every offered one, then any whose keys are still published. */
  algorithmViews(): AlgorithmView[] {
    const views = this.views();
    const algs = [...new Set([...this.#opts.algorithms, ...views.map((v) => v.alg)])];
    return algs.map((alg) => {
      const own = views.filter((v) => v.alg === alg);
      const current = own.find((v) => v.state === 'current')?.kid;
      const next = own.find((v) => v.state === 'next')?.kid;
      return {
        alg,
        offered: this.#opts.algorithms.includes(alg),
        ...(current ? { current } : {}),
        ...(next ? { next } : {}),
        retiring: own.filter((v) => v.state === 'retiring').map((v) => v.kid),
      };
    });
  }

  /**
   * The private JWK (with kid and alg) of the key that signs with `alg` now, for what Concord signs
   * itself (signed userinfo responses); undefined when `alg` is not offered.
   */
  signingJwk(alg: SigningAlgorithm): JWK | undefined {
    const key = this.#opts.algorithms.includes(alg) ? this.#current(alg) : undefined;
    return key && { ...this.#privateJwks.get(key.kid)!, kid: key.kid, alg: key.alg };
  }

  /**
   * Per offered algorithm, seconds since its signing key was created; and seconds until the next
   * scheduled rotation, which rotates them all (for metrics).
   */
  ages(): { currentKeyAgeSeconds: Map<SigningAlgorithm, number>; secondsToNextRotation: number | undefined } {
    const now = this.#now();
    const newest = this.#keys[0];
    const currentKeyAgeSeconds = new Map<SigningAlgorithm, number>();
    for (const alg of this.#opts.algorithms) {
      const current = this.#current(alg);
      if (current) currentKeyAgeSeconds.set(alg, now - current.createdAt);
    }
    return {
      currentKeyAgeSeconds,
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

  /** Offered algorithms without any key in the store. */
  #missing(): SigningAlgorithm[] {
    return this.#opts.algorithms.filter((alg) => !this.#keys.some((k) => k.alg === alg));
  }

  /** Of an offered algorithm's keys, the newest whose activation time has come signs (else its oldest). */
  #current(alg: SigningAlgorithm): StoredKey | undefined {
    if (!this.#opts.algorithms.includes(alg)) return undefined;
    const now = this.#now();
    const own = this.#keys.filter((k) => k.alg === alg);
    return own.find((k) => k.activatesAt <= now) ?? own.at(-1);
  }

  /**
   * A key leaves once the key after it has signed for longer than any token lives: the next of its
   * algorithm, or, for an algorithm no longer offered, the next of any algorithm.
   */
  #removeAt(key: StoredKey): number | undefined {
    const now = this.#now();
    const offered = this.#opts.algorithms.includes(key.alg);
    const successor = this.#keys.filter((k) => (!offered || k.alg === key.alg) && k.activatesAt > key.activatesAt && k.activatesAt <= now).at(-1);
    return successor ? successor.activatesAt + this.#opts.maxTokenTtl + (this.#opts.retireGrace ?? 60) : undefined;
  }

  #stateOf(key: StoredKey): KeyState | undefined {
    const now = this.#now();
    if (key === this.#current(key.alg)) return 'current';
    if (key.activatesAt > now) return 'next';
    const removeAt = this.#removeAt(key);
    return removeAt !== undefined && removeAt <= now ? undefined : 'retiring';
  }

  async #addKey(alg: SigningAlgorithm, activatesAt: number): Promise<StoredKey> {
    // RSA keys of 2048 bits (RFC 7518 3.3, 3.5: at least 2048).
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' || alg === 'PS256' ? { modulusLength: 2048 } : {}) });
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
