import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import { certificatePem, selfSignedCertificate } from './certificate.ts';
import type { KeyManager } from './manager.ts';
import type { KeyState } from './types.ts';

/** Store collection of Concord's SAML SP keys (signing AuthnRequests and logout messages, decrypting assertions). */
export const SAML_KEY_COLLECTION = 'saml-sp-keys';

/** A published SP key with its certificate. */
export interface SamlSpKey {
  kid: string;
  state: KeyState;
  /** PKCS#8 PEM. Never leaves Concord. */
  privateKeyPem: string;
  /** Self-signed X.509 certificate, PEM. */
  certificatePem: string;
  /** The certificate's DER, base64 without armour (what `<ds:X509Certificate>` carries). */
  certificateBase64: string;
}

/** How long an SP certificate says it is valid (seconds): IdPs use it as a key wrapper only, rotation is by metadata. */
const CERTIFICATE_VALIDITY_S = 10 * 365 * 86400;

/**
 * Concord's SAML SP keys: one RSA key ring (KeyManager with its own collection: sealed in the store,
 * rotated on `keys.rotateEvery` with overlap), each key both signing (AuthnRequest, LogoutRequest,
 * LogoutResponse, SAML bindings 3.4.4.1) and decrypting (EncryptedAssertion, XML Encryption). The
 * SP metadata lists every published key (next, current, retiring), so during a rollover an IdP that
 * re-reads it trusts the next key before it signs and may encrypt to either; Concord decrypts with
 * whichever key an assertion was encrypted to. Certificates are derived from each key (certificate.ts).
 */
export class SamlSpKeys {
  readonly #ring: KeyManager;
  readonly #cache = new Map<string, Omit<SamlSpKey, 'state'>>();

  constructor(ring: KeyManager) {
    this.#ring = ring;
  }

  /** Every published key, the one that signs now first. */
  published(): SamlSpKey[] {
    const created = new Map(this.#ring.views().map((v) => [v.kid, v]));
    const keys = this.#ring.keySet().jwks.keys;
    const out: SamlSpKey[] = [];
    for (const jwk of keys) {
      const view = created.get(jwk.kid!);
      if (view) out.push({ ...this.#material(jwk, Date.parse(view.createdAt)), state: view.state });
    }
    return out;
  }

  /** The key that signs now. */
  current(): SamlSpKey {
    const key = this.published()[0];
    if (!key) throw new Error('no SAML SP key to sign with');
    return key;
  }

  #material(jwk: JWK, createdAtMs: number): Omit<SamlSpKey, 'state'> {
    const kid = jwk.kid!;
    const cached = this.#cache.get(kid);
    if (cached) return cached;
    const { key_ops: _ops, use: _use, alg: _alg, ...privateJwk } = jwk;
    const privateKey = createPrivateKey({ key: privateJwk as JWK & { kty: string }, format: 'jwk' });
    const publicKey = createPublicKey(privateKey);
    const notBefore = new Date(Math.floor(createdAtMs / 1000) * 1000);
    const der = selfSignedCertificate({
      privateKey,
      publicKey,
      commonName: 'Concord SAML SP',
      serialSeed: kid,
      notBefore,
      notAfter: new Date(notBefore.getTime() + CERTIFICATE_VALIDITY_S * 1000),
    });
    const material = {
      kid,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certificatePem: certificatePem(der),
      certificateBase64: der.toString('base64'),
    };
    this.#cache.set(kid, material);
    return material;
  }
}
