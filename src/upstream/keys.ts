import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';

/** A key resolver for jose's `compactVerify` / `jwtVerify`. */
export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface UpstreamKeysOptions {
  /** Fetches the upstream's JWKS (throws UpstreamError when it cannot be had). */
  fetch: () => Promise<unknown>;
  /** The cached set is fetched again after this long in any case (milliseconds). */
  maxAgeMs: number;
  /** At most one refetch for an unknown key per this many milliseconds. */
  unknownKeyFloorMs: number;
  now?: () => number;
}

/**
 * An upstream's signing keys (its JWKS), for verifying its ID tokens and signed userinfo. Key
 * selection is jose's (`createLocalJWKSet`: kid, kty, alg, use); what is ours is when to fetch:
 *
 *   - on first use, and when the cached set is older than `maxAgeMs` (a removed key stops being
 *     accepted);
 *   - when a token names a key the cached set does not hold (the IdP rotated its keys): one
 *     immediate refetch, then the token is accepted or refused. At most one such refetch per
 *     `unknownKeyFloorMs`, however the set was last fetched (a fetch on first use, or the health
 *     probe's, never delays it), so a flood of tokens with made-up key ids costs the IdP one request
 *     per window;
 *   - a fetch under way is shared by every login that needs it.
 */
export class UpstreamKeys {
  readonly #opts: UpstreamKeysOptions;
  readonly #now: () => number;
  #local: KeyResolver | undefined;
  #fetchedAt = 0;
  #lastUnknownKeyRefetch = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;

  constructor(options: UpstreamKeysOptions) {
    this.#opts = options;
    this.#now = options.now ?? Date.now;
  }

  /** The resolver to hand to jose. */
  readonly resolve = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey | Uint8Array> => {
    if (!this.#local || this.#now() - this.#fetchedAt >= this.#opts.maxAgeMs) await this.#reload();
    try {
      return (await this.#local!(header, token)) as CryptoKey;
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      const now = this.#now();
      if (!this.#pending && now - this.#lastUnknownKeyRefetch < this.#opts.unknownKeyFloorMs) throw err;
      if (!this.#pending) this.#lastUnknownKeyRefetch = now;
      await this.#reload();
      return (await this.#local!(header, token)) as CryptoKey;
    }
  };

  /** A JWKS fetched elsewhere (the health probe): the cache takes it, the unknown-key floor is untouched. */
  update(jwks: unknown): void {
    this.#local = createLocalJWKSet(jwks as JSONWebKeySet);
    this.#fetchedAt = this.#now();
  }

  #reload(): Promise<void> {
    this.#pending ??= this.#opts
      .fetch()
      .then((jwks) => this.update(jwks))
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }
}
