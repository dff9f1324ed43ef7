import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { BACKCHANNEL_LOGOUT_EVENT } from '../support/logout-receiver.ts';
import { authorize, genericAuthorizationError, POST_LOGOUT, randomValue, USER_INTERFACE_ERRORS, type Findings, type Harness } from './harness.ts';
import { happyFlow, type HappyFlow, type ModuleRun } from './modules-basic.ts';

/**
 * The modules of the OIDC Config OP, RP-Initiated Logout OP and Back-Channel Logout OP plans.
 */

/**
 * The members RFC 8414 and the OpenID specifications define for server metadata (the suite's
 * json-schemas/rfc8414/oauth_authorization_server_metadata.json, whose additionalProperties is
 * false): anything else draws CheckForUnexpectedParametersInServerMetadata's WARNING.
 */
const KNOWN_METADATA = new Set([
  'acr_values_supported', 'attachments_supported', 'authorization_challenge_endpoint', 'authorization_details_types_supported',
  'authorization_encryption_alg_values_supported', 'authorization_encryption_enc_values_supported', 'authorization_endpoint',
  'authorization_response_iss_parameter_supported', 'authorization_signing_alg_values_supported', 'backchannel_authentication_endpoint',
  'backchannel_authentication_request_signing_alg_values_supported', 'backchannel_logout_session_supported', 'backchannel_logout_supported',
  'backchannel_token_delivery_modes_supported', 'backchannel_user_code_parameter_supported', 'challenge_endpoint', 'check_session_iframe',
  'claim_types_supported', 'claims_in_verified_claims_supported', 'claims_locales_supported', 'claims_parameter_supported', 'claims_supported',
  'client_attestation_pop_signing_alg_values_supported', 'client_attestation_signing_alg_values_supported', 'client_id_metadata_document_supported',
  'client_registration_types_supported', 'code_challenge_methods_supported', 'contacts', 'description', 'device_authorization_endpoint',
  'display_name', 'display_values_supported', 'documents_check_methods_supported', 'documents_methods_supported', 'documents_supported',
  'dpop_signing_alg_values_supported', 'electronic_records_supported', 'end_session_endpoint', 'evidence_supported',
  'federation_registration_endpoint', 'frontchannel_logout_session_supported', 'frontchannel_logout_supported', 'global_token_revocation_endpoint',
  'global_token_revocation_endpoint_auth_methods_supported', 'grant_management_action_required', 'grant_management_actions_supported',
  'grant_management_endpoint', 'grant_types_supported', 'id_token_encryption_alg_values_supported', 'id_token_encryption_enc_values_supported',
  'id_token_signing_alg_values_supported', 'information_uri', 'introspection_encryption_alg_values_supported',
  'introspection_encryption_enc_values_supported', 'introspection_endpoint', 'introspection_endpoint_auth_methods_supported',
  'introspection_endpoint_auth_signing_alg_values_supported', 'introspection_signing_alg_values_supported', 'issuer', 'jwks', 'jwks_uri',
  'keywords', 'logo_uri', 'mtls_endpoint_aliases', 'op_policy_uri', 'op_tos_uri', 'organization_name', 'organization_uri',
  'pre-authorized_grant_anonymous_access_supported', 'prompt_values_supported', 'protected_resources', 'pushed_authorization_request_endpoint',
  'registration_endpoint', 'request_authentication_methods_supported', 'request_authentication_signing_alg_values_supported',
  'request_object_encryption_alg_values_supported', 'request_object_encryption_enc_values_supported', 'request_object_signing_alg_values_supported',
  'request_parameter_supported', 'request_uri_parameter_supported', 'require_pushed_authorization_requests', 'require_request_uri_registration',
  'require_signed_request_object', 'response_modes_supported', 'response_types_supported', 'revocation_endpoint',
  'revocation_endpoint_auth_methods_supported', 'revocation_endpoint_auth_signing_alg_values_supported', 'scopes_supported',
  'service_documentation', 'signed_jwks_uri', 'signed_metadata', 'status_list_aggregation_endpoint', 'subject_types_supported',
  'tls_client_certificate_bound_access_tokens', 'token_endpoint', 'token_endpoint_auth_methods_supported',
  'token_endpoint_auth_signing_alg_values_supported', 'transformed_claims_functions_supported', 'transformed_claims_predefined',
  'trust_frameworks_supported', 'ui_locales_supported', 'userinfo_encryption_alg_values_supported', 'userinfo_encryption_enc_values_supported',
  'userinfo_endpoint', 'userinfo_signing_alg_values_supported',
]);

const ENDPOINTS = ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'registration_endpoint', 'end_session_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'pushed_authorization_request_endpoint'];

/** AbstractValidateJsonArray: `name` is an array holding at least `min` of `values`. */
function arrayHolds(metadata: Record<string, unknown>, name: string, values: string[], min = values.length): void {
  const actual = metadata[name];
  assert.ok(Array.isArray(actual), `${name}: not found or not an array`);
  assert.ok(values.filter((v) => (actual as unknown[]).includes(v)).length >= min, `${name} ${JSON.stringify(actual)} lacks ${values.join(' / ')}`);
}

/**
 * CheckDiscEndpointAllEndpointsAreHttps, as far as a loopback test can: every endpoint is an
 * absolute URL on the issuer's own origin (so it has the issuer's scheme, https in a deployment).
 */
function endpointsOnIssuerOrigin(h: Harness): void {
  for (const name of ENDPOINTS) {
    const value = h.metadata[name];
    if (value === undefined) continue;
    assert.equal(new URL(String(value)).origin, new URL(h.issuer).origin, `${name} is not on the issuer's origin`);
  }
}

/** JWKS checks (ValidateJwksSequence, CheckForKeyIdInServerJWKs, CheckDistinctKeyIdValueInServerJWKs). */
function validateJwks(h: Harness): void {
  assert.ok(Array.isArray(h.jwks.keys) && h.jwks.keys.length > 0, 'the JWKS has keys');
  const kids = h.jwks.keys.map((k) => k.kid);
  for (const key of h.jwks.keys) {
    assert.ok(key.kty === 'RSA' || key.kty === 'EC' || key.kty === 'OKP', `a ${key.kty} key in the JWKS`);
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) assert.equal((key as Record<string, unknown>)[member], undefined, `the JWKS publishes a private member ${member}`);
    assert.ok(key.kid, 'a key without kid (OIDC Core 10.1)');
  }
  assert.equal(new Set(kids).size, kids.length, 'kids are distinct (RFC 7517 4.5)');
}

export async function discoveryEndpointVerification(h: Harness, findings: Findings): Promise<void> {
  const discoveryUrl = `${h.issuer}/.well-known/openid-configuration`;
  const res = await fetch(discoveryUrl);
  assert.equal(res.status, 200, 'EnsureDiscoveryEndpointResponseStatusCodeIs200');
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, 'CheckDiscoveryEndpointReturnedJsonContentType');
  const m = (await res.json()) as Record<string, unknown>;
  // OIDCCCheckDiscEndpointResponseTypesSupported (static client)
  arrayHolds(m, 'response_types_supported', ['code', 'code id_token', 'id_token', 'token id_token', 'code id_token token', 'code token'], 1);
  // CheckDiscEndpointIssuer, CheckDiscEndpointIssuerIsValidUrl
  assert.equal(String(m.issuer).replace(/\/$/, ''), discoveryUrl.slice(0, -'/.well-known/openid-configuration'.length));
  const issuer = new URL(String(m.issuer));
  assert.equal(issuer.search + issuer.hash, '', 'the issuer has no query or fragment (RFC 8414 2)');
  // CheckForUnexpectedParametersInServerMetadata (a WARNING)
  const unknown = Object.keys(m).filter((k) => !KNOWN_METADATA.has(k));
  findings.expect('CheckForUnexpectedParametersInServerMetadata', unknown.length === 0, `unknown metadata: ${unknown.join(', ')}`);
  // CheckDiscEndpointSubjectTypesSupported
  arrayHolds(m, 'subject_types_supported', ['public', 'pairwise'], 1);
  // OIDCCCheckDiscEndpointIdTokenSigningAlgValuesSupported (RS256 is required), never none
  assert.ok(Array.isArray(m.id_token_signing_alg_values_supported), 'id_token_signing_alg_values_supported');
  assert.ok(!(m.id_token_signing_alg_values_supported as string[]).includes('none'), 'none is offered');
  arrayHolds(m, 'id_token_signing_alg_values_supported', ['RS256']);
  if (m.userinfo_signing_alg_values_supported !== undefined) assert.ok(Array.isArray(m.userinfo_signing_alg_values_supported));
  // CheckDiscEndpointAuthorizationEndpoint, ...TokenEndpoint, ...UserinfoEndpoint (a WARNING when absent), CheckJwksUri
  for (const name of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) assert.doesNotThrow(() => new URL(String(m[name])), name);
  findings.expect('CheckDiscEndpointUserinfoEndpoint', typeof m.userinfo_endpoint === 'string', 'no userinfo_endpoint');
  if (m.registration_endpoint !== undefined) assert.doesNotThrow(() => new URL(String(m.registration_endpoint)));
  validateJwks(h);
  if (m.request_object_signing_alg_values_supported !== undefined) {
    findings.expect('CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256', (m.request_object_signing_alg_values_supported as string[]).includes('RS256'), 'request objects without RS256');
  }
  // OIDCCCheckDiscEndpointClaimsSupported (a WARNING)
  findings.expect('OIDCCCheckDiscEndpointClaimsSupported', Array.isArray(m.claims_supported), 'no claims_supported');
  // OIDCCCheckDiscEndpointGrantTypesSupported
  if (m.grant_types_supported !== undefined) assert.ok(Array.isArray(m.grant_types_supported) && m.grant_types_supported.length > 0, 'grant_types_supported is a non-empty array');
  // CheckDiscEndpointScopesSupportedContainsOpenId (a WARNING when absent), CheckDiscEndpointScopesSupportedSyntax
  findings.expect('CheckDiscEndpointScopesSupportedContainsOpenId', m.scopes_supported !== undefined, 'no scopes_supported');
  if (m.scopes_supported !== undefined) {
    arrayHolds(m, 'scopes_supported', ['openid']);
    for (const s of m.scopes_supported as string[]) assert.match(s, /^[\x21\x23-\x5B\x5D-\x7E]+$/, `scope-token syntax (RFC 6749 A.4): ${s}`);
  }
  // CheckDiscEndpointLocalesSyntax (well-formed BCP 47 tags)
  for (const name of ['ui_locales_supported', 'claims_locales_supported']) {
    if (m[name] === undefined) continue;
    for (const tag of m[name] as string[]) assert.doesNotThrow(() => Intl.getCanonicalLocales(tag), `${name}: ${tag}`);
  }
  endpointsOnIssuerOrigin(h);
  // EnsureServerConfigurationCodeChallengeMethodsSupportedIsAnArray
  if (Array.isArray(m.code_challenge_methods_supported) && m.code_challenge_methods_supported.length > 0) arrayHolds(m, 'code_challenge_methods_supported', ['S256', 'plain'], 1);
}

// --- RP-initiated logout ----------------------------------------------------------------------

const atPostLogout = (u: URL) => u.href.startsWith(POST_LOGOUT);

/** Whether the page is a sign-out question (Concord's or the partner IdP's) or Concord's self-submitting step. */
const logoutForm = (page: BrowserResponse) => (page.status === 200 && /action="[^"]*\/session\/end\/confirm"/.test(page.body) ? parseForm(page.body, '/session/end/confirm') : undefined);

/**
 * Follows an end_session request as the user would: answers "yes" to every sign-out question
 * (Concord's, the partner's) and lets Concord's self-submitting step submit, until the browser
 * is sent to a post_logout_redirect_uri (not requested) or lands on a page without a question.
 */
async function followLogout(browser: Browser, url: URL, stopAt: (u: URL) => boolean): Promise<BrowserResponse> {
  let page = await browser.get(url, { stopAt });
  for (let i = 0; i < 6 && !page.stoppedAt; i++) {
    const form = logoutForm(page);
    if (!form) break;
    page = await browser.post(new URL(form.action, page.url), { ...form.fields, logout: 'yes' }, { stopAt });
  }
  return page;
}

interface EndSession {
  id_token_hint?: string;
  post_logout_redirect_uri?: string;
  state?: string;
}

/** AbstractOIDCCRpInitiatedLogout: the flow (state of 128 characters), then the end_session request. */
async function signedInThenEndSession(h: Harness, customise: (request: EndSession, flow: HappyFlow) => Promise<EndSession> | EndSession) {
  const flow = await happyFlow(h, h.client, { stateLength: 128 });
  const state = randomValue(32);
  const request = await customise({ id_token_hint: flow.idToken, post_logout_redirect_uri: POST_LOGOUT, state }, flow);
  const url = new URL(String(h.metadata.end_session_endpoint));
  for (const [k, v] of Object.entries(request)) if (v !== undefined) url.searchParams.set(k, v);
  return { flow, request, url };
}

/** The browser was never sent to `uri` (or a URL under it), in any hop. */
function neverSentTo(browser: Browser, uri: string): void {
  const visited = browser.history.flatMap((hop) => [hop.url.href, hop.location?.href ?? '']);
  assert.ok(!visited.some((u) => u.startsWith(uri)), `the browser was sent to ${uri}`);
}

/** After logout, prompt=none must fail with an error that needs the user (OIDCCRpInitiatedLogout's second authorization). */
async function loggedOut(h: Harness, browser: Browser, findings: Findings) {
  const outcome = await authorize(h.client, browser, { extra: { prompt: 'none' }, stateLength: 128 });
  const params = genericAuthorizationError(h, outcome, findings);
  assert.ok(USER_INTERFACE_ERRORS.includes(params.error!), `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface: ${params.error}`);
}

/** The redirect to post_logout_redirect_uri: CheckPostLogoutState / CheckNoPostLogoutState, and only state (a WARNING). */
function checkPostLogoutRedirect(redirect: URL | undefined, state: string | undefined, findings: Findings, page: BrowserResponse) {
  assert.ok(redirect, `not sent to the post_logout_redirect_uri: ${page.status} at ${page.url.href}: ${page.body.slice(0, 300)}`);
  const params = Object.fromEntries(redirect.searchParams);
  assert.equal(params.state, state, 'state at the post_logout_redirect_uri');
  const unexpected = Object.keys(params).filter((k) => k !== 'state');
  findings.expect('CheckForUnexpectedParametersInPostLogoutRedirect', unexpected.length === 0, `unexpected: ${unexpected.join(', ')}`);
}

/**
 * The OP must not redirect back, and show an error page or ask the user (the suite's placeholder
 * takes either); Concord shows its error page, which says what was wrong (`why`).
 */
async function refused(h: Harness, url: URL, browser: Browser, why: RegExp) {
  const page = await browser.get(url, { stopAt: atPostLogout });
  assert.equal(page.stoppedAt, undefined, `redirected to ${page.stoppedAt?.href}`);
  neverSentTo(browser, POST_LOGOUT);
  assert.equal(page.url.origin, h.issuer, `ended at ${page.url.href}`);
  assert.equal(logoutForm(page), undefined, 'Concord asked instead of refusing');
  assert.equal(page.status, 400, `an error page: ${page.status} ${page.body.slice(0, 200)}`);
  assert.match(page.body, why);
}

/** The user is told they are signed out, and the client's post_logout_redirect_uri was not used. */
async function signedOutPage(h: Harness, url: URL, browser: Browser, findings: Findings) {
  const page = await followLogout(browser, url, atPostLogout);
  assert.equal(page.stoppedAt, undefined, `redirected to ${page.stoppedAt?.href}`);
  neverSentTo(browser, POST_LOGOUT);
  assert.equal(page.url.origin, h.issuer, `ended at ${page.url.href}`);
  assert.equal(page.status, 200);
  assert.match(page.body, /Signed out|signed out/, 'ExpectSuccessfulLogoutPage');
  await loggedOut(h, browser, findings);
}

export const LOGOUT_MODULES: Record<string, ModuleRun> = {
  async 'oidcc-rp-initiated-logout-discovery-endpoint-verification'(h) {
    endpointsOnIssuerOrigin(h);
    assert.doesNotThrow(() => new URL(String(h.metadata.end_session_endpoint)), 'CheckDiscEndSessionEndpoint');
  },

  async 'oidcc-rp-initiated-logout'(h, findings) {
    const { flow, request, url } = await signedInThenEndSession(h, (r) => r);
    const page = await followLogout(flow.browser, url, atPostLogout);
    checkPostLogoutRedirect(page.stoppedAt, request.state, findings, page);
    await loggedOut(h, flow.browser, findings);
  },

  async 'oidcc-rp-initiated-logout-bad-post-logout-redirect-uri'(h) {
    const bad = `${POST_LOGOUT}${randomValue(10)}`;
    const { flow, url } = await signedInThenEndSession(h, (r) => ({ ...r, post_logout_redirect_uri: bad }));
    await refused(h, url, flow.browser, /post_logout_redirect_uri/);
    neverSentTo(flow.browser, bad);
  },

  async 'oidcc-rp-initiated-logout-modified-id-token-hint'(h) {
    // ChangeIdTokenToAlgNone
    const { flow, url } = await signedInThenEndSession(h, (r) => {
      const [, payload] = r.id_token_hint!.split('.');
      return { ...r, id_token_hint: `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.` };
    });
    await refused(h, url, flow.browser, /id_token_hint/);
  },

  async 'oidcc-rp-initiated-logout-no-id-token-hint'(h) {
    // Concord asks (nothing shows which service sends the user); the suite's user then says yes, and
    // the post_logout_redirect_uri must still not be used (ExpectIdTokenHintRequiredErrorPage).
    const { flow, url } = await signedInThenEndSession(h, ({ id_token_hint: _hint, ...rest }) => rest);
    const page = await followLogout(flow.browser, url, atPostLogout);
    assert.equal(page.stoppedAt, undefined, `redirected to ${page.stoppedAt?.href}`);
    neverSentTo(flow.browser, POST_LOGOUT);
    assert.ok(flow.browser.history.some((hop) => hop.url.pathname === '/session/end/confirm'), 'Concord asked the user');
    assert.equal(page.url.origin, h.issuer);
    assert.match(page.body, /Signed out|signed out/);
  },

  async 'oidcc-rp-initiated-logout-no-params'(h, findings) {
    const { flow } = await signedInThenEndSession(h, () => ({}));
    await signedOutPage(h, new URL(String(h.metadata.end_session_endpoint)), flow.browser, findings);
  },

  async 'oidcc-rp-initiated-logout-no-post-logout-redirect-uri'(h, findings) {
    const { flow, url } = await signedInThenEndSession(h, ({ post_logout_redirect_uri: _uri, ...rest }) => rest);
    await signedOutPage(h, url, flow.browser, findings);
  },

  async 'oidcc-rp-initiated-logout-no-state'(h, findings) {
    const { flow, url } = await signedInThenEndSession(h, ({ state: _state, ...rest }) => rest);
    const page = await followLogout(flow.browser, url, atPostLogout);
    checkPostLogoutRedirect(page.stoppedAt, undefined, findings, page);
    await loggedOut(h, flow.browser, findings);
  },

  async 'oidcc-rp-initiated-logout-only-state'(h, findings) {
    const { flow, url } = await signedInThenEndSession(h, ({ state }) => ({ state }));
    await signedOutPage(h, url, flow.browser, findings);
  },

  async 'oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri'(h) {
    const { flow, url } = await signedInThenEndSession(h, (r) => ({ ...r, post_logout_redirect_uri: `${POST_LOGOUT}?foo=bar` }));
    await refused(h, url, flow.browser, /post_logout_redirect_uri/);
  },

  async 'oidcc-rp-initiated-logout-bad-id-token-hint'(h) {
    // GenerateFakeIdTokenClaims, SignFakeIdToken: signed by the client (HS256 with its secret, GenerateJWKsFromClientSecret).
    const { flow, url } = await signedInThenEndSession(h, async (r) => {
      const now = Math.floor(Date.now() / 1000);
      const fake = await new SignJWT({ iss: h.client.id, sub: 'SubjectID', aud: h.issuer, nonce: 'flibble', iat: now, exp: now + 300 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(h.client.secret));
      return { ...r, id_token_hint: fake };
    });
    await refused(h, url, flow.browser, /id_token_hint/);
  },
};

export const BACKCHANNEL_MODULES: Record<string, ModuleRun> = {
  async 'oidcc-backchannel-logout-discovery-endpoint-verification'(h) {
    endpointsOnIssuerOrigin(h);
    assert.equal(h.metadata.backchannel_logout_supported, true, 'CheckDiscEndpointBackchannelLogoutSupported');
    assert.equal(h.metadata.backchannel_logout_session_supported, true, 'CheckDiscEndpointBackchannelLogoutSessionSupported');
    assert.doesNotThrow(() => new URL(String(h.metadata.end_session_endpoint)), 'CheckDiscEndSessionEndpoint');
  },

  async 'oidcc-backchannel-rp-initiated-logout'(h, findings) {
    const { flow, request, url } = await signedInThenEndSession(h, (r) => r);
    // The Back-Channel OP profile requires sessions (backchannel_logout_session_required): sid in the ID token.
    const sid = flow.claims.sid;
    assert.ok(typeof sid === 'string' && sid.length > 0, 'the ID token has a sid');
    const page = await followLogout(flow.browser, url, atPostLogout);
    // The logout token of this session (other modules' logouts reach the same endpoint).
    const deadline = Date.now() + 10_000;
    let received = h.backchannel.received.find((r) => r.payload.sid === sid);
    while (!received && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      received = h.backchannel.received.find((r) => r.payload.sid === sid);
    }
    assert.ok(received, `no logout token for sid ${String(sid)} (${h.backchannel.refused.join('; ')})`);
    // ExtractLogoutTokenFromBackchannelLogoutRequest, CheckForUnexpectedParametersInBackchannelLogoutRequest (a WARNING)
    findings.expect('CheckForUnexpectedParametersInBackchannelLogoutRequest', received.fields.length === 1 && received.fields[0] === 'logout_token', `form fields: ${received.fields.join(', ')}`);
    // ValidateLogoutTokenSignature
    assert.notEqual(decodeProtectedHeader(received.token).alg, 'none');
    const { payload } = await jwtVerify(received.token, createLocalJWKSet(h.jwks));
    // ValidateLogoutTokenClaims
    assert.equal(payload.iss, h.issuer);
    assert.ok([payload.aud].flat().includes(h.client.id), 'aud');
    const now = Math.floor(Date.now() / 1000);
    assert.ok(typeof payload.iat === 'number' && payload.iat <= now + 300 && payload.iat >= now - 86400, 'iat');
    assert.ok(typeof payload.jti === 'string' && payload.jti.length > 0, 'jti');
    const events = payload.events as Record<string, unknown>;
    assert.deepEqual(Object.keys(events), [BACKCHANNEL_LOGOUT_EVENT], 'events holds exactly the back-channel logout event');
    assert.deepEqual(events[BACKCHANNEL_LOGOUT_EVENT], {}, 'the event is an empty object');
    // CheckIdTokenSubMatchesLogoutToken, CheckIdTokenSidMatchesLogoutToken, CheckLogoutTokenNoNonce, CheckLogoutTokenHasSubOrSid
    if (payload.sub !== undefined) assert.equal(payload.sub, flow.claims.sub);
    if (payload.sid !== undefined) assert.equal(payload.sid, flow.claims.sid);
    assert.equal(payload.nonce, undefined);
    assert.ok(payload.sub !== undefined || payload.sid !== undefined);
    checkPostLogoutRedirect(page.stoppedAt, request.state, findings, page);
    await loggedOut(h, flow.browser, findings);
  },
};
