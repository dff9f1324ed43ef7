import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, errors, jwtVerify, type JWK } from 'jose';
import { VerifyError } from './errors.ts';
import type { VerifierAlgorithm } from './types.ts';

/**
 * Where a proof's `jti` is remembered for the proof's lifetime, so a replayed proof is refused
 * (RFC 9449 §11.1). Share one (Redis `SET NX EX`, say) between the instances of a service, or a
 * proof refused by one is accepted by the next.
 */
export interface DPoPReplayCache {
  /**
   * Records `key` for `ttlSeconds`; answers true when it was not recorded yet (the first use),
   * false when it was (a replay). Must be atomic: of two concurrent calls, one gets true.
   */
  claim(key: string, ttlSeconds: number): boolean | Promise<boolean>;
}

/**
 * Server-provided nonces (RFC 9449 §8, §9): `check` says whether a proof's nonce is current,
 * `next` gives the one to send in the `DPoP-Nonce` header when it is not.
 */
export interface DPoPNonceSource {
  next(): string | Promise<string>;
  check(nonce: string): boolean | Promise<boolean>;
}

/** The DPoP settings of a verifier (`VerifierOptions.dpop`). Every member is optional. */
export interface DPoPOptions {
  /** Accepted proof `alg` values (asymmetric only). Default ES256, EdDSA, Ed25519, PS256, RS256. */
  algorithms?: readonly VerifierAlgorithm[];
  /**
   * Seconds a proof's `iat` may lie before (or after: clock skew) the time it is checked. Default
   * 60. It is also how long a `jti` is remembered, so it bounds the replay cache.
   */
  iatWindow?: number;
  /** Default: createMemoryReplayCache() of this verifier, 100,000 entries at most. */
  replayCache?: DPoPReplayCache;
  /** Nonces the proofs must carry. Default none: a proof's `nonce` claim is not required or checked. */
  nonce?: DPoPNonceSource;
  /** Refuse tokens that are not DPoP-bound (`dpop_unbound`), whatever the scheme. Default false. */
  required?: boolean;
}

export interface ResolvedDPoPOptions {
  algorithms: readonly VerifierAlgorithm[];
  iatWindow: number;
  replayCache: DPoPReplayCache;
  nonce: DPoPNonceSource | undefined;
  required: boolean;
}

/** What a DPoP-bound request brings: its proof (the `DPoP` header) and what the proof must match. */
export interface DPoPRequest {
  /** The value of the one `DPoP` header; undefined when there is none. */
  proof: string | undefined;
  /** The request's method (RFC 9449 `htm`), e.g. "GET". */
  method: string;
  /** The request's absolute URL as the client addressed it (RFC 9449 `htu`); query and fragment are ignored. */
  url: string | URL;
}

/** What a valid proof established. */
export interface DPoPProofResult {
  /** The JWK SHA-256 thumbprint (RFC 7638) of the proof's key: equals the token's `cnf.jkt`. */
  jkt: string;
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
}

export const DEFAULT_DPOP_ALGORITHMS: readonly VerifierAlgorithm[] = Object.freeze(['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']);

const MAX_JTI_LENGTH = 256;

/**
 * A bounded in-memory replay cache. Entries live `ttlSeconds`; at `maxEntries` the oldest entry is
 * dropped first (every entry of one verifier lives equally long, so the oldest expires first: under
 * a flood of more than `maxEntries` proofs per window, the oldest proofs could be replayed in the
 * rest of their window). Per process: use a shared cache with several instances.
 */
export function createMemoryReplayCache(options: { maxEntries?: number; now?: () => number } = {}): DPoPReplayCache {
  const maxEntries = options.maxEntries ?? 100_000;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('maxEntries must be a positive integer');
  const now = options.now ?? Date.now;
  // Insertion order is expiry order for one verifier's entries: the first is the next to expire.
  const expiries = new Map<string, number>();
  return {
    claim(key, ttlSeconds) {
      const at = now();
      const known = expiries.get(key);
      if (known !== undefined && known > at) return false;
      // Deleted first so that the entry moves to the end: insertion order stays expiry order.
      expiries.delete(key);
      for (const [first, expiry] of expiries) {
        if (expiry > at && expiries.size < maxEntries) break;
        expiries.delete(first);
      }
      expiries.set(key, at + ttlSeconds * 1000);
      return true;
    },
  };
}

export function resolveDPoPOptions(options: DPoPOptions | undefined, acceptable: ReadonlySet<string>): Readonly<ResolvedDPoPOptions> {
  const algorithms = options?.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new TypeError('dpop.algorithms must be a non-empty array');
  for (const alg of algorithms) {
    if (!acceptable.has(alg)) throw new TypeError(`dpop.algorithms: ${JSON.stringify(alg)} is not an asymmetric JWS algorithm (RFC 9449 §4.2)`);
  }
  const iatWindow = options?.iatWindow ?? 60;
  if (typeof iatWindow !== 'number' || !(iatWindow > 0) || !Number.isFinite(iatWindow)) throw new TypeError('dpop.iatWindow must be a positive number of seconds');
  return Object.freeze({
    algorithms: Object.freeze([...new Set(algorithms)]),
    iatWindow,
    replayCache: options?.replayCache ?? createMemoryReplayCache(),
    nonce: options?.nonce,
    required: options?.required === true,
  });
}

/** RFC 9449 §4.3 (9): the URI without query and fragment, normalised (RFC 3986 §6.2.2, §6.2.3) by the WHATWG URL parser. */
export function normaliseHtu(value: string | URL): string | undefined {
  const url = URL.parse(String(value));
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined;
  url.search = '';
  url.hash = '';
  return url.href;
}

/** RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

const mismatch = (claim: string) => new VerifyError('dpop_proof_mismatch', { claim });
const invalid = (claim: string, cause?: unknown) => new VerifyError('dpop_proof_invalid', cause === undefined ? { claim } : { claim, cause });

/**
 * Checks a DPoP proof (RFC 9449 §4.3) for a request and, when `accessToken` is given, for that
 * token (`ath`, §4.3 (11)) and, when `jkt` is given, for the key it is bound to (§7.1). In order:
 * `typ` dpop+jwt, `alg` in the allow-list, `jwk` a public key that verifies the signature; `jti`,
 * `htm`, `htu`, `iat` within `iatWindow`, the nonce when a source is configured, `ath`, the key's
 * thumbprint; last the `jti` in the replay cache (so only proofs valid in every other way are kept).
 *
 * Throws VerifyError: `dpop_proof_missing`, `dpop_proof_invalid` (typ, alg, jwk, signature, a
 * claim of the wrong type), `dpop_proof_mismatch` (htm, htu, ath, jkt), `dpop_proof_stale` (iat),
 * `dpop_nonce_required` (with `dpopNonce`), `dpop_proof_replayed` (jti).
 */
export async function verifyDPoPProof(
  request: DPoPRequest,
  options: Readonly<ResolvedDPoPOptions>,
  binding: { accessToken?: string; jkt?: string } = {},
): Promise<DPoPProofResult> {
  const { proof } = request;
  if (proof === undefined || proof === '') throw new VerifyError('dpop_proof_missing');
  // Several DPoP headers arrive joined by ", " (RFC 9110 §5.3); a compact JWS has neither.
  if (/[\s,]/.test(proof)) throw new VerifyError('dpop_proof_missing', { claim: 'DPoP' });

  let header;
  try {
    header = decodeProtectedHeader(proof);
  } catch (err) {
    throw invalid('DPoP', err);
  }
  const jwk = header.jwk as JWK | undefined;
  // RFC 9449 §4.3 (7): the key must be public; a private member means the client leaked its key.
  if (typeof jwk !== 'object' || jwk === null || jwk.kty === 'oct' || PRIVATE_MEMBERS.some((m) => m in jwk)) throw invalid('jwk');

  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...options.algorithms] }));
  } catch (err) {
    if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) throw invalid('alg', err);
    if (err instanceof errors.JWTClaimValidationFailed) throw invalid(err.claim, err);
    if (err instanceof errors.JWSSignatureVerificationFailed) throw invalid('signature', err);
    if (err instanceof errors.JOSEError) throw invalid('DPoP', err);
    throw err;
  }

  const { jti, htm, htu, iat, nonce, ath } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw invalid('jti');
  if (typeof htm !== 'string') throw invalid('htm');
  if (typeof htu !== 'string') throw invalid('htu');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalid('iat');
  if (nonce !== undefined && typeof nonce !== 'string') throw invalid('nonce');
  if (ath !== undefined && typeof ath !== 'string') throw invalid('ath');

  if (htm !== request.method) throw mismatch('htm');
  const expected = normaliseHtu(request.url);
  if (expected === undefined) throw new TypeError('DPoP: the request URL must be an absolute http(s) URL');
  if (normaliseHtu(htu) !== expected) throw mismatch('htu');

  const now = Math.floor(Date.now() / 1000);
  if (Math.abs(now - iat) > options.iatWindow) throw new VerifyError('dpop_proof_stale', { claim: 'iat' });

  if (options.nonce !== undefined && (nonce === undefined || !(await options.nonce.check(nonce)))) {
    throw new VerifyError('dpop_nonce_required', { claim: 'nonce', dpopNonce: await options.nonce.next() });
  }

  if (binding.accessToken !== undefined && ath !== accessTokenHash(binding.accessToken)) throw mismatch('ath');
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  if (binding.jkt !== undefined && jkt !== binding.jkt) throw mismatch('jkt');

  // Remembered for as long as the proof could pass the iat check: its window both ways.
  if (!(await options.replayCache.claim(`${jkt}:${jti}`, options.iatWindow * 2))) {
    throw new VerifyError('dpop_proof_replayed', { claim: 'jti' });
  }
  return { jkt, jti, iat };
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
