import { importJWK, type CryptoKey, type JWK } from 'jose';
import type { KeyManager } from './manager.ts';
import { publicJwk } from './public-jwk.ts';
import type { SigningAlgorithm } from './types.ts';

/** Store collection of Concord's own client keys (private_key_jwt at upstream IdPs). */
export const CLIENT_KEY_COLLECTION = 'broker-client-keys';


/**
 * Concord's own client keys, with which it authenticates at upstream token endpoints that require
 * `private_key_jwt` (RFC 7523 2.2, OIDC Core 9). They are a key ring of their own (KeyManager with
 * its own collection: sealed in the store, rotated on the signing keys' schedule, published before
 * they sign and after they stop), published at `GET {issuer}/broker/jwks` for the IdPs to fetch.
 */
export class BrokerClientKeys {
  readonly algorithm: SigningAlgorithm;
  readonly #ring: KeyManager;
  readonly #imported = new Map<string, Promise<CryptoKey>>();

  constructor(ring: KeyManager, algorithm: SigningAlgorithm) {
    this.#ring = ring;
    this.algorithm = algorithm;
  }

  /** The key that signs now, as a CryptoKey (imported once per key id). */
  async signingKey(): Promise<{ key: CryptoKey; kid: string }> {
    const jwk = this.#ring.keySet().jwks.keys[0];
    if (!jwk?.kid) throw new Error('no client key to sign with');
    const kid = jwk.kid;
    let key = this.#imported.get(kid);
    if (!key) {
      const { key_ops: _ops, ...privateJwk } = jwk;
      key = importJWK(privateJwk, this.algorithm).then((k) => k as CryptoKey);
      this.#imported.set(kid, key);
      key.catch(() => this.#imported.delete(kid));
    }
    return { key: await key, kid };
  }

  /** The public keys of every published client key (next, current, retiring): the JWKS at /broker/jwks. */
  publicJwks(): { keys: JWK[] } {
    return { keys: this.#ring.keySet().jwks.keys.map(publicJwk) };
  }
}
