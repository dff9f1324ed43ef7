export type SigningAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

/** A signing key as kept in the store; the private JWK is sealed with CONCORD_SECRETS_KEY. */
export interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  /** epoch seconds */
  createdAt: number;
  /** From then on it signs (until a newer key activates). Before, it is only published. */
  activatesAt: number;
  sealedPrivateJwk: string;
}

/** next: published, not yet signing; current: signs; retiring: published until its tokens have expired. */
export type KeyState = 'next' | 'current' | 'retiring';

export interface KeyView {
  kid: string;
  alg: SigningAlgorithm;
  state: KeyState;
  createdAt: string;
  activatesAt: string;
  /** When a retiring key leaves the JWKS; absent while it may still sign. */
  removeAt?: string;
}
