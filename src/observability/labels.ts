/**
 * Bounded label values. A metric label must never carry what a user typed or an upstream sent:
 * each series costs memory in Prometheus, and an attacker could mint millions. Participant and
 * client ids count only when the registry knows them; codes and names only from fixed lists.
 */

export const UNKNOWN = 'unknown';
export const OTHER = 'other';

export interface KnownIds {
  participant(id: string): unknown;
  client(id: string): unknown;
}

export function participantLabel(known: KnownIds, id: unknown): string {
  return typeof id === 'string' && id.length <= 63 && known.participant(id) ? id : UNKNOWN;
}

export function clientLabel(known: KnownIds, id: unknown): string {
  return typeof id === 'string' && id.length <= 200 && known.client(id) ? id : UNKNOWN;
}

/**
 * Login outcomes come from code (LoginOutcome), never from a request; this only guards the shape.
 * Each mapping limit (MAPPING_LIMIT_CODES) and SAML check (SAML_CHECKS) is an outcome of its own,
 * so a dashboard tells "too many groups" from "refused by a rule" and a replay from a wrong
 * audience; tests keep every one of them within this shape.
 */
export function outcomeLabel(outcome: unknown): string {
  return typeof outcome === 'string' && /^[a-z][a-z0-9_]{0,39}$/.test(outcome) ? outcome : OTHER;
}

/** OAuth 2.0 / OIDC error codes (RFC 6749, 6750, 7009, 8628, 8693, 9126, 9449, OIDC Core). */
const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'access_denied',
  'unsupported_response_type',
  'unsupported_response_mode',
  'server_error',
  'temporarily_unavailable',
  'invalid_token',
  'insufficient_scope',
  'unsupported_token_type',
  'invalid_target',
  'invalid_redirect_uri',
  'invalid_client_metadata',
  'invalid_software_statement',
  'unapproved_software_statement',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_dpop_proof',
  'use_dpop_nonce',
  'invalid_authorization_details',
  'authorization_pending',
  'slow_down',
  'expired_token',
  'expired_login_hint_token',
  'unknown_user_id',
  'transaction_failed',
  'missing_user_code',
  'invalid_binding_message',
  'invalid_user_code',
  'web_message_uri_mismatch',
]);

export function oauthErrorLabel(code: unknown): string {
  return typeof code === 'string' && OAUTH_ERRORS.has(code) ? code : OTHER;
}

const GRANT_TYPES = new Set([
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
  'urn:openid:params:grant-type:ciba',
]);

export function grantTypeLabel(grantType: unknown): string {
  return typeof grantType === 'string' && GRANT_TYPES.has(grantType) ? grantType : OTHER;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : OTHER;
}

export function statusClassLabel(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : OTHER;
}

/** oidc-provider's default route paths, for requests answered before it sets `ctx.oidc` (the JWT userinfo in front of it). */
const PROVIDER_PATHS: Record<string, string> = {
  '/auth': 'authorization',
  '/token': 'token',
  '/me': 'userinfo',
  '/jwks': 'jwks',
  '/.well-known/openid-configuration': 'discovery',
  '/session/end': 'end_session',
  '/token/introspection': 'introspection',
  '/token/revocation': 'revocation',
};

/**
 * The route of a request, from code only: oidc-provider's route name (`token`, `authorization`,
 * `userinfo`, ...), the template of the @koa/router route that matched (`/interaction/:uid`), or a
 * fixed provider path; else `other` (404s, assets, anything a scanner tries).
 */
export function routeLabel(ctx: { path?: string; _matchedRoute?: unknown; oidc?: { route?: unknown } }): string {
  const oidcRoute = ctx.oidc?.route;
  if (typeof oidcRoute === 'string' && /^[a-z_]{1,40}$/.test(oidcRoute)) return oidcRoute;
  const template = ctx._matchedRoute;
  if (typeof template === 'string' && template.length <= 100) return template;
  return (ctx.path !== undefined && Object.hasOwn(PROVIDER_PATHS, ctx.path) ? PROVIDER_PATHS[ctx.path] : undefined) ?? OTHER;
}
