import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey, type JWK } from 'oidc-provider';

/**
 * How each algorithm signs with node:crypto: the digest, and for ECDSA the size of R and S in the
 * JWS signature (RFC 7518 3.4: R || S, where node:crypto gives DER).
 */
const SIGNERS: Readonly<Record<string, { digest: string | null; ecdsaSize?: number }>> = {
  ES256: { digest: 'sha256', ecdsaSize: 32 },
  EdDSA: { digest: null },
};

/** The algorithms LocalSigningKey signs: those whose signature takes the event loop no longer than handing it to the thread pool does. */
export const LOCAL_SIGNING_ALGORITHMS: ReadonlySet<string> = new Set(Object.keys(SIGNERS));

/**
 * A signing key oidc-provider hands its JWS signing input to (its `ExternalSigningKey`, feature
 * `externalSigningSupport`), signed here synchronously with node:crypto.
 *
 * Why: oidc-provider signs through jose, which uses WebCrypto. In Node 24 a WebCrypto signature is
 * a thread-pool job whose creation alone holds the event loop about as long as an ES256 signature
 * done in place (about 90 against 100 µs with eight requests in flight), and the thread pool then
 * spends the signature's CPU on top: 30 to 60 µs more per ES256 signature than signing in place.
 * For ECDSA P-256 and Ed25519, signing in place costs the event loop no more and the process less.
 * RSA keys are not wrapped: an RS256 or PS256 signature in place would hold the event loop 250 µs
 * and more, where WebCrypto holds it about 50 µs and signs on another core.
 *
 * The JWKs stay the KeyManager's; what oidc-provider publishes comes from `keyObject()`, the
 * public key. The feature is experimental in oidc-provider 9 (acknowledged as `experimental-01`):
 * an oidc-provider release that changes it refuses to start with that acknowledgement, so an
 * upgrade cannot change signing silently.
 */
export class LocalSigningKey extends ExternalSigningKey {
  readonly #kid: string;
  readonly #alg: string;
  readonly #private: KeyObject;
  readonly #public: KeyObject;
  readonly #signer: { digest: string | null; ecdsaSize?: number };

  /** `jwk`: a private JWK with `kid` and `alg` (one of LOCAL_SIGNING_ALGORITHMS). */
  constructor(jwk: JWK) {
    super();
    const signer = SIGNERS[jwk.alg ?? ''];
    if (!signer || !jwk.kid) throw new Error(`LocalSigningKey: a private JWK with kid and alg ${[...LOCAL_SIGNING_ALGORITHMS].join(' or ')} is needed`);
    this.#kid = jwk.kid;
    this.#alg = jwk.alg!;
    this.#signer = signer;
    this.#private = createPrivateKey({ key: jwk as never, format: 'jwk' });
    this.#public = createPublicKey(this.#private);
  }

  override get kid(): string {
    return this.#kid;
  }

  override get alg(): string {
    return this.#alg;
  }

  /** The public key: oidc-provider publishes and verifies with it. */
  override keyObject(): KeyObject {
    return this.#public;
  }

  /**
   * The JWS signature of `data` (the signing input, header.payload). Signed with the KeyObject
   * itself, not `{ key, dsaEncoding: 'ieee-p1363' }`: node:crypto tells a KeyObject from an options
   * object by catching what a KeyObject check throws, twice, and each throw captures a stack (about
   * 27 µs of a 55 µs ES256 signature); the DER it returns is turned into R || S here.
   */
  override sign(data: Uint8Array): Uint8Array {
    const signature = sign(this.#signer.digest, data, this.#private);
    return this.#signer.ecdsaSize ? derToJose(signature, this.#signer.ecdsaSize) : signature;
  }
}

/**
 * An ECDSA signature in DER (SEQUENCE { r INTEGER, s INTEGER }, SEC 1 C.5) as JWS wants it: R || S,
 * each `size` bytes, big-endian, left-padded with zeros (RFC 7518 3.4). For the curves whose
 * signatures are shorter than 128 bytes (short-form lengths): P-256 and P-384.
 */
export function derToJose(der: Uint8Array, size: number): Uint8Array {
  const fail = () => new Error('LocalSigningKey: not a DER ECDSA signature');
  if (der[0] !== 0x30 || der[1] !== der.length - 2) throw fail();
  const out = new Uint8Array(size * 2);
  let offset = 2;
  for (const at of [0, size]) {
    const length = der[offset + 1]!;
    if (der[offset] !== 0x02 || length > 0x7f || offset + 2 + length > der.length) throw fail();
    let start = offset + 2;
    const end = start + length;
    while (end - start > size && der[start] === 0) start++; // the 0 that keeps a high bit positive
    if (end - start > size) throw fail();
    out.set(der.subarray(start, end), at + size - (end - start));
    offset = end;
  }
  if (offset !== der.length) throw fail();
  return out;
}
