import { compactVerify, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import {
  CLOCK_TOLERANCE_S,
  checkAuthorizedParty,
  checkCallbackIssuer,
  checkCode,
  checkErrorResponse,
  checkIdTokenAlgorithm,
  checkIssuedAt,
  checkPending,
  checkState,
  checkSubject,
  responseParameters,
  single,
} from './checks.ts';
import { LogoutTokenError, UpstreamError, clip, toUpstreamError } from './errors.ts';
import { UpstreamHttp, measure } from './http.ts';
import { RefreshingValue } from './refreshing.ts';
import { UpstreamKeys } from './keys.ts';
import { lenientTokenResponse } from './lenient.ts';
import type {
  CallbackInput,
  Connector,
  LoginRequest,
  LogoutRequest,
  OidcConnectorOptions,
  OidcRefreshState,
  PendingLogin,
  PendingOidcLogin,
  ProbeResult,
  RefreshOutcome,
  TokenEndpointAuthMethod,
  UpstreamIdentity,
  UpstreamLogoutNotice,
  UpstreamRefreshState,
} from './types.ts';

export const DEFAULT_SCOPES = ['openid', 'email', 'profile'] as const;
export const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_DISCOVERY_TTL_S = 3600;
/**
 * A token signed with a key (`kid`) the cached JWKS does not hold makes the connector fetch the
 * JWKS again at once, so a login right after the IdP rotated its keys succeeds; at most once per
 * this many milliseconds, whatever the health probe does, and concurrent logins share the fetch.
 */
export const JWKS_REFETCH_FLOOR_MS = 10_000;
/** The JWKS is fetched again after this long in any case (a removed key stops being accepted). */
const JWKS_MAX_AGE_MS = 300_000;

/** The back-channel logout event a logout token must carry (OIDC Back-Channel Logout 1.0 2.4). */
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** A logout token without `exp` (drafts before 1.0 final had none) is accepted this long after its `iat`, seconds. */
const LOGOUT_TOKEN_MAX_AGE_S = 600;
/** An access token is not used for a re-check in its last seconds (clock skew, the call's own time). */
const ACCESS_TOKEN_MARGIN_S = 30;

/** Userinfo refused Concord's access token (401): at login the IdP's setup is wrong; at a re-check, the grant is gone. */
class AccessTokenRefused extends UpstreamError {}

/** Algorithms no configuration can turn on: unsigned tokens, and HMAC (the "secret" would be our client secret or, worse, a public key). */
const isForbiddenAlg = (alg: string) => alg === 'none' || /^HS/i.test(alg);

interface Discovered {
  config: oidc.Configuration;
  metadata: oidc.ServerMetadata;
  /** Our allow-list intersected with what the upstream advertises. */
  algorithms: string[];
  /** The upstream's signing keys: refetched for an unknown kid, at most once per JWKS_REFETCH_FLOOR_MS. */
  keys: UpstreamKeys;
  /** Whether completeLogin calls userinfo. */
  fetchUserinfo: boolean;
  /** `response_mode` sent with each authorization request, when one is sent. */
  responseMode: 'query' | 'form_post' | undefined;
  fetchedAt: number;
}

export function createOidcConnector(opts: OidcConnectorOptions): Connector {
  return new OidcConnector(opts);
}

/**
 * An OIDC upstream (authorization code + PKCE) through openid-client: discovery (cached, refreshed
 * in the background), the authorization request, the callback's checks (checks.ts), the code
 * exchange and the ID token's claims (openid-client), its signature (jose, against the upstream
 * JWKS with the refetch rule above), userinfo (plain or signed), RP-initiated logout.
 */
class OidcConnector implements Connector {
  readonly participantId: string;
  readonly protocol = 'oidc' as const;
  readonly issuer: string;
  readonly #opts: OidcConnectorOptions;
  readonly #http: UpstreamHttp;
  readonly #scopes: string;
  readonly #allowed: string[];
  readonly #timeoutMs: number;
  readonly #discovery: RefreshingValue<Discovered>;

  constructor(opts: OidcConnectorOptions) {
    this.participantId = opts.participantId;
    this.issuer = opts.issuer;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#discovery = new RefreshingValue({
      load: () => this.#load(),
      ttlMs: (opts.discoveryTtlSeconds ?? DEFAULT_DISCOVERY_TTL_S) * 1000,
      onRefreshError: (err) =>
        opts.logger?.debug(
          { participant: this.participantId, code: (err as { code?: unknown }).code, reason: err instanceof Error ? err.message : String(err) },
          'upstream discovery refresh failed; keeping the last good document',
        ),
    });
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

  async beginLogin(request: LoginRequest): Promise<{ url: string; pending: PendingLogin }> {
    assertRedirectUri(request.redirectUri);
    const { config, responseMode } = await this.#discovered();
    const pending: PendingOidcLogin = {
      protocol: 'oidc',
      state: request.state ?? oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      redirectUri: request.redirectUri,
      createdAt: Date.now(),
    };
    const params: Record<string, string> = {
      response_type: 'code',
      redirect_uri: request.redirectUri,
      scope: this.#scopes,
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (responseMode) params.response_mode = responseMode;
    // What the service asked for (OIDC Core 3.1.2.1), as far as the participant forwards it.
    const forwarded = request.params ?? {};
    if (forwarded.login_hint) params.login_hint = forwarded.login_hint;
    if (forwarded.prompt?.length) params.prompt = forwarded.prompt.join(' ');
    if (forwarded.max_age !== undefined) params.max_age = String(forwarded.max_age);
    if (forwarded.acr_values?.length) params.acr_values = forwarded.acr_values.join(' ');
    if (forwarded.ui_locales?.length) params.ui_locales = forwarded.ui_locales.join(' ');
    return { url: oidc.buildAuthorizationUrl(config, params).href, pending };
  }

  callbackState(callback: CallbackInput): string | undefined {
    const params = callback.method === 'POST' ? callback.body : callback.query;
    return single(params, 'state') ?? undefined;
  }

  async completeLogin(callback: CallbackInput, pending: PendingLogin): Promise<UpstreamIdentity> {
    const pid = this.participantId;
    checkPending(pending, pid);
    const { result, durationMs } = await measure(async () => {
      const discovered = await this.#discovered();
      const { config, metadata, algorithms } = discovered;
      const params = responseParameters(callback, pid);

      // The authorization response, before anything is sent anywhere.
      checkState(params, pending, pid);
      checkCallbackIssuer(params, metadata.issuer, metadata.authorization_response_iss_parameter_supported === true, pid);
      checkErrorResponse(params, pid);
      checkCode(params, pid);

      // Code exchange + ID token claims: openid-client checks state and iss again, sends the PKCE
      // verifier, and validates the ID token (alg against our allow-list, iss, aud, azp for several
      // audiences, exp, iat/sub presence, nonce). openid-client derives redirect_uri from the URL it
      // is given: give it the one we sent, with the response's parameters (from a query or a form).
      const current = new URL(bareUrl(pending.redirectUri));
      current.search = params.toString();
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
      const idToken = tokens.id_token!; // lenientTokenResponse refused a response without one
      const claims = tokens.claims() as Record<string, unknown>;

      // Its signature, against the upstream's keys (OIDC Core 3.1.3.7 #6; a key rotation at the IdP is followed at once).
      await this.#verifySignature(idToken, discovered.keys, algorithms);
      // What openid-client leaves to us.
      checkIdTokenAlgorithm(idToken, algorithms, pid);
      checkIssuedAt(claims, pid);
      checkAuthorizedParty(claims, this.#opts.clientId, pid);
      const subject = checkSubject(claims, pid);

      let merged: Record<string, unknown> = { ...claims };
      if (discovered.fetchUserinfo) {
        const userinfo = await this.#userinfo(discovered, tokens.access_token, subject);
        // The signed ID token wins any conflict (iss, aud, sub, email, ...).
        merged = { ...userinfo, ...claims };
      }

      const refresh = this.#refreshState(discovered, tokens, merged);
      const identity: Omit<UpstreamIdentity, 'durationMs'> = {
        issuer: metadata.issuer,
        subject,
        claims: merged,
        logout: { protocol: 'oidc', idTokenHint: idToken, ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}) },
        ...(typeof claims.sid === 'string' ? { sessionId: claims.sid } : {}),
        ...(refresh ? { refresh } : {}),
      };
      if (typeof claims.auth_time === 'number' && Number.isFinite(claims.auth_time)) identity.authTime = claims.auth_time;
      if (Array.isArray(claims.amr) && claims.amr.every((v) => typeof v === 'string')) identity.amr = claims.amr as string[];
      if (typeof claims.acr === 'string') identity.acr = claims.acr;
      return identity;
    });
    return { ...result, durationMs };
  }

  /**
   * Asks the upstream again (Connector.refresh): with the refresh token (RFC 6749 6; a new ID token in
   * the answer is checked as at login, and its `sub` must be the login's, OIDC Core 12.2), else with
   * the access token at userinfo while it is valid; then userinfo as at login. `invalid_grant` at the
   * token endpoint and 401 at userinfo: gone.
   */
  async refresh(state: UpstreamRefreshState): Promise<RefreshOutcome> {
    const pid = this.participantId;
    if (state?.protocol !== 'oidc' || typeof state.claims?.sub !== 'string') throw new UpstreamError('token_invalid', 'no usable re-check state for this session', { participantId: pid });
    const subject = state.claims.sub;
    const { result } = await measure(async (): Promise<RefreshOutcome> => {
      const discovered = await this.#discovered();
      const { config, metadata, algorithms } = discovered;
      let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>> | undefined;
      let accessToken: string | undefined;
      if (state.refreshToken) {
        try {
          tokens = await oidc.refreshTokenGrant(config, state.refreshToken);
        } catch (err) {
          const error = toUpstreamError(err, 'token', pid);
          if (error.upstreamError === 'invalid_grant') return { kind: 'gone', reason: 'invalid_grant' };
          throw error;
        }
        accessToken = tokens.access_token;
      } else if (state.accessToken && state.accessTokenExpiresAt !== undefined && state.accessTokenExpiresAt - ACCESS_TOKEN_MARGIN_S > Math.floor(Date.now() / 1000)) {
        accessToken = state.accessToken;
      } else {
        return { kind: 'unconfirmable' };
      }

      let idClaims: Record<string, unknown> | undefined;
      if (tokens?.id_token) {
        await this.#verifySignature(tokens.id_token, discovered.keys, algorithms);
        checkIdTokenAlgorithm(tokens.id_token, algorithms, pid);
        idClaims = tokens.claims() as Record<string, unknown>;
        checkIssuedAt(idClaims, pid);
        checkAuthorizedParty(idClaims, this.#opts.clientId, pid);
        if (checkSubject(idClaims, pid) !== subject) throw new UpstreamError('token_invalid', 'the refreshed ID token names another sub (OIDC Core 12.2)', { participantId: pid });
      }
      let userinfo: Record<string, unknown> | undefined;
      if (discovered.fetchUserinfo) {
        try {
          userinfo = await this.#userinfo(discovered, accessToken, subject);
        } catch (err) {
          if (err instanceof AccessTokenRefused) return { kind: 'gone', reason: 'userinfo_unauthorized' };
          throw err;
        }
      }
      // An access token userinfo is not asked with confirms nothing; a refresh token accepted does (the grant stands).
      if (!tokens && !userinfo) return { kind: 'unconfirmable' };
      // As at login, the signed ID token wins a conflict; without a fresh one, userinfo's fresh values win over the last ones.
      const claims = idClaims ? { ...(userinfo ?? {}), ...idClaims } : { ...state.claims, ...(userinfo ?? {}) };
      const refresh = tokens ? this.#refreshState(discovered, tokens, claims, state.refreshToken) : { ...state, claims };
      const identity: UpstreamIdentity = {
        issuer: metadata.issuer,
        subject,
        claims,
        ...(tokens?.id_token ? { logout: { protocol: 'oidc', idTokenHint: tokens.id_token, ...(typeof idClaims?.sid === 'string' ? { sid: idClaims.sid } : {}) } } : {}),
        ...(typeof idClaims?.sid === 'string' ? { sessionId: idClaims.sid } : {}),
        ...(refresh ? { refresh } : {}),
        durationMs: 0,
      };
      return { kind: 'confirmed', identity };
    });
    return result;
  }

  /**
   * Validates a logout token as OIDC Back-Channel Logout 1.0 section 2.6 says: not encrypted (Concord
   * registers no encryption key), `typ` logout+jwt when typed (4.1), an allowed `alg` (never none or
   * HS*), the signature by the upstream's keys (an unknown kid refetches them, keys.ts), `iss` the
   * upstream's, `aud` Concord's client id there, `iat` not in the future, `exp` not past (a token
   * without one: at most 10 minutes after its `iat`), a `jti`, `sub` and/or `sid`, the back-channel
   * `events` member with an object value, and no `nonce`. Throws LogoutTokenError with the failed
   * check as `reason`; UpstreamError when the keys cannot be had.
   */
  async verifyLogoutToken(logoutToken: string): Promise<UpstreamLogoutNotice> {
    const pid = this.participantId;
    const refuse = (reason: ConstructorParameters<typeof LogoutTokenError>[0], message: string, cause?: unknown) =>
      new LogoutTokenError(reason, message, { participantId: pid, ...(cause === undefined ? {} : { cause }) });
    const parts = logoutToken.split('.');
    if (parts.length === 5) throw refuse('encrypted', 'the logout token is encrypted (JWE); Concord registers no encryption key');
    if (parts.length !== 3) throw refuse('malformed', 'the logout token is not a JWS in compact serialization');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(logoutToken);
    } catch (cause) {
      throw refuse('malformed', 'the logout token header cannot be decoded', cause);
    }
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : undefined;
    if (header.typ !== undefined && typ !== 'logout+jwt' && typ !== 'jwt') throw refuse('type', `the logout token's typ is ${clip(header.typ, 40)}, not logout+jwt`);
    const { metadata, algorithms, keys } = await this.#discovered();
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) throw refuse('algorithm', `the logout token's alg ${clip(header.alg, 20)} is not allowed (${algorithms.join(' ')})`);
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(logoutToken, keys.resolve, { algorithms, issuer: metadata.issuer, audience: this.#opts.clientId, clockTolerance: CLOCK_TOLERANCE_S }));
    } catch (err) {
      if (err instanceof UpstreamError) throw err; // the JWKS fetch itself failed
      if (err instanceof joseErrors.JWTExpired) throw refuse('expired', 'the logout token has expired', err);
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        const claim = err.claim;
        throw refuse(claim === 'iss' ? 'issuer' : claim === 'aud' ? 'audience' : claim === 'iat' || claim === 'nbf' ? 'issued_at' : 'malformed', `the logout token's ${claim} claim: ${clip(err.reason)}`, err);
      }
      if (err instanceof joseErrors.JWTInvalid) throw refuse('malformed', 'the logout token payload is not a JWT claims set', err);
      throw refuse('signature', 'the logout token is not signed by the upstream’s keys', err);
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, exp, sub, sid, jti, events, nonce } = payload;
    if (typeof iat !== 'number' || !Number.isFinite(iat) || iat > now + CLOCK_TOLERANCE_S) throw refuse('issued_at', 'the logout token has no iat, or one in the future');
    if (exp === undefined && iat + LOGOUT_TOKEN_MAX_AGE_S < now) throw refuse('expired', `the logout token has no exp and was issued more than ${LOGOUT_TOKEN_MAX_AGE_S} s ago`);
    if ((sub !== undefined && (typeof sub !== 'string' || !sub)) || (sid !== undefined && (typeof sid !== 'string' || !sid)) || (sub === undefined && sid === undefined)) {
      throw refuse('no_subject', 'the logout token names neither a sub nor a sid (string)');
    }
    const event = events !== null && typeof events === 'object' && !Array.isArray(events) ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] : undefined;
    if (event === null || typeof event !== 'object' || Array.isArray(event)) throw refuse('events', 'the logout token has no back-channel logout event');
    if (nonce !== undefined) throw refuse('nonce', 'the logout token carries a nonce (forbidden: it would pass for an ID token)');
    if (typeof jti !== 'string' || !jti || jti.length > 256) throw refuse('no_jti', 'the logout token has no jti');
    return {
      id: jti,
      acceptableUntil: typeof exp === 'number' ? exp + CLOCK_TOLERANCE_S : iat + LOGOUT_TOKEN_MAX_AGE_S,
      ...(typeof sub === 'string' ? { subject: sub } : {}),
      ...(typeof sid === 'string' ? { sessionId: sid } : {}),
    };
  }

  async logoutUrl(request: LogoutRequest): Promise<string | undefined> {
    const { config, metadata } = await this.#discovered();
    if (!metadata.end_session_endpoint) return undefined;
    const params: Record<string, string> = { post_logout_redirect_uri: request.postLogoutRedirectUri, state: request.state };
    if (request.logout?.protocol === 'oidc') params.id_token_hint = request.logout.idTokenHint;
    return oidc.buildEndSessionUrl(config, params).href; // adds client_id
  }

  async probe(): Promise<ProbeResult> {
    const discovered = await this.#refresh();
    const { metadata, algorithms } = discovered;
    const jwks = await this.#fetchJwks(metadata.jwks_uri!);
    const keys = (jwks as { keys: unknown[] }).keys;
    if (!keys.some((k) => algorithms.some((alg) => usableFor(k, alg)))) {
      throw this.#invalid(`the JWKS holds no signing key for ${algorithms.join(' ')}`);
    }
    try {
      discovered.keys.update(jwks); // the next login need not fetch it again
    } catch (cause) {
      throw this.#invalid('jwks_uri answered no usable JWK Set', cause);
    }
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

  // ---- signatures and userinfo ---------------------------------------------------------------

  /**
   * What a later re-check needs, from a token response: its refresh token (or the one it replaces,
   * when the upstream keeps refresh tokens), else its access token and expiry when userinfo can take
   * it; undefined when neither would let Concord ask again.
   */
  #refreshState(discovered: Discovered, tokens: { refresh_token?: string; access_token: string; expires_in?: number }, claims: Record<string, unknown>, previousRefreshToken?: string): OidcRefreshState | undefined {
    const refreshToken = tokens.refresh_token ?? previousRefreshToken;
    if (refreshToken) return { protocol: 'oidc', refreshToken, claims };
    if (!discovered.metadata.userinfo_endpoint || typeof tokens.expires_in !== 'number') return undefined;
    return { protocol: 'oidc', accessToken: tokens.access_token, accessTokenExpiresAt: Math.floor(Date.now() / 1000) + tokens.expires_in, claims };
  }

  /** The upstream's JWKS (RFC 7517 JWK Set): a JSON object with a `keys` array, or UpstreamError. */
  async #fetchJwks(uri: string): Promise<unknown> {
    let response: Response;
    try {
      response = await this.#http.request(uri, { method: 'GET', headers: { accept: 'application/json, application/jwk-set+json' }, body: undefined }, 'jwks');
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
    if (!Array.isArray((jwks as { keys?: unknown } | null)?.keys)) throw this.#invalid('jwks_uri answered no "keys" array');
    return jwks;
  }

  /** The ID token's signature by one of the upstream's keys (an unknown kid refetches them: keys.ts), in an allowed algorithm. */
  async #verifySignature(jws: string, keys: UpstreamKeys, algorithms: string[]): Promise<void> {
    try {
      await compactVerify(jws, keys.resolve, { algorithms });
    } catch (err) {
      throw this.#keyError(err, 'token_invalid', 'signature');
    }
  }

  #keyError(err: unknown, code: 'token_invalid' | 'userinfo_invalid', what: string): UpstreamError {
    if (err instanceof UpstreamError) return err; // the JWKS fetch itself failed (unreachable, timeout, not public)
    const pid = this.participantId;
    // The JWKS answered, but not with a key set: the upstream's keys are unusable, for every login.
    if (err instanceof joseErrors.JWKSInvalid) {
      return new UpstreamError('discovery_invalid', `jwks_uri: ${clip((err as Error).message)}`, { participantId: pid, cause: err, setting: 'upstream.issuer' });
    }
    return new UpstreamError(code, `${code === 'token_invalid' ? 'ID token' : 'userinfo'} ${what}: ${clip(err instanceof Error ? err.message : String(err))}`, { participantId: pid, cause: err });
  }

  /**
   * The userinfo answer (OIDC Core 5.3): JSON, or a JWT signed like the ID token (5.3.2: its
   * signature by the upstream's keys in an allowed algorithm, its `iss` and `aud` when present);
   * its `sub` must be the ID token's (5.3.4).
   */
  async #userinfo(discovered: Discovered, accessToken: string, subject: string): Promise<Record<string, unknown>> {
    const pid = this.participantId;
    const { config, metadata, algorithms, keys } = discovered;
    let response: Response;
    try {
      response = await oidc.fetchProtectedResource(config, accessToken, new URL(metadata.userinfo_endpoint!), 'GET', null, new Headers({ accept: 'application/json, application/jwt' }));
    } catch (err) {
      if (refusedAccessToken(err)) throw new AccessTokenRefused('upstream_misconfigured', 'userinfo refused the access token (HTTP 401)', { participantId: pid, cause: err });
      throw toUpstreamError(err, 'userinfo', pid);
    }
    if (response.status >= 500) throw new UpstreamError('upstream_unreachable', `userinfo: the upstream answered HTTP ${response.status}`, { participantId: pid });
    if (response.status === 401) throw new AccessTokenRefused('upstream_misconfigured', 'userinfo refused the access token (HTTP 401)', { participantId: pid });
    if (response.status !== 200) throw new UpstreamError('upstream_misconfigured', `userinfo answered HTTP ${response.status}`, { participantId: pid });
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    let claims: unknown;
    if (type === 'application/jwt') {
      const jwt = (await response.text()).trim();
      if (jwt.split('.').length !== 3) throw new UpstreamError('upstream_misconfigured', 'userinfo answered a JWT that is not a signed JWS (encrypted userinfo is not supported)', { participantId: pid });
      let unverified: Record<string, unknown>;
      try {
        unverified = decodeJwt(jwt);
      } catch (cause) {
        throw new UpstreamError('userinfo_invalid', 'userinfo JWT cannot be decoded', { participantId: pid, cause });
      }
      try {
        const verified = await jwtVerify(jwt, keys.resolve, {
          algorithms,
          ...(unverified.iss !== undefined ? { issuer: metadata.issuer } : {}),
          ...(unverified.aud !== undefined ? { audience: this.#opts.clientId } : {}),
        });
        claims = verified.payload;
      } catch (err) {
        throw this.#keyError(err, 'userinfo_invalid', 'JWT');
      }
    } else {
      try {
        claims = JSON.parse(await response.text());
      } catch (cause) {
        throw new UpstreamError('upstream_misconfigured', `userinfo answered ${type || 'no content type'}, neither JSON nor a JWT`, { participantId: pid, cause });
      }
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      throw new UpstreamError('upstream_misconfigured', 'userinfo answered no JSON object', { participantId: pid });
    }
    const sub = (claims as Record<string, unknown>).sub;
    if (sub !== subject) throw new UpstreamError('userinfo_invalid', 'userinfo sub is not the ID token sub (OIDC Core 5.3.4)', { participantId: pid });
    return claims as Record<string, unknown>;
  }

  // ---- discovery cache ---------------------------------------------------------------------

  /** The cached discovery; past its TTL it is still used while a refresh runs in the background. */
  #discovered(): Promise<Discovered> {
    return this.#discovery.get();
  }

  /** Fetches discovery now (joining a fetch already running) and makes it current when valid. */
  #refresh(): Promise<Discovered> {
    return this.#discovery.refresh();
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
      const named = issuerComparison(err);
      if (named) throw this.#issuerMismatch(named);
      throw toUpstreamError(err, 'discovery', this.participantId);
    }
    const algorithms = this.#validateMetadata(metadata, insecure);
    const method = this.#authMethod(metadata);
    const responseMode = this.#responseMode(metadata);
    const fetchUserinfo = this.#opts.fetchUserinfo ?? metadata.userinfo_endpoint !== undefined;

    const secret = this.#opts.clientSecret;
    const config = new oidc.Configuration(
      // Our copy of the metadata lists only the algorithms we accept: openid-client refuses any other ID token alg.
      { ...metadata, id_token_signing_alg_values_supported: algorithms },
      this.#opts.clientId,
      secret && method?.startsWith('client_secret') ? { client_secret: secret } : undefined,
      this.#clientAuthentication(metadata, method),
    );
    // Token responses pass the leniency of lenient.ts before openid-client reads them.
    config[oidc.customFetch] = (url, options) =>
      this.#http.kindOf(url) === 'token'
        ? this.#http.fetch(url, options).then((response) => lenientTokenResponse(response, this.participantId, { idTokenRequired: !isRefreshGrant(options.body) }))
        : this.#http.fetch(url, options);
    // No timeout of openid-client's own on the calls of a login (0: none; discovery above needs one,
    // there 0 would mean at once): every call it makes goes through UpstreamHttp (customFetch), which
    // times it out (upstream.timeoutMs, the body included); a second timer per call is waste.
    config.timeout = 0;
    if (insecure) oidc.allowInsecureRequests(config);
    // ID token signatures are verified by #verifySignature (jose), not openid-client's non-repudiation
    // checks: its JWKS cache refetches for an unknown kid only once a minute, and a login right after
    // the IdP rotated its keys must not fail.

    this.#http.setEndpoints({
      jwks: metadata.jwks_uri,
      token: metadata.token_endpoint,
      userinfo: metadata.userinfo_endpoint,
    });
    // The same JWKS URL keeps its key set (and cache, and refetch floor) across discovery refreshes.
    const previous = this.#discovery.current;
    const jwksUri = metadata.jwks_uri!;
    const keys =
      previous && previous.metadata.jwks_uri === jwksUri
        ? previous.keys
        : new UpstreamKeys({ fetch: () => this.#fetchJwks(jwksUri), maxAgeMs: JWKS_MAX_AGE_MS, unknownKeyFloorMs: JWKS_REFETCH_FLOOR_MS });
    return { config, metadata, algorithms, keys, fetchUserinfo, responseMode, fetchedAt: Date.now() };
  }

  /** Checks a discovery document; returns the signature algorithms we will accept from it. */
  #validateMetadata(metadata: oidc.ServerMetadata, insecure: boolean): string[] {
    // openid-client compares issuers too, but lets Entra "{tenantid}" templates and *.b2clogin.com
    // through: a participant is one tenant, so we want the exact issuer.
    if (metadata.issuer.includes('{') || !sameUrl(metadata.issuer, this.issuer)) {
      throw this.#issuerMismatch({ configured: this.issuer, discovered: metadata.issuer });
    }
    const required: Array<keyof oidc.ServerMetadata> = ['authorization_endpoint', 'token_endpoint', 'jwks_uri'];
    if (this.#opts.fetchUserinfo === true) required.push('userinfo_endpoint');
    for (const name of required) {
      if (!metadata[name]) throw this.#invalid(`discovery has no ${String(name)}${name === 'userinfo_endpoint' ? ' (fetchUserinfo is true)' : ''}`);
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

  /**
   * How Concord authenticates at the token endpoint: the participant's choice, which the upstream
   * must list when it lists any (RFC 8414 `token_endpoint_auth_methods_supported`); without a
   * choice, client_secret_basic, else client_secret_post, as listed (basic when it lists none).
   * Undefined: a public client (no secret, no method).
   */
  #authMethod(metadata: oidc.ServerMetadata): TokenEndpointAuthMethod | undefined {
    const chosen = this.#opts.tokenEndpointAuthMethod;
    const listed = Array.isArray(metadata.token_endpoint_auth_methods_supported) ? metadata.token_endpoint_auth_methods_supported : undefined;
    if (chosen) {
      if (listed && !listed.includes(chosen)) {
        throw this.#misconfigured(`tokenEndpointAuthMethod ${chosen} is not one the upstream supports (${clip(listed.join(' '), 150)})`, 'upstream.tokenEndpointAuthMethod');
      }
      if (chosen === 'private_key_jwt') {
        const keys = this.#opts.clientKeys;
        if (!keys) throw this.#misconfigured('private_key_jwt needs Concord’s client keys, and none were given', 'upstream.tokenEndpointAuthMethod');
        const algs = metadata.token_endpoint_auth_signing_alg_values_supported;
        if (Array.isArray(algs) && !algs.includes(keys.algorithm)) {
          throw this.#misconfigured(`the upstream accepts client assertions signed with ${clip(algs.join(' '), 100)}, Concord's client keys are ${keys.algorithm} (upstream.clientKeyAlgorithm)`, 'upstream.tokenEndpointAuthMethod');
        }
      } else if (!this.#opts.clientSecret) {
        throw this.#misconfigured(`tokenEndpointAuthMethod ${chosen} needs a client secret (clientSecret or clientSecretEnv)`, 'upstream.tokenEndpointAuthMethod');
      } else if (chosen === 'client_secret_jwt') {
        const algs = metadata.token_endpoint_auth_signing_alg_values_supported;
        if (Array.isArray(algs) && !algs.includes('HS256')) throw this.#misconfigured(`the upstream accepts client assertions signed with ${clip(algs.join(' '), 100)}, client_secret_jwt signs with HS256`, 'upstream.tokenEndpointAuthMethod');
      }
      return chosen;
    }
    if (!this.#opts.clientSecret) return undefined;
    const offered = listed ?? ['client_secret_basic'];
    if (offered.includes('client_secret_basic')) return 'client_secret_basic';
    if (offered.includes('client_secret_post')) return 'client_secret_post';
    throw this.#misconfigured(`the upstream offers neither client_secret_basic nor client_secret_post (${clip(offered.join(' '), 150)}): set upstream.tokenEndpointAuthMethod`, 'upstream.tokenEndpointAuthMethod');
  }

  #clientAuthentication(metadata: oidc.ServerMetadata, method: TokenEndpointAuthMethod | undefined): oidc.ClientAuth {
    const secret = this.#opts.clientSecret;
    // RFC 7523 3: the assertion's audience is the token endpoint it is sent to (what Entra, Okta, ADFS and Keycloak accept).
    const audience = { [oidc.modifyAssertion]: (_header: unknown, payload: Record<string, unknown>) => void (payload.aud = metadata.token_endpoint) };
    switch (method) {
      case undefined:
        return oidc.None();
      case 'client_secret_basic':
        return oidc.ClientSecretBasic(secret!);
      case 'client_secret_post':
        return oidc.ClientSecretPost(secret!);
      case 'client_secret_jwt':
        return oidc.ClientSecretJwt(secret!, audience);
      case 'private_key_jwt': {
        const keys = this.#opts.clientKeys!;
        // The current key each time: Concord's client keys rotate (published at /broker/jwks before they sign).
        return async (as, client, body, headers) => {
          const { key, kid } = await keys.signingKey();
          return oidc.PrivateKeyJwt({ key, kid }, audience)(as, client, body, headers);
        };
      }
    }
  }

  /** `response_mode` to send: form_post when the participant asks (and the upstream lists it, when it lists any); query only when the upstream advertises response modes (it is code's default, and some IdPs refuse parameters they do not list). */
  #responseMode(metadata: oidc.ServerMetadata): 'query' | 'form_post' | undefined {
    const listed = Array.isArray(metadata.response_modes_supported) ? metadata.response_modes_supported : undefined;
    if (this.#opts.responseMode === 'form_post') {
      if (listed && !listed.includes('form_post')) throw this.#misconfigured(`responseMode form_post is not one the upstream supports (${clip(listed.join(' '), 100)})`, 'upstream.responseMode');
      return 'form_post';
    }
    return listed?.includes('query') ? 'query' : undefined;
  }

  #issuerMismatch({ configured, discovered }: { configured: string; discovered: string }): UpstreamError {
    let hint = '';
    if (discovered.includes('{')) {
      hint =
        ': it is a multi-tenant template (Entra ID /common or /organizations). A participant is one organisation: set upstream.issuer to its tenant, https://login.microsoftonline.com/{tenant id}/v2.0';
    } else if (configured.replace(/\/+$/, '') === discovered.replace(/\/+$/, '')) {
      hint = ': they differ only by a trailing slash; copy the issuer exactly as the discovery document spells it';
    } else {
      hint = ': set upstream.issuer to the issuer the discovery document names, if that is the IdP you mean';
    }
    return this.#invalid(`issuer mismatch: upstream.issuer is ${clip(configured, 150)} but its discovery document names ${clip(discovered, 150)}${hint}`);
  }

  #invalid(message: string, cause?: unknown): UpstreamError {
    return new UpstreamError('discovery_invalid', message, { participantId: this.participantId, cause, setting: 'upstream.issuer' });
  }

  #misconfigured(message: string, setting: string): UpstreamError {
    return new UpstreamError('upstream_misconfigured', message, { participantId: this.participantId, setting });
  }
}

/** Whether a token request is a refresh (RFC 6749 6), whose answer may come without an ID token (OIDC Core 12.2). */
function isRefreshGrant(body: unknown): boolean {
  const form = body instanceof URLSearchParams ? body : typeof body === 'string' ? new URLSearchParams(body) : undefined;
  return form?.get('grant_type') === 'refresh_token';
}

/** A 401 challenge from a protected resource (RFC 6750 3: the access token is not accepted), anywhere in the cause chain. */
function refusedAccessToken(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof oidc.WWWAuthenticateChallengeError && e.status === 401) return true;
  }
  return false;
}

/** The two issuers of openid-client's "issuer does not match" discovery error, when that is what it is. */
function issuerComparison(err: unknown): { configured: string; discovered: string } | undefined {
  const e = err as { code?: unknown; cause?: { attribute?: unknown; expected?: unknown; body?: { issuer?: unknown } } } | null;
  if (e?.code !== 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' || e.cause?.attribute !== 'issuer') return undefined;
  const discovered = e.cause.body?.issuer;
  return typeof e.cause.expected === 'string' && typeof discovered === 'string' ? { configured: e.cause.expected, discovered } : undefined;
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
