/**
 * JWS algorithms (RFC 7518 3.1; RFC 8037 3.1) a Concord key ring can hold keys for: asymmetric only
 * (`none` and HMAC are never offered: an HMAC key would be a secret shared with every verifier).
 */
export const SIGNING_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** A signing key as kept in the store; the private JWK is sealed with CONCORD_SECRETS_KEY. */
export interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  /** epoch seconds */
  createdAt: number;
  /** From then on it signs (until a newer key of its algorithm activates). Before, it is only published. */
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

/** One algorithm's keys at a glance (admin API, CLI, metrics). */
export interface AlgorithmView {
  alg: SigningAlgorithm;
  /** Whether keys.algorithms still lists it; false: its keys only verify until they retire. */
  offered: boolean;
  /** kid of the key signing with this algorithm now; absent for an algorithm no longer offered. */
  current?: string;
  /** kid of the key published to sign next (after a rotation, until it activates). */
  next?: string;
  /** kids of keys that no longer sign but verify until their tokens have expired. */
  retiring: string[];
}
