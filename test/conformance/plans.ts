/**
 * The OpenID Foundation's conformance test plans for an OpenID Provider, ported as Concord's own
 * suite: every test module of the four plans below, in the suite's order, with the suite's names.
 * Source: github.com/openid-certification/conformance-suite, src/main/java/net/openid/conformance/openid/
 * (OIDCCBasicTestPlan, OIDCCConfigTestPlan, OIDCCRpInitiatedLogoutTestPlan,
 * OIDCCBackchannelRpInitiatedLogoutTestPlan and the modules they list), read at commit 12f2a4dac.
 *
 * Each module says what result the run must give (`conformance.test.ts` asserts it, warnings by the
 * suite's condition names) and why; `write-table.ts` renders docs/conformance.md from this file and
 * `table.test.ts` checks the committed table is that rendering. So neither can go stale: a module
 * that starts passing, warning or failing differently fails the run until this file says so.
 */

export const PLANS = {
  basic: { name: 'oidcc-basic-certification-test-plan', title: 'OIDC Basic OP' },
  config: { name: 'oidcc-config-certification-test-plan', title: 'OIDC Config OP' },
  rpLogout: { name: 'oidcc-rp-initiated-logout-certification-test-plan', title: 'RP-Initiated Logout OP' },
  backchannel: { name: 'oidcc-backchannel-rp-initiated-logout-certification-test-plan', title: 'Back-Channel Logout OP' },
} as const;

export type PlanId = keyof typeof PLANS;

export interface ModuleDefinition {
  plan: PlanId;
  /** The suite's test module name (its @PublishTestModule testName). */
  module: string;
  /**
   * What the run gives. `warning`: passes what the suite fails on, but a condition it marks WARNING
   * did not hold (listed in `warnings`). `not supported`: Concord deliberately does not do what the
   * module tests (the suite skips it or does not apply it to such an OP); not run, not counted.
   */
  expect: 'passed' | 'warning' | 'not supported';
  /** The suite's WARNING conditions that do not hold, by class name (only with `warning`). */
  warnings?: readonly string[];
  /** Why this result: what Concord does, or why it does not. */
  note: string;
}

/** Every module of the four plans, in the suite's order. */
export const MODULES: readonly ModuleDefinition[] = [
  // OIDC Basic OP: code flow, client_secret_basic, static client, discovery.
  {
    plan: 'basic',
    module: 'oidcc-server',
    expect: 'warning',
    warnings: ['EnsureIdTokenDoesNotContainNonRequestedClaims'],
    note: 'The ID token carries `idp` (the participant that vouched for the user), a claim Concord adds to every token on purpose and the suite does not know.',
  },
  { plan: 'basic', module: 'oidcc-response-type-missing', expect: 'passed', note: 'Answered with an error (no code).' },
  {
    plan: 'basic',
    module: 'oidcc-idtoken-signature',
    expect: 'passed',
    note: 'A client registered without id_token_signed_response_alg gets RS256 ID tokens with a kid (the suite runs this with dynamic registration; here with a static client that names no algorithm).',
  },
  {
    plan: 'basic',
    module: 'oidcc-idtoken-unsigned',
    expect: 'not supported',
    note: 'Concord never issues unsigned (alg none) ID tokens and does not list none in id_token_signing_alg_values_supported; the suite skips the module then (and applies it only to dynamic registration).',
  },
  { plan: 'basic', module: 'oidcc-userinfo-get', expect: 'passed', note: 'GET /me with the bearer header.' },
  { plan: 'basic', module: 'oidcc-userinfo-post-header', expect: 'passed', note: 'POST /me with the bearer header.' },
  {
    plan: 'basic',
    module: 'oidcc-userinfo-post-body',
    expect: 'warning',
    warnings: ['UserInfoEndpointWithAccessTokenInBodyNotSupported'],
    note: 'An access token in the form body (RFC 6750 2.2, optional) is refused with 401: Concord takes it from the Authorization header only.',
  },
  { plan: 'basic', module: 'oidcc-ensure-request-without-nonce-succeeds-for-code-flow', expect: 'passed', note: 'A code without a nonce in the request.' },
  { plan: 'basic', module: 'oidcc-scope-profile', expect: 'passed', note: 'Every profile claim the upstream sends reaches userinfo (OIDC Core 5.4).' },
  {
    plan: 'basic',
    module: 'oidcc-scope-email',
    expect: 'warning',
    warnings: ['EnsureIdTokenDoesNotContainEmailForScopeEmail'],
    note: 'Concord puts the scope claims in the ID token as well as at userinfo, on purpose (services get the mapped claims without a userinfo round trip); OIDC Core 5.4 allows it only when no access token is issued.',
  },
  { plan: 'basic', module: 'oidcc-scope-address', expect: 'passed', note: 'The address claim from the upstream.' },
  { plan: 'basic', module: 'oidcc-scope-phone', expect: 'passed', note: 'phone_number and phone_number_verified from the upstream.' },
  { plan: 'basic', module: 'oidcc-scope-all', expect: 'passed', note: 'profile, email, address and phone together.' },
  {
    plan: 'basic',
    module: 'oidcc-alternate-happy-flow',
    expect: 'warning',
    warnings: ['EnsureIdTokenDoesNotContainEmailForScopeEmail'],
    note: 'Scope order reversed, parameters reordered; the warning of oidcc-scope-email (email in the ID token).',
  },
  { plan: 'basic', module: 'oidcc-display-page', expect: 'passed', note: 'display=page is accepted.' },
  { plan: 'basic', module: 'oidcc-display-popup', expect: 'passed', note: 'display=popup is accepted.' },
  { plan: 'basic', module: 'oidcc-prompt-login', expect: 'passed', note: 'prompt=login shows a login page again; auth_time moves on.' },
  { plan: 'basic', module: 'oidcc-prompt-none-not-logged-in', expect: 'passed', note: 'login_required to the redirect URI, with the state.' },
  { plan: 'basic', module: 'oidcc-prompt-none-logged-in', expect: 'passed', note: 'A code without interaction; same sub and auth_time.' },
  { plan: 'basic', module: 'oidcc-max-age-1', expect: 'passed', note: 'A login page again after 2 s with max_age=1; auth_time present and later.' },
  { plan: 'basic', module: 'oidcc-max-age-10000', expect: 'passed', note: 'No login page; auth_time present and the same.' },
  { plan: 'basic', module: 'oidcc-ensure-request-with-unknown-parameter-succeeds', expect: 'passed', note: 'extra=foobar is ignored.' },
  { plan: 'basic', module: 'oidcc-id-token-hint', expect: 'passed', note: 'prompt=none with the first ID token as id_token_hint.' },
  { plan: 'basic', module: 'oidcc-login-hint', expect: 'passed', note: 'The login_hint (an email) takes the user straight to the partner IdP.' },
  { plan: 'basic', module: 'oidcc-ui-locales', expect: 'passed', note: 'ui_locales=se is accepted.' },
  { plan: 'basic', module: 'oidcc-claims-locales', expect: 'passed', note: 'claims_locales=se is accepted.' },
  {
    plan: 'basic',
    module: 'oidcc-ensure-request-with-acr-values-succeeds',
    expect: 'warning',
    warnings: ['ValidateIdTokenACRClaimAgainstAcrValuesRequest'],
    note: 'Concord advertises no acr_values_supported, so the suite asks for "1 2"; the ID token carries the upstream IdP\'s acr (a broker cannot promise one), which is neither.',
  },
  { plan: 'basic', module: 'oidcc-codereuse', expect: 'passed', note: 'A second use of a code: 400 invalid_grant.' },
  {
    plan: 'basic',
    module: 'oidcc-codereuse-30seconds',
    expect: 'passed',
    note: 'A code used again 30 s later: invalid_grant, and the access token of its first use refused at /me (RFC 6749 4.1.2).',
  },
  { plan: 'basic', module: 'oidcc-ensure-registered-redirect-uri', expect: 'passed', note: 'An unregistered redirect_uri: an error page, no redirect.' },
  {
    plan: 'basic',
    module: 'oidcc-ensure-post-request-succeeds',
    expect: 'passed',
    note: 'POST to the authorization endpoint is answered 303 to the same endpoint with the form as its query (src/http/posted-form.ts), so it meets the checks and limits a GET does while the session cookies stay SameSite=Lax (oidc-provider\'s own enableHttpPostMethods needs SameSite=None).',
  },
  { plan: 'basic', module: 'oidcc-server-client-secret-post', expect: 'passed', note: 'client_secret_post at the token endpoint.' },
  {
    plan: 'basic',
    module: 'oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported',
    expect: 'not supported',
    note: 'No request_uri but PAR\'s own, and no unsigned request objects (request_object_signing_alg_values_supported lacks none): the suite skips the module (and applies it only to dynamic registration).',
  },
  {
    plan: 'basic',
    module: 'oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported',
    expect: 'not supported',
    note: 'Unsigned request objects are not accepted (request_object_signing_alg_values_supported lacks none): the suite skips the module.',
  },
  {
    plan: 'basic',
    module: 'oidcc-claims-essential',
    expect: 'warning',
    warnings: ['EnsureUserInfoContainsName'],
    note: 'The claims request parameter is not supported (claims_parameter_supported is false) and is ignored: userinfo releases by scope only, so name (asked for as essential, without the profile scope) is not returned.',
  },
  {
    plan: 'basic',
    module: 'oidcc-ensure-request-object-with-redirect-uri',
    expect: 'not supported',
    note: 'Unsigned request objects are not accepted (request_object_signing_alg_values_supported lacks none): the suite skips the module.',
  },
  { plan: 'basic', module: 'oidcc-refresh-token', expect: 'passed', note: 'offline_access; the refreshed ID token keeps iss, sub, aud, auth_time; another client\'s refresh token: invalid_grant.' },
  { plan: 'basic', module: 'oidcc-ensure-request-with-valid-pkce-succeeds', expect: 'passed', note: 'PKCE S256 (every module sends it: Concord requires it).' },

  // OIDC Config OP
  {
    plan: 'config',
    module: 'oidcc-discovery-endpoint-verification',
    expect: 'passed',
    note: 'Every discovery check of the suite, RS256 in id_token_signing_alg_values_supported included. Endpoints share the issuer\'s origin (the suite also wants https: the test runs on loopback http).',
  },

  // RP-Initiated Logout OP
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-discovery-endpoint-verification', expect: 'passed', note: 'end_session_endpoint advertised.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout', expect: 'passed', note: 'Back at post_logout_redirect_uri with the state and nothing else (after the partner IdP\'s own sign-out question); prompt=none then gives login_required.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-bad-post-logout-redirect-uri', expect: 'passed', note: 'An unregistered post_logout_redirect_uri: an error page, no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-modified-id-token-hint', expect: 'passed', note: 'An id_token_hint turned to alg none: an error page, no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-no-id-token-hint', expect: 'passed', note: 'post_logout_redirect_uri without id_token_hint or client_id: Concord asks the user, then says they are signed out; no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-no-params', expect: 'passed', note: 'Concord asks, then says the user is signed out; no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-no-post-logout-redirect-uri', expect: 'passed', note: 'Signed out, no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-no-state', expect: 'passed', note: 'Back at post_logout_redirect_uri without any parameter; prompt=none then gives login_required.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-only-state', expect: 'passed', note: 'Concord asks, then says the user is signed out; no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri', expect: 'passed', note: 'post_logout_redirect_uri with ?foo=bar added is not registered: an error page, no redirect.' },
  { plan: 'rpLogout', module: 'oidcc-rp-initiated-logout-bad-id-token-hint', expect: 'passed', note: 'An id_token_hint the client signed itself (HS256 with its secret): an error page, no redirect.' },

  // Back-Channel Logout OP
  { plan: 'backchannel', module: 'oidcc-backchannel-logout-discovery-endpoint-verification', expect: 'passed', note: 'backchannel_logout_supported and backchannel_logout_session_supported true, end_session_endpoint.' },
  {
    plan: 'backchannel',
    module: 'oidcc-backchannel-rp-initiated-logout',
    expect: 'passed',
    note: 'A logout token (only logout_token in the form; iss, aud, iat, jti, the event, sid and sub of the ID token, no nonce) and the redirect with the state; prompt=none then gives login_required. TLS of the delivery is the deployment\'s (loopback http here).',
  },
];

/** The result a module has in the table. */
export function tableResult(def: ModuleDefinition): 'passed' | 'warning' | 'not supported' {
  return def.expect;
}
