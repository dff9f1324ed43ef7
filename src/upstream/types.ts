import type { CryptoKey } from 'jose';

/**
 * One connector per participant: a small capability interface (after Dex's connector.go). Each
 * upstream protocol is one implementation (OIDC: oidc.ts; SAML next) returning the same normalised
 * identity. Interactions, mapping, accounts, health and the admin API use this interface alone and
 * never branch on the protocol; what a protocol must remember between calls travels in its own
 * variant of `PendingLogin` and `UpstreamLogout`, opaque to everyone else.
 */
export interface Connector {
  readonly participantId: string;
  /** The protocol it speaks: for logs and the admin view, never for branching outside upstream/. */
  readonly protocol: UpstreamProtocol;
  /** The upstream's identifier as configured (OIDC issuer, SAML entity ID). */
  readonly issuer: string;
  /**
   * Starts a login: the URL to send the browser to, and what must be kept (JSON-serialisable) until
   * the callback, by any instance, under `pending.state`. Throws UpstreamError (discovery/metadata
   * failures: `discovery_invalid`, `upstream_unreachable`, ...).
   */
  beginLogin(request: LoginRequest): Promise<{ url: string; pending: PendingLogin }>;
  /**
   * The value in a callback that names its pending login (OIDC `state`, SAML `RelayState`), so the
   * routes can find it before anything else is checked; undefined when absent or not exactly once.
   */
  callbackState(callback: CallbackInput): string | undefined;
  /**
   * Validates the callback against `pending` and finishes the login (for OIDC: state, RFC 9207 `iss`,
   * error answers, code exchange, the ID token and its signature, userinfo). Throws UpstreamError;
   * its `kind` says whether the IdP refused, was unreachable, is misconfigured or failed a check.
   */
  completeLogin(callback: CallbackInput, pending: PendingLogin): Promise<UpstreamIdentity>;
  /**
   * Where to send the browser to end the user's session at the upstream, coming back to
   * `postLogoutRedirectUri` with `state`; undefined when the upstream offers no logout.
   * Throws UpstreamError when the upstream's metadata cannot be had.
   */
  logoutUrl(request: LogoutRequest): Promise<string | undefined>;
  /** Fetches and checks the upstream's metadata and keys now (health probe, admin registration check). Throws UpstreamError. */
  probe(): Promise<ProbeResult>;
  /**
   * A logout message the upstream sent through the browser (SAML single logout: a LogoutResponse to
   * an RP-initiated logout, or an IdP-initiated LogoutRequest), validated. Absent for protocols
   * without front-channel logout messages. Throws UpstreamError (`assertion_invalid` with its check).
   */
  logoutMessage?(callback: CallbackInput): Promise<UpstreamLogoutMessage>;
  /** Concord's own metadata for this upstream (SAML SP metadata, for the partner to register); absent for OIDC. */
  serviceMetadata?(): ServiceMetadata;
  /**
   * Optional capability (after Dex's RefreshConnector): asks the upstream again whether the user of
   * a login still stands, with what that login kept (`UpstreamIdentity.refresh`): for OIDC its
   * refresh token (RFC 6749 6), else its access token at userinfo (OIDC Core 5.3) while that is
   * still valid. Answers the fresh identity (`confirmed`, with the state to keep for the next
   * time), `gone` when the upstream says the user or the grant no longer exists (`invalid_grant`,
   * a 401 at userinfo), or `unconfirmable` when the state holds nothing the upstream would still
   * accept. Throws UpstreamError when the upstream cannot be asked (unreachable, misconfigured) or
   * its answer fails a check. A protocol without such a call (SAML) does not implement it: the
   * participant's `session.maxAge` bounds its sessions.
   */
  refresh?(state: UpstreamRefreshState): Promise<RefreshOutcome>;
  /**
   * Optional capability: validates a logout notice the upstream sent by the back channel (OIDC
   * Back-Channel Logout 1.0 section 2.6: the `logout_token`) and says which upstream sessions it
   * ends. Throws LogoutTokenError (its `reason` says which check failed) for a notice that must be
   * refused, UpstreamError when the upstream's keys cannot be had.
   */
  verifyLogoutToken?(logoutToken: string): Promise<UpstreamLogoutNotice>;
}

export type UpstreamProtocol = 'oidc' | 'saml';

/** A document Concord serves about itself for one upstream. */
export interface ServiceMetadata {
  contentType: string;
  body: string;
}

/**
 * A validated logout message from the upstream:
 *   logout_response  the upstream ended its session after Concord's RP-initiated logout; `state` is
 *                    the one logoutUrl was given (it names where the browser goes on to);
 *   logout_request   the upstream ends a session (IdP-initiated): Concord ends the sessions of
 *                    `sessionIndex` (the identity's `sessionId` at login), or else of `subject` (the
 *                    account's upstream subject, when the message names it) through
 *                    Sessions.endByUpstream, then sends the browser to `respond(ended)`, the signed
 *                    answer to the upstream.
 */
export type UpstreamLogoutMessage =
  | { kind: 'logout_response'; state: string }
  | {
      kind: 'logout_request';
      /** The upstream subject whose sessions end (the NameID, when it is the subject); undefined when the message cannot name one. */
      subject: string | undefined;
      /** The upstream session (SAML SessionIndex), when named. */
      sessionIndex: string | undefined;
      /** The URL of the answer to the upstream (a signed LogoutResponse): Success when `ended`, else a failure status. */
      respond(ended: boolean): Promise<string>;
    };

/**
 * What the service asked for that the upstream should see, already filtered by the participant's
 * `upstream.forwardParams`. Named as in OIDC Core 3.1.2.1 (the service's own request): another
 * protocol translates them (SAML: ForceAuthn, RequestedAuthnContext, ...) or leaves them out.
 */
export interface ForwardedParams {
  login_hint?: string;
  /** Each of `login`, `none`, `consent`, `select_account`. */
  prompt?: string[];
  /** Seconds. */
  max_age?: number;
  acr_values?: string[];
  ui_locales?: string[];
}

export interface LoginRequest {
  /** Concord's callback for this participant, absolute, without query or fragment. */
  redirectUri: string;
  params?: ForwardedParams;
  /**
   * The login's state (OIDC `state`, RFC 6749 4.1.1): unguessable, single-use, at most 512
   * characters of base64url and `.`; the connector draws one (32 random bytes) when absent. The
   * routes give one that names the interaction (interactions/routes.ts loginState). A connector whose
   * answer comes back by POST (SAML's RelayState) may draw its own; `pending.state` is the one used.
   */
  state?: string;
}

/**
 * A callback as it reached Concord: the browser's method, the query string and, for a POST, the
 * urlencoded body (OIDC `response_mode=form_post`, SAML HTTP-POST binding).
 */
export interface CallbackInput {
  method: 'GET' | 'POST';
  query: URLSearchParams;
  /** Empty for a GET. */
  body: URLSearchParams;
  /** The query string exactly as sent, when a signature covers its encoding (SAML HTTP-Redirect binding, SAML bindings 3.4.4.1). */
  rawQuery?: string;
}

/** What an OIDC login keeps between beginLogin and completeLogin. */
export interface PendingOidcLogin {
  protocol: 'oidc';
  state: string;
  nonce: string;
  /** PKCE (RFC 7636), S256. */
  codeVerifier: string;
  redirectUri: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** What a SAML login keeps between beginLogin and completeLogin. */
export interface PendingSamlLogin {
  protocol: 'saml';
  /** The RelayState sent with the AuthnRequest (SAML bindings 3.4.3): a random reference, never a URL. */
  state: string;
  /** The AuthnRequest's ID: the Response's InResponseTo must be this. */
  requestId: string;
  /** The ACS URL the AuthnRequest named (Destination and Recipient must be it). */
  acsUrl: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** The pending login of any protocol, tagged by `protocol`; every variant has the `state` it is kept under. */
export type PendingLogin = PendingOidcLogin | PendingSamlLogin;

/** What a later logout at an OIDC upstream needs (OIDC RP-Initiated Logout 1.0 `id_token_hint`; `sid` of OIDC Front/Back-Channel Logout). */
export interface OidcLogout {
  protocol: 'oidc';
  idTokenHint: string;
  sid?: string;
}

/** What a later SAML logout needs (SAML core 3.7.1 LogoutRequest: the NameID as the Assertion gave it, and the SessionIndex). */
export interface SamlLogout {
  protocol: 'saml';
  nameId: string;
  nameIdFormat?: string;
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
}

/** What a later logout at the upstream needs, tagged by `protocol`; stored with the login's Concord session, given back to `logoutUrl`. */
export type UpstreamLogout = OidcLogout | SamlLogout;

/**
 * What an OIDC login keeps to ask the upstream again later (Connector.refresh). Sealed at rest
 * with the Concord session it belongs to: it holds bearer tokens.
 */
export interface OidcRefreshState {
  protocol: 'oidc';
  /** RFC 6749 1.5; rotated when the upstream issues a new one. */
  refreshToken?: string;
  /** For userinfo when there is no refresh token. */
  accessToken?: string;
  /** When `accessToken` stops being accepted, epoch seconds (from `expires_in`); absent: unknown. */
  accessTokenExpiresAt?: number;
  /** The upstream claims of the last confirmation (ID token and userinfo, merged as at login). */
  claims: Record<string, unknown>;
}

/** What a login keeps to ask its upstream again, tagged by `protocol`; opaque outside upstream/. */
export type UpstreamRefreshState = OidcRefreshState;

/** What Connector.refresh found. */
export type RefreshOutcome =
  /** The upstream vouched for the user again: `identity.claims` are fresh, `identity.refresh` is what to keep now. */
  | { kind: 'confirmed'; identity: UpstreamIdentity }
  /** The upstream says the user or the grant no longer exists; `reason` is for the log (its error code). */
  | { kind: 'gone'; reason: string }
  /** Nothing the upstream would still accept is left (no refresh token, the access token expired). */
  | { kind: 'unconfirmable' };

/**
 * Which upstream sessions a back-channel logout notice ends (OIDC Back-Channel Logout 1.0 2.7; a SAML
 * LogoutRequest alike): those of `sessionId` when given (and of `subject` too when both are), else
 * every session of `subject`. At least one is present.
 */
export interface UpstreamLogoutNotice {
  /** OIDC `sub`; SAML NameID. */
  subject?: string;
  /** OIDC `sid`; SAML SessionIndex. */
  sessionId?: string;
  /** The notice's unique id (OIDC `jti`), for the replay cache. */
  id: string;
  /** Until when the notice could be accepted, epoch seconds: how long its id must be remembered. */
  acceptableUntil: number;
}

export interface LogoutRequest {
  /** From the identity of the login being ended; absent for accounts saved before it was kept. */
  logout?: UpstreamLogout;
  postLogoutRedirectUri: string;
  state: string;
}

/** One normalised identity, whatever the protocol. */
export interface UpstreamIdentity {
  /** The upstream issuer, exactly as its metadata and assertions spell it. */
  issuer: string;
  subject: string;
  /** The validated claims (OIDC: the ID token's, plus userinfo's; the signed ID token wins a conflict). */
  claims: Record<string, unknown>;
  /** When the user authenticated at the upstream, epoch seconds (OIDC `auth_time`); absent when it did not say. */
  authTime?: number;
  acr?: string;
  amr?: string[];
  /** What logoutUrl needs to end this session at the upstream. */
  logout?: UpstreamLogout;
  /**
   * The upstream's own identifier of the session this login belongs to (OIDC `sid`, OIDC
   * Front/Back-Channel Logout; SAML `SessionIndex`): what its logout notices name it by. Absent
   * when the upstream gave none.
   */
  sessionId?: string;
  /** What Connector.refresh needs to ask the upstream again; absent when it cannot be asked. */
  refresh?: UpstreamRefreshState;
  /** Milliseconds spent in calls to the upstream during completeLogin (token, JWKS, userinfo, discovery if cold). */
  durationMs: number;
}

export interface ProbeResult {
  /** The upstream's identifier as its metadata states it. */
  issuer: string;
  endpoints: Record<string, string | undefined>;
  /** Signature algorithms Concord will accept from it. */
  algorithms: string[];
}

/** How Concord authenticates at an OIDC upstream's token endpoint (RFC 6749 2.3.1, OIDC Core 9). */
export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';

export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'];

/** Concord's own client key, for `private_key_jwt` (RFC 7523): the current one each time it signs, since keys rotate. */
export interface ClientKeySource {
  /** The JWS algorithm its keys sign with (RS256, ES256, ...). */
  readonly algorithm: string;
  signingKey(): Promise<{ key: CryptoKey; kid: string }>;
}

export interface OidcConnectorOptions {
  participantId: string;
  issuer: string;
  clientId: string;
  /** Absent (with no tokenEndpointAuthMethod that needs none): a public client, PKCE only. */
  clientSecret?: string;
  /** Absent: client_secret_basic, else client_secret_post, whichever the upstream lists first in that order (RFC 8414: basic when it lists none). */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
  /** Required for private_key_jwt. */
  clientKeys?: ClientKeySource;
  /** Default: openid email profile. `openid` is always sent. */
  scopes?: string[];
  /** Call userinfo and merge its claims. Default (undefined): when the upstream publishes a userinfo_endpoint. */
  fetchUserinfo?: boolean;
  /** How the upstream returns the authorization response. Default query. */
  responseMode?: 'query' | 'form_post';
  /** Every upstream call (discovery, JWKS, token, userinfo) gives up after this long (milliseconds). Default 5000. */
  timeoutMs?: number;
  /** Discovery is cached this long (seconds), then refreshed in the background (the last good copy is kept on failure). Default 3600. */
  discoveryTtlSeconds?: number;
  /** Signature algorithms accepted (ID token, signed userinfo). Default RS256 PS256 ES256 EdDSA. `none` and HS* are never accepted. */
  allowedAlgorithms?: string[];
  /** Allow http:// for the issuer and its endpoints: loopback development and tests only (implies allowPrivateNetwork). */
  allowInsecureHttp?: boolean;
  /** Allow calls to loopback, private and link-local addresses (an IdP on a private network). Default false: public addresses only. */
  allowPrivateNetwork?: boolean;
  logger?: { debug(obj: object, msg?: string): void };
}

/** Concord's SAML SP keys (keys/saml-keys.ts): the one that signs now first, then the others published. */
export interface SamlKeySource {
  published(): Array<{ kid: string; privateKeyPem: string; certificateBase64: string }>;
}

/** Where the SAML connector remembers each Assertion ID until it expires (the store's claimTemp). */
export interface ReplayCache {
  /** True the first time `id` is seen; false while an earlier use is remembered (`ttlSeconds`). */
  firstUse(id: string, ttlSeconds: number): Promise<boolean>;
}

export interface SamlConnectorOptions {
  participantId: string;
  /** Exactly one of the two. */
  metadataUrl?: string;
  metadataXml?: string;
  /** Concord's SP entity ID at this IdP (the Audience it must name). */
  spEntityId: string;
  /** Concord's ACS URL for this participant (Destination and Recipient must be it). */
  acsUrl: string;
  /** Concord's SLO endpoint for this participant. */
  sloUrl: string;
  /** NameID format asked for. */
  nameIdFormat: string;
  /** Take the subject from this attribute (name or alias) instead of the NameID. */
  subjectAttribute?: string;
  wantAssertionsEncrypted: boolean;
  allowSha1: boolean;
  allowIdpInitiated: boolean;
  /** Attribute name -> alias, on top of the built-in aliases (saml/aliases.ts). */
  attributeAliases: Record<string, string>;
  keys: SamlKeySource;
  replay: ReplayCache;
  /** Every metadata fetch gives up after this long (milliseconds). Default 5000. */
  timeoutMs?: number;
  /** Metadata is cached this long (seconds), then refreshed in the background. Default 3600. */
  metadataTtlSeconds?: number;
  allowInsecureHttp?: boolean;
  allowPrivateNetwork?: boolean;
  logger?: { debug(obj: object, msg?: string): void };
}
