/**
 * One connector per participant: a small capability interface (after Dex's connector.go). OIDC is
 * the first kind; another protocol implements the same four methods and returns the same identity.
 */
export interface Connector {
  readonly participantId: string;
  readonly issuer: string;
  /**
   * Builds the upstream authorization URL with fresh state, nonce and PKCE (S256). The returned
   * `pending` is JSON-serialisable and is stored by the caller with the interaction so any
   * instance can finish the login. Throws UpstreamError when discovery fails.
   */
  beginLogin(opts: { redirectUri: string; loginHint?: string }): Promise<{ url: string; pending: PendingUpstreamLogin }>;
  /**
   * Validates the callback and finishes the login: state, RFC 9207 `iss`, error responses, code
   * exchange, the ID token (iss, aud, azp, signature against the upstream JWKS, exp/iat, nonce,
   * alg allow-list), optionally userinfo (its `sub` must match). Throws UpstreamError.
   */
  completeLogin(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamIdentity>;
  /**
   * The upstream's end_session_endpoint URL (id_token_hint, post_logout_redirect_uri, client_id,
   * state) when it offers one, else undefined. Throws UpstreamError when discovery fails.
   */
  endSessionUrl(opts: { idTokenHint?: string; postLogoutRedirectUri: string; state?: string }): Promise<string | undefined>;
  /** Fetches discovery and the JWKS now (health probe, admin registration check). Throws UpstreamError. */
  probe(): Promise<{ issuer: string; endpoints: Record<string, string | undefined>; algorithms: string[] }>;
}

export interface PendingUpstreamLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  createdAt: number;
}

export interface UpstreamIdentity {
  /** The upstream issuer, exactly as its discovery document and ID token spell it. */
  issuer: string;
  subject: string;
  /** The validated ID token claims, plus userinfo claims when fetched (the signed ID token wins a conflict). */
  claims: Record<string, unknown>;
  idToken: string;
  amr?: string[];
  acr?: string;
  /** Time spent in calls to the upstream during completeLogin (token, JWKS, userinfo, discovery if cold). */
  durationMs: number;
}

export interface OidcConnectorOptions {
  participantId: string;
  issuer: string;
  clientId: string;
  /** Absent: a public client (PKCE only, token_endpoint_auth_method none). */
  clientSecret?: string;
  /** Default: openid email profile. `openid` is always sent. */
  scopes?: string[];
  /** Also call userinfo and merge its claims. Default false. */
  fetchUserinfo?: boolean;
  /** Every upstream call (discovery, JWKS, token, userinfo) gives up after this long. Default 5000. */
  timeoutMs?: number;
  /** Discovery is cached this long, then refreshed in the background (the last good copy is kept on failure). Default 3600. */
  discoveryTtlSeconds?: number;
  /** ID token algorithms accepted. Default RS256 PS256 ES256 EdDSA. `none` and HS* are never accepted. */
  allowedAlgorithms?: string[];
  /** Allow http:// for the issuer and its endpoints: loopback development and tests only (implies allowPrivateNetwork). */
  allowInsecureHttp?: boolean;
  /** Allow calls to loopback, private and link-local addresses (an IdP on a private network). Default false: public addresses only. */
  allowPrivateNetwork?: boolean;
  logger?: { debug(obj: object, msg?: string): void };
}
