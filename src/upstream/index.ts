/**
 * Upstream identity providers. One Connector per participant (types.ts: the interface every
 * protocol implements); `createOidcConnector` speaks OIDC (authorization code + PKCE) through
 * openid-client. Errors are UpstreamErrors with a code and a kind (errors.ts); UpstreamHealth puts
 * connectors behind a per-participant circuit breaker. Everything else in this folder is private.
 */
export type {
  CallbackInput,
  ClientKeySource,
  Connector,
  ForwardedParams,
  LoginRequest,
  LogoutRequest,
  OidcConnectorOptions,
  OidcLogout,
  OidcRefreshState,
  PendingLogin,
  PendingOidcLogin,
  PendingSamlLogin,
  SamlConnectorOptions,
  SamlKeySource,
  SamlLogout,
  ServiceMetadata,
  UpstreamLogoutMessage,
  ProbeResult,
  RefreshOutcome,
  TokenEndpointAuthMethod,
  UpstreamIdentity,
  UpstreamLogout,
  UpstreamLogoutNotice,
  UpstreamProtocol,
  UpstreamRefreshState,
} from './types.ts';
export { TOKEN_ENDPOINT_AUTH_METHODS } from './types.ts';
export { createSamlConnector, logoutRequestId, METADATA_REFETCH_FLOOR_MS } from './saml/connector.ts';
export { DEFAULT_ATTRIBUTE_ALIASES } from './saml/aliases.ts';
export { createOidcConnector, DEFAULT_ALGORITHMS, DEFAULT_SCOPES, DEFAULT_TIMEOUT_MS, DEFAULT_DISCOVERY_TTL_S, JWKS_REFETCH_FLOOR_MS } from './oidc.ts';
export { UpstreamError, UPSTREAM_ERROR_CODES, SAML_CHECKS, LogoutTokenError, LOGOUT_TOKEN_REJECTIONS, type SamlCheck, type UpstreamErrorCode, type UpstreamErrorKind, type LogoutTokenRejection } from './errors.ts';
export { UpstreamHealth, type UpstreamHealthOptions, type UpstreamState, type UpstreamStatus } from './health.ts';
export { CircuitBreaker, CIRCUIT_STATES, type CircuitState, type CircuitBreakerOptions } from './breaker.ts';
export type { UpstreamCall, UpstreamCallObserver, UpstreamCallResult, UpstreamFailureReason } from './http.ts';
export { UpstreamHttp } from './http.ts';
export type { AddressLookup } from './addresses.ts';
