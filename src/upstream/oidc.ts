import * as oidc from 'openid-client';
import {
  checkAuthorizedParty,
  checkCallbackIssuer,
  checkCode,
  checkErrorResponse,
  checkIdTokenAlgorithm,
  checkIssuedAt,
  checkPending,
  checkState,
  checkSubject,
} from './checks.ts';
import { UpstreamError, clip, toUpstreamError } from './errors.ts';
import { UpstreamHttp, measure, unmeasured } from './http.ts';
import type { Connector, OidcConnectorOptions, PendingUpstreamLogin, UpstreamIdentity } from './types.ts';

export const DEFAULT_SCOPES = ['openid', 'email', 'profile'] as const;
export const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_DISCOVERY_TTL_S = 3600;
/** After a failed background refresh, the next try waits this long (at most the TTL). */
const REFRESH_RETRY_MS = 30_000;

/** Algorithms no configuration can turn on: unsigned tokens, and HMAC (the "secret" would be our client secret or, worse, a public key). */
const isForbiddenAlg = (alg: string) => alg === 'none' || /^HS/i.test(alg);

interface Discovered {
  config: oidc.Configuration;
  metadata: oidc.ServerMetadata;
  /** Our allow-list intersected with what the upstream advertises. */
  algorithms: string[];
  fetchedAt: number;
}

export function createOidcConnector(opts: OidcConnectorOptions): Connector {
  return new OidcConnector(opts);
}

class OidcConnector implements Connector {
  readonly participantId: string;
  readonly issuer: string;
  readonly #opts: OidcConnectorOptions;
  readonly #http: UpstreamHttp;
  readonly #scopes: string;
  readonly #allowed: string[];
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  #current: Discovered | undefined;
  #inflight: Promise<Discovered> | undefined;
  #nextRefreshAttempt = 0;

  constructor(opts: OidcConnectorOptions) {
    this.participantId = opts.participantId;
    this.issuer = opts.issuer;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#ttlMs = (opts.discoveryTtlSeconds ?? DEFAULT_DISCOVERY_TTL_S) * 1000;
    this.#scopes = [...new Set(['openid', ...(opts.scopes ?? DEFAULT_SCOPES)])].join(' ');
    this.#allowed = (opts.allowedAlgorithms ?? [...DEFAULT_ALGORITHMS]).filter((alg) => !isForbiddenAlg(alg));
    this.#http = new UpstreamHttp({
      participantId: opts.participantId,
      timeoutMs: this.#timeoutMs,
      logger: opts.logger,
      // Loopback development (allowInsecureHttp) is a private network too.
      allowPrivateNetwork: opts.allowPrivateNetwork === true || opts.allowInsecureHttp === true,
    });
  }

  // ---- Connector -------------------------------------------------------------------------

  async beginLogin(opts: { redirectUri: string; loginHint?: string }): Promise<{ url: string; pending: PendingUpstreamLogin }> {
    assertRedirectUri(opts.redirectUri);
    const { config } = await this.#discovered();
    const pending: PendingUpstreamLogin = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      redirectUri: opts.redirectUri,
      createdAt: Date.now(),
    };
    const params: Record<string, string> = {
      response_type: 'code',
      redirect_uri: opts.redirectUri,
      scope: this.#scopes,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (opts.loginHint) params.login_hint = opts.loginHint;
    return { url: oidc.buildAuthorizationUrl(config, params).href, pending };
  }

  async completeLogin(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamIdentity> {
    const pid = this.participantId;
    checkPending(pending, pid);
    const { result, durationMs } = await measure(async () => {
      const { config, metadata, algorithms } = await this.#discovered();
      const params = callbackUrl.searchParams;

      // The authorization response, before anything is sent anywhere.
      checkState(params, pending, pid);
      checkCallbackIssuer(params, metadata.issuer, metadata.authorization_response_iss_parameter_supported === true, pid);
      checkErrorResponse(params, pid);
      checkCode(params, pid);

      // Code exchange + ID token: openid-client checks state and iss again, sends the PKCE verifier,
      // and validates the ID token (alg against our allow-list, iss, aud, azp for several audiences,
      // exp, iat/sub presence, nonce), then its signature against the upstream JWKS (non-repudiation).
      // openid-client derives redirect_uri from the URL it is given: give it the one we sent.
      const current = new URL(bareUrl(pending.redirectUri));
      current.search = callbackUrl.search;
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(config, current, {
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          pkceCodeVerifier: pending.codeVerifier,
          idTokenExpected: true,
        });
      } catch (err) {
        throw toUpstreamError(err, 'token', pid);
      }
      const idToken = tokens.id_token;
      const claims = tokens.claims() as Record<string, unknown> | undefined;
      if (!idToken || !claims) throw new UpstreamError('token_invalid', 'token response carries no ID token', { participantId: pid });

      // What openid-client leaves to us.
      checkIdTokenAlgorithm(idToken, algorithms, pid);
      checkIssuedAt(claims, pid);
      checkAuthorizedParty(claims, this.#opts.clientId, pid);
      const subject = checkSubject(claims, pid);

      let merged: Record<string, unknown> = { ...claims };
      if (this.#opts.fetchUserinfo) {
        let userinfo: Record<string, unknown>;
        try {
          // openid-client refuses a userinfo answer whose sub is not the ID token's.
          userinfo = (await oidc.fetchUserInfo(config, tokens.access_token, subject)) as Record<string, unknown>;
        } catch (err) {
          throw toUpstreamError(err, 'userinfo', pid);
        }
        // The signed ID token wins any conflict (iss, aud, sub, email, ...).
        merged = { ...userinfo, ...claims };
      }

      const identity: Omit<UpstreamIdentity, 'durationMs'> = { issuer: metadata.issuer, subject, claims: merged, idToken };
      if (Array.isArray(claims.amr) && claims.amr.every((v) => typeof v === 'string')) identity.amr = claims.amr as string[];
      if (typeof claims.acr === 'string') identity.acr = claims.acr;
      return identity;
    });
    return { ...result, durationMs };
  }

  async endSessionUrl(opts: { idTokenHint?: string; postLogoutRedirectUri: string; state?: string }): Promise<string | undefined> {
    const { config, metadata } = await this.#discovered();
    if (!metadata.end_session_endpoint) return undefined;
    const params: Record<string, string> = { post_logout_redirect_uri: opts.postLogoutRedirectUri };
    if (opts.idTokenHint) params.id_token_hint = opts.idTokenHint;
    if (opts.state) params.state = opts.state;
    return oidc.buildEndSessionUrl(config, params).href; // adds client_id
  }

  async probe(): Promise<{ issuer: string; endpoints: Record<string, string | undefined>; algorithms: string[] }> {
    const discovered = await this.#refresh();
    const { metadata, algorithms, config } = discovered;
    const jwksUri = metadata.jwks_uri!;
    let response: Response;
    try {
      response = await this.#http.request(jwksUri, { method: 'GET', headers: { accept: 'application/json, application/jwk-set+json' }, body: undefined }, 'jwks');
    } catch (err) {
      throw toUpstreamError(err, 'discovery', this.participantId);
    }
    if (response.status !== 200) throw this.#invalid(`jwks_uri answered HTTP ${response.status}`);
    let jwks: unknown;
    try {
      jwks = await response.json();
    } catch (cause) {
      throw this.#invalid('jwks_uri did not answer JSON', cause);
    }
    const keys = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw this.#invalid('jwks_uri answered no "keys" array');
    if (!keys.some((k) => algorithms.some((alg) => usableFor(k, alg)))) {
      throw this.#invalid(`the JWKS holds no signing key for ${algorithms.join(' ')}`);
    }
    // Warm openid-client's JWKS cache with what we just fetched.
    oidc.setJwksCache(config, { jwks: jwks as oidc.ExportedJWKSCache['jwks'], uat: Math.floor(Date.now() / 1000) });
    return {
      issuer: metadata.issuer,
      endpoints: {
        authorization: metadata.authorization_endpoint,
        token: metadata.token_endpoint,
        userinfo: metadata.userinfo_endpoint,
        jwks: metadata.jwks_uri,
        endSession: metadata.end_session_endpoint,
      },
      algorithms: [...algorithms],
    };
  }

  // ---- discovery cache ---------------------------------------------------------------------

  /** The cached discovery; past its TTL it is still used while a refresh runs in the background. */
  async #discovered(): Promise<Discovered> {
    const current = this.#current;
    if (!current) return this.#refresh();
    const now = Date.now();
    if (now - current.fetchedAt >= this.#ttlMs && !this.#inflight && now >= this.#nextRefreshAttempt) {
      unmeasured(() =>
        this.#refresh().catch((err: unknown) => {
          this.#nextRefreshAttempt = Date.now() + Math.min(REFRESH_RETRY_MS, this.#ttlMs);
          this.#opts.logger?.debug(
            { participant: this.participantId, code: (err as { code?: unknown }).code, reason: err instanceof Error ? err.message : String(err) },
            'upstream discovery refresh failed; keeping the last good document',
          );
        }),
      );
    }
    return current;
  }

  /** Fetches discovery now (joining a fetch already running) and makes it current when valid. */
  #refresh(): Promise<Discovered> {
    this.#inflight ??= this.#load()
      .then((next) => {
        const previous = this.#current;
        if (previous && previous.metadata.jwks_uri === next.metadata.jwks_uri) {
          const cache = oidc.getJwksCache(previous.config);
          if (cache) oidc.setJwksCache(next.config, cache);
        }
        this.#current = next;
        return next;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  async #load(): Promise<Discovered> {
    const insecure = this.#opts.allowInsecureHttp === true;
    let issuerUrl: URL;
    try {
      issuerUrl = new URL(this.issuer);
    } catch (cause) {
      throw this.#invalid(`issuer ${clip(this.issuer, 100)} is not a URL`, cause);
    }
    if (!isAllowedUrl(issuerUrl.href, insecure)) throw this.#invalid(`issuer ${issuerUrl.href} must be https`);

    const timeout = Math.ceil(this.#timeoutMs / 1000) + 1; // openid-client's own (seconds): ours fires first
    let metadata: oidc.ServerMetadata;
    try {
      const discovered = await oidc.discovery(issuerUrl, this.#opts.clientId, undefined, undefined, {
        [oidc.customFetch]: this.#http.fetch,
        timeout,
        execute: insecure ? [oidc.allowInsecureRequests] : [],
      });
      metadata = { ...discovered.serverMetadata() };
    } catch (err) {
      throw toUpstreamError(err, 'discovery', this.participantId);
    }
    const algorithms = this.#validateMetadata(metadata, insecure);

    const secret = this.#opts.clientSecret;
    const config = new oidc.Configuration(
      // Our copy of the metadata lists only the algorithms we accept: openid-client refuses any other ID token alg.
      { ...metadata, id_token_signing_alg_values_supported: algorithms },
      this.#opts.clientId,
      secret ? { client_secret: secret } : undefined,
      clientAuthentication(metadata, secret),
    );
    config[oidc.customFetch] = this.#http.fetch;
    config.timeout = timeout;
    if (insecure) oidc.allowInsecureRequests(config);
    // Verify ID token signatures against the upstream JWKS (openid-client skips it by default for
    // back-channel responses). An unknown kid makes it refetch the JWKS (at most once a minute).
    oidc.enableNonRepudiationChecks(config);

    this.#http.setEndpoints({
      jwks: metadata.jwks_uri,
      token: metadata.token_endpoint,
      userinfo: metadata.userinfo_endpoint,
    });
    return { config, metadata, algorithms, fetchedAt: Date.now() };
  }

  /** Checks a discovery document; returns the ID token algorithms we will accept from it. */
  #validateMetadata(metadata: oidc.ServerMetadata, insecure: boolean): string[] {
    // openid-client compares issuers too, but lets Entra "{tenantid}" templates and *.b2clogin.com
    // through: a participant is one tenant, so we want the exact issuer.
    if (metadata.issuer.includes('{') || !sameUrl(metadata.issuer, this.issuer)) {
      throw this.#invalid(`discovery issuer ${clip(metadata.issuer, 100)} is not ${this.issuer}`);
    }
    const required: Array<keyof oidc.ServerMetadata> = ['authorization_endpoint', 'token_endpoint', 'jwks_uri'];
    if (this.#opts.fetchUserinfo) required.push('userinfo_endpoint');
    for (const name of required) {
      if (!metadata[name]) throw this.#invalid(`discovery has no ${String(name)}`);
    }
    for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint'] as const) {
      const value = metadata[name];
      if (value !== undefined && (typeof value !== 'string' || !isAllowedUrl(value, insecure))) {
        throw this.#invalid(`discovery ${name} ${clip(value, 100)} is not an ${insecure ? 'http(s)' : 'https'} URL`);
      }
    }
    const responseTypes = metadata.response_types_supported;
    if (Array.isArray(responseTypes) && !responseTypes.includes('code')) {
      throw this.#invalid('the upstream does not support response_type=code');
    }
    // OIDC Discovery makes the list required; RS256 is the spec's default when it is missing.
    const advertised = Array.isArray(metadata.id_token_signing_alg_values_supported) ? metadata.id_token_signing_alg_values_supported : ['RS256'];
    const algorithms = this.#allowed.filter((alg) => advertised.includes(alg));
    if (algorithms.length === 0) {
      throw this.#invalid(`no acceptable ID token algorithm: the upstream offers ${clip(advertised.join(' '), 100)}, we accept ${this.#allowed.join(' ') || 'none'}`);
    }
    return algorithms;
  }

  #invalid(message: string, cause?: unknown): UpstreamError {
    return new UpstreamError('discovery_invalid', message, { participantId: this.participantId, cause });
  }
}

function clientAuthentication(metadata: oidc.ServerMetadata, secret: string | undefined): oidc.ClientAuth {
  if (!secret) return oidc.None();
  const methods = metadata.token_endpoint_auth_methods_supported;
  // client_secret_basic is the default when the upstream does not say (RFC 8414).
  if (!Array.isArray(methods) || methods.includes('client_secret_basic') || !methods.includes('client_secret_post')) {
    return oidc.ClientSecretBasic(secret);
  }
  return oidc.ClientSecretPost(secret);
}

function assertRedirectUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new TypeError('redirectUri must be an absolute URL');
  }
  // openid-client rebuilds redirect_uri from the callback URL minus its query: ours must have none.
  if (url.search || url.hash) throw new TypeError('redirectUri must have no query string or fragment');
}

function bareUrl(uri: string): string {
  const url = new URL(uri);
  url.search = '';
  url.hash = '';
  return url.href;
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

function isAllowedUrl(value: string, insecure: boolean): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'https:' || (insecure && protocol === 'http:');
  } catch {
    return false;
  }
}

/** Whether a JWK can verify signatures made with `alg`. */
function usableFor(key: unknown, alg: string): boolean {
  if (!key || typeof key !== 'object') return false;
  const jwk = key as { kty?: unknown; alg?: unknown; use?: unknown; crv?: unknown };
  if (jwk.use !== undefined && jwk.use !== 'sig') return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (alg.startsWith('RS') || alg.startsWith('PS')) return jwk.kty === 'RSA';
  if (alg === 'ES256') return jwk.kty === 'EC' && jwk.crv === 'P-256';
  if (alg === 'ES384') return jwk.kty === 'EC' && jwk.crv === 'P-384';
  if (alg === 'EdDSA' || alg === 'Ed25519') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
  return false;
}
