import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey, type RemoteJWKSet } from 'jose';
import { VerifyError } from './errors.ts';
import type { FetchLike } from './types.ts';

export interface KeySourceOptions {
  issuer: string;
  jwksUri: string | undefined;
  timeoutDuration: number;
  cooldownDuration: number;
  cacheMaxAge: number;
  retryDelay: number;
  fetch: FetchLike | undefined;
}

export interface KeySource {
  /** For jose.jwtVerify. Rejects with VerifyError `unknown_key` or `jwks_unavailable`. */
  readonly getKey: JWTVerifyGetKey;
  /** Discovery and a JWKS fetch now, unless already cached. */
  warmUp(): Promise<void>;
}

const DISCOVERY_PATH = '/.well-known/openid-configuration';

/** The discovery URL of an issuer (OIDC Discovery §4: any trailing slash of the issuer dropped). */
export function discoveryUrl(issuer: string): string {
  return issuer.replace(/\/+$/, '') + DISCOVERY_PATH;
}

/**
 * Concord's signing keys: the JWKS URL found once through discovery, the keys themselves cached
 * and refreshed by jose's remote JWKS set (`cacheMaxAge`, refetch on unknown `kid` at most once per
 * `cooldownDuration`). On top, a failed request blocks further requests for `retryDelay`, so a
 * flood of tokens while Concord is unreachable does not turn into a flood of requests to it.
 */
export function createKeySource(options: KeySourceOptions): KeySource {
  const fetchImpl: FetchLike = options.fetch ?? fetch;
  const headers = new Headers({ accept: 'application/json' });
  let blockedUntil = 0;
  let jwks: RemoteJWKSet | undefined;
  let connecting: Promise<RemoteJWKSet> | undefined;

  const unavailable = (cause: unknown): VerifyError => {
    blockedUntil = Date.now() + options.retryDelay;
    return new VerifyError('jwks_unavailable', { cause });
  };

  /** Every request to Concord goes through here, discovery and JWKS alike. */
  const guardedFetch: FetchLike = (url, init) => {
    if (Date.now() < blockedUntil) {
      return Promise.reject(new VerifyError('jwks_unavailable', { cause: new Error(`a request to Concord failed less than ${options.retryDelay}ms ago`) }));
    }
    return fetchImpl(url, init);
  };

  const remoteOptions = {
    timeoutDuration: options.timeoutDuration,
    cooldownDuration: options.cooldownDuration,
    cacheMaxAge: options.cacheMaxAge,
    [customFetch]: guardedFetch,
  };

  async function discover(): Promise<string> {
    const url = discoveryUrl(options.issuer);
    const response = await guardedFetch(url, {
      method: 'GET',
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(options.timeoutDuration),
    });
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}, expected 200`);
    const document: unknown = await response.json();
    if (typeof document !== 'object' || document === null) throw new Error(`${url} is not a JSON object`);
    const { issuer, jwks_uri: jwksUri } = document as { issuer?: unknown; jwks_uri?: unknown };
    // OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
    if (issuer !== options.issuer) throw new Error(`${url} names issuer ${JSON.stringify(issuer)}, expected ${JSON.stringify(options.issuer)}`);
    if (typeof jwksUri !== 'string') throw new Error(`${url} has no jwks_uri`);
    return jwksUri;
  }

  /** Discovery, once: concurrent callers share one request; after a failure the next call retries. */
  function connect(): Promise<RemoteJWKSet> {
    connecting ??= discover().then(
      (uri) => {
        connecting = undefined;
        try {
          return (jwks = createRemoteJWKSet(jwksUrl(uri, options.issuer), remoteOptions));
        } catch (err) {
          throw unavailable(err);
        }
      },
      (err: unknown) => {
        connecting = undefined;
        throw err instanceof VerifyError ? err : unavailable(err);
      },
    );
    return connecting;
  }

  // A configured JWKS URL is checked now: a typo is a configuration error, not an outage.
  if (options.jwksUri !== undefined) jwks = createRemoteJWKSet(jwksUrl(options.jwksUri, options.issuer), remoteOptions);

  function keyError(err: unknown): unknown {
    if (err instanceof VerifyError) return err;
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
      return new VerifyError('unknown_key', { cause: err });
    }
    // jose's own "alg not usable with a JWKS" (never reached with the allow-list) maps like jwtVerify's.
    if (err instanceof errors.JOSENotSupported) return new VerifyError('alg_not_allowed', { cause: err });
    // Network error, timeout, non-200, invalid JSON, invalid JWKS, a JWK that does not import.
    return unavailable(err);
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    const set = jwks ?? (await connect());
    try {
      return await set(header, token);
    } catch (err) {
      throw keyError(err);
    }
  };

  async function warmUp(): Promise<void> {
    const set = jwks ?? (await connect());
    if (set.fresh) return;
    try {
      await set.reload();
    } catch (err) {
      throw keyError(err);
    }
  }

  return { getKey, warmUp };
}

function jwksUrl(uri: string, issuer: string): URL {
  const url = URL.parse(uri);
  if (url === null) throw new TypeError(`jwks_uri ${JSON.stringify(uri)} is not a URL`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`jwks_uri ${url.href} is not http(s)`);
  // No downgrade: an https issuer's keys come over https.
  if (url.protocol === 'http:' && issuer.startsWith('https:')) throw new TypeError(`jwks_uri ${url.href} is not https like the issuer`);
  return url;
}
