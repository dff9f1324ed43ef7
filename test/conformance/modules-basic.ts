import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeProtectedHeader, type JWTPayload } from 'jose';
import { Browser } from '../support/http-client.ts';
import {
  authorize,
  CALLBACK,
  claimsOf,
  entropyBits,
  exchange,
  expectCode,
  genericAuthorizationError,
  invalidGrant,
  missingScopeClaims,
  randomValue,
  standardIdTokenChecks,
  tokenRequest,
  USER_INTERFACE_ERRORS,
  userinfo,
  validateUserinfo,
  wait,
  type AuthorizationOptions,
  type Findings,
  type Harness,
  type SuiteClient,
} from './harness.ts';

/**
 * The modules of the OIDC Basic OP plan (oidcc-basic-certification-test-plan), each doing what the
 * suite's class of that name does: its requests, and its conditions (FAILURE ones assert, WARNING
 * ones are recorded in the findings).
 */

export type ModuleRun = (h: Harness, findings: Findings) => Promise<void>;

/** The left half of the hash of `value` that at_hash and c_hash carry (OIDC Core 3.3.2.11). */
function halfHash(value: string, alg: string): string {
  const hash = /384$/.test(alg) ? 'sha384' : /512$/.test(alg) || alg === 'EdDSA' ? 'sha512' : 'sha256';
  const digest = createHash(hash).update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

export interface HappyFlow {
  browser: Browser;
  request: Awaited<ReturnType<typeof authorize>>['request'];
  callback: URL;
  code: string;
  tokens: Awaited<ReturnType<typeof exchange>>;
  idToken: string;
  claims: JWTPayload;
}

/**
 * AbstractOIDCCServerTest's flow: the authorization request, the code, the token request
 * (access token, expires_in if present valid, the ID token and its standard checks, at_hash and
 * c_hash when present), and the protected resource (userinfo) answering 200.
 */
export async function happyFlow(h: Harness, client: SuiteClient, options: AuthorizationOptions & { browser?: Browser } = {}): Promise<HappyFlow> {
  const browser = options.browser ?? new Browser();
  const outcome = await authorize(client, browser, options);
  const callback = expectCode(h, outcome);
  const code = callback.searchParams.get('code')!;
  const tokens = await exchange(client, callback, outcome.request);
  assert.ok(tokens.access_token, 'CheckForAccessTokenValue');
  if (tokens.expires_in !== undefined) assert.ok(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, 'ValidateExpiresIn');
  const idToken = tokens.id_token;
  assert.ok(idToken, 'ExtractIdTokenFromTokenResponse');
  const claims = await standardIdTokenChecks(h, client, idToken, outcome.request);
  const { alg } = decodeProtectedHeader(idToken);
  if (claims.at_hash !== undefined) assert.equal(claims.at_hash, halfHash(tokens.access_token, alg!), 'ValidateAtHash');
  if (claims.c_hash !== undefined) assert.equal(claims.c_hash, halfHash(code, alg!), 'ValidateCHash');
  const resource = await userinfo(h, tokens.access_token);
  assert.equal(resource.status, 200, `the protected resource (userinfo) answered ${resource.status}`);
  return { browser, request: outcome.request, callback, code, tokens, idToken, claims };
}

/** EnsureIdTokenDoesNotContainName (a WARNING: name goes to userinfo, OIDC Core 5.5). */
const idTokenWithoutName = (findings: Findings, claims: JWTPayload) =>
  findings.expect('EnsureIdTokenDoesNotContainName', claims.name === undefined, 'the ID token contains name');

/** The claims the suite accepts in an ID token (EnsureIdTokenDoesNotContainNonRequestedClaims). */
const ID_TOKEN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'nbf', 'jti', 'sid', 's_hash', 'openbanking_intent_id', 'txn'];

/** AbstractOIDCCReturnedClaimsServerTest: the flow with `scope`, then userinfo and its checks. */
async function returnedClaims(h: Harness, findings: Findings, scope: string, options: AuthorizationOptions = {}) {
  // skipTestIfScopesNotSupported: the suite skips the module when discovery lacks a scope.
  const supported = h.metadata.scopes_supported as string[];
  for (const s of scope.split(' ')) assert.ok(supported.includes(s), `scopes_supported lacks ${s}: the suite would skip the module`);
  const flow = await happyFlow(h, h.client, { ...options, scope });
  const info = validateUserinfo(await userinfo(h, flow.tokens.access_token), flow.claims.sub!);
  const missing = missingScopeClaims(info, scope);
  findings.expect('VerifyScopesReturnedInUserInfoClaims', missing.length === 0, `userinfo lacks ${missing.join(', ')}`);
  return { ...flow, userinfo: info };
}

/** OIDCCScopeEmail's own checks, also OIDCCAlternateHappyFlow's. */
async function scopeEmail(h: Harness, findings: Findings, options: AuthorizationOptions = {}) {
  const flow = await returnedClaims(h, findings, options.scope ?? 'openid email', options);
  idTokenWithoutName(findings, flow.claims);
  findings.expect('EnsureIdTokenDoesNotContainEmailForScopeEmail', flow.claims.email === undefined, 'the ID token contains email (OIDC Core 5.4: from userinfo when an access token is issued)');
  findings.expect('EnsureUserInfoDoesNotContainName', flow.userinfo.name === undefined, 'userinfo contains name for scope email');
}

/** AbstractOIDCCSameAuthTwiceServerTest: two authorizations in one browser; the same sub and auth_time. */
async function sameAuthTwice(h: Harness, first: AuthorizationOptions, second: (firstIdToken: string) => AuthorizationOptions, firstCheck?: (claims: JWTPayload) => void) {
  const one = await happyFlow(h, h.client, first);
  firstCheck?.(one.claims);
  const outcome = await authorize(h.client, one.browser, second(one.idToken));
  assert.equal(outcome.loginPageShown, false, 'the second authorization asked the user to log in');
  const callback = expectCode(h, outcome);
  const tokens = await exchange(h.client, callback, outcome.request);
  const claims = await standardIdTokenChecks(h, h.client, tokens.id_token!, outcome.request);
  // CheckIdTokenAuthTimeClaimsSameIfPresent, CheckIdTokenSubConsistentForSecondAuthorization
  if (one.claims.auth_time !== undefined || claims.auth_time !== undefined) assert.equal(claims.auth_time, one.claims.auth_time, 'auth_time the same');
  assert.equal(claims.sub, one.claims.sub, 'sub the same');
  return { first: one.claims, second: claims };
}

/** A second authorization that must show a login page again (prompt=login, max_age=1). */
async function loginAgain(h: Harness, extra: Record<string, string>, waitMs: number) {
  const one = await happyFlow(h, h.client);
  await wait(waitMs);
  const outcome = await authorize(h.client, one.browser, { extra });
  // ExpectSecondLoginPage: the suite asks for a screenshot of the login page; here the page itself.
  assert.ok(outcome.loginPageShown, 'no login page the second time');
  const callback = expectCode(h, outcome);
  const tokens = await exchange(h.client, callback, outcome.request);
  const claims = await standardIdTokenChecks(h, h.client, tokens.id_token!, outcome.request);
  // CheckSecondIdTokenAuthTimeIsLaterIfPresent
  if (typeof claims.auth_time === 'number' && typeof one.claims.auth_time === 'number') assert.ok(claims.auth_time > one.claims.auth_time, 'the second auth_time is later');
  return { first: one.claims, second: claims };
}

/** The first half of oidcc-codereuse-30seconds, started early so its 30 s pass while other modules run. */
export async function codeUsedOnce(h: Harness) {
  const flow = await happyFlow(h, h.client);
  return { flow, usedAt: Date.now() };
}

const reuse = (h: Harness, flow: HappyFlow) =>
  tokenRequest(h.client, { grant_type: 'authorization_code', code: flow.code, redirect_uri: CALLBACK, code_verifier: flow.request.codeVerifier });

/** OIDCCRefreshToken's steps for one client: the flow with offline_access, then a refresh (RefreshTokenRequestSteps). */
async function refreshSteps(h: Harness, client: SuiteClient, findings: Findings, second: boolean) {
  const offline = (h.metadata.scopes_supported as string[]).includes('offline_access');
  const scope = offline ? 'openid offline_access' : 'openid';
  // AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess (OIDC Core 11)
  const flow = await happyFlow(h, client, { scope, ...(offline ? { extra: { prompt: 'consent' } } : {}) });
  const refreshToken = flow.tokens.refresh_token;
  assert.ok(refreshToken, 'no refresh token: the suite skips the module');
  findings.expect('EnsureServerConfigurationSupportsRefreshToken', (h.metadata.grant_types_supported as string[] | undefined)?.includes('refresh_token') === true, 'grant_types_supported lacks refresh_token');
  assert.match(refreshToken, /^[\x20-\x7E]+$/, 'EnsureRefreshTokenContainsAllowedCharactersOnly (RFC 6749 A.17)');
  // WaitForOneSecond: the refreshed ID token's iat must differ.
  await wait(1100);
  const refreshed = await tokenRequest(client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(second ? {} : { scope }) });
  assert.equal(refreshed.status, 200, `CheckTokenEndpointHttpStatus200: ${JSON.stringify(refreshed.json)}`);
  assert.match(refreshed.headers.get('content-type') ?? '', /^application\/json/, 'CheckTokenEndpointReturnedJsonContentType');
  assert.ok((refreshed.headers.get('cache-control') ?? '').split(',').some((p) => p.trim() === 'no-store'), 'CheckTokenEndpointCacheHeaders');
  const accessToken = String(refreshed.json.access_token ?? '');
  assert.ok(accessToken, 'ExtractAccessTokenFromTokenResponse');
  assert.equal(String(refreshed.json.token_type).toLowerCase(), 'bearer', 'CheckTokenTypeIsBearer');
  assert.ok(entropyBits(accessToken) > 128, 'EnsureMinimumAccessTokenEntropy');
  assert.match(accessToken, /^[\x20-\x7E]+$/, 'EnsureAccessTokenContainsAllowedCharactersOnly (RFC 6749 A.12)');
  findings.expect('ExtractExpiresInFromTokenEndpointResponse', refreshed.json.expires_in !== undefined, 'no expires_in in the refresh response');
  const newRefresh = refreshed.json.refresh_token;
  if (typeof newRefresh === 'string') {
    assert.ok(Buffer.byteLength(newRefresh) * 8 >= 128, 'EnsureMinimumRefreshTokenLength');
    assert.ok(entropyBits(newRefresh) > 96, 'EnsureMinimumRefreshTokenEntropy');
  }
  if (typeof refreshed.json.id_token === 'string') {
    // CompareIdTokenClaims (OIDC Core 12.2)
    const a = flow.claims;
    const b = claimsOf(refreshed.json.id_token);
    assert.equal(b.iss, a.iss, 'iss the same');
    assert.equal(b.sub, a.sub, 'sub the same');
    assert.notEqual(b.iat, a.iat, 'iat of the new ID token is its own');
    assert.deepEqual([b.aud].flat().sort(), [a.aud].flat().sort(), 'aud the same');
    if (b.auth_time !== undefined) assert.equal(b.auth_time, a.auth_time, 'auth_time the same');
    if (a.azp === undefined) assert.equal(b.azp, undefined, 'no azp when the first had none');
    else assert.equal(b.azp, a.azp, 'azp the same');
  }
  const resource = await userinfo(h, accessToken);
  assert.equal(resource.status, 200, 'the refreshed access token at the protected resource');
  return { refreshToken: typeof newRefresh === 'string' ? newRefresh : refreshToken };
}

export const BASIC_MODULES: Record<string, ModuleRun> = {
  async 'oidcc-server'(h, findings) {
    const flow = await happyFlow(h, h.client);
    assert.ok(Buffer.byteLength(flow.code) * 8 >= 128, 'EnsureMinimumAuthorizationCodeLength');
    assert.ok(entropyBits(flow.code) > 96, 'EnsureMinimumAuthorizationCodeEntropy');
    findings.expect('ExtractExpiresInFromTokenEndpointResponse', flow.tokens.expires_in !== undefined, 'no expires_in');
    idTokenWithoutName(findings, flow.claims);
    const extra = Object.keys(flow.claims).filter((c) => !ID_TOKEN_CLAIMS.includes(c));
    findings.expect('EnsureIdTokenDoesNotContainNonRequestedClaims', extra.length === 0, `non-requested claims: ${extra.join(', ')}`);
  },

  async 'oidcc-response-type-missing'(h, findings) {
    const outcome = await authorize(h.client, new Browser(), { omit: ['response_type'] });
    if (outcome.callback) {
      const params = genericAuthorizationError(h, outcome, findings);
      // CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType
      assert.ok(['invalid_request', 'unsupported_response_type'].includes(params.error!), params.error);
    } else {
      // ExpectResponseTypeMissingErrorPage: an error page that says so.
      assert.equal(outcome.page.url.origin, h.issuer);
      assert.ok(outcome.page.status >= 400, `status ${outcome.page.status}`);
      assert.match(outcome.page.body, /response_type/);
    }
  },

  async 'oidcc-idtoken-signature'(h) {
    // A client registered without id_token_signed_response_alg: RS256 (OIDC Registration 2), with a kid.
    const flow = await happyFlow(h, h.client);
    const header = decodeProtectedHeader(flow.idToken);
    assert.ok(header.kid, 'EnsureIdTokenContainsKid');
    assert.equal(header.alg, 'RS256', 'EnsureIdTokenSignatureIsRS256');
  },

  async 'oidcc-userinfo-get'(h) {
    const flow = await happyFlow(h, h.client);
    validateUserinfo(await userinfo(h, flow.tokens.access_token, 'get'), flow.claims.sub!);
  },

  async 'oidcc-userinfo-post-header'(h) {
    const flow = await happyFlow(h, h.client);
    validateUserinfo(await userinfo(h, flow.tokens.access_token, 'post-header'), flow.claims.sub!);
  },

  async 'oidcc-userinfo-post-body'(h, findings) {
    const flow = await happyFlow(h, h.client);
    const response = await userinfo(h, flow.tokens.access_token, 'post-body');
    if (response.status >= 200 && response.status < 300) validateUserinfo(response, flow.claims.sub!);
    else findings.expect('UserInfoEndpointWithAccessTokenInBodyNotSupported', false, `userinfo answered ${response.status} to a token in the body`);
  },

  async 'oidcc-ensure-request-without-nonce-succeeds-for-code-flow'(h) {
    // The suite stops at the code (performPostAuthorizationFlow is skipped).
    expectCode(h, await authorize(h.client, new Browser(), { omit: ['nonce'] }));
  },

  async 'oidcc-scope-profile'(h, findings) {
    await returnedClaims(h, findings, 'openid profile');
  },
  async 'oidcc-scope-email'(h, findings) {
    await scopeEmail(h, findings);
  },
  async 'oidcc-scope-address'(h, findings) {
    await returnedClaims(h, findings, 'openid address');
  },
  async 'oidcc-scope-phone'(h, findings) {
    await returnedClaims(h, findings, 'openid phone');
  },
  async 'oidcc-scope-all'(h, findings) {
    await returnedClaims(h, findings, 'openid email phone address profile');
  },
  async 'oidcc-alternate-happy-flow'(h, findings) {
    // ReverseScopeOrderInAuthorizationEndpointRequest, BuildPlainRedirectToAuthorizationEndpointReorderedParams
    await scopeEmail(h, findings, { scope: 'email openid', reorder: true });
  },

  async 'oidcc-display-page'(h) {
    await happyFlow(h, h.client, { extra: { display: 'page' } });
  },
  async 'oidcc-display-popup'(h) {
    await happyFlow(h, h.client, { extra: { display: 'popup' } });
  },

  async 'oidcc-prompt-login'(h) {
    await loginAgain(h, { prompt: 'login' }, 1100);
  },

  async 'oidcc-prompt-none-not-logged-in'(h, findings) {
    const outcome = await authorize(h.client, new Browser(), { extra: { prompt: 'none' }, stateLength: 128 });
    const params = genericAuthorizationError(h, outcome, findings);
    assert.ok(USER_INTERFACE_ERRORS.includes(params.error!), `CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface: ${params.error}`);
  },

  async 'oidcc-prompt-none-logged-in'(h) {
    await sameAuthTwice(h, {}, () => ({ extra: { prompt: 'none' } }));
  },

  async 'oidcc-max-age-1'(h) {
    const { second } = await loginAgain(h, { max_age: '1' }, 2100);
    // CheckIdTokenAuthTimeClaimPresentDueToMaxAge, CheckIdTokenAuthTimeIsRecentIfPresent
    assert.equal(typeof second.auth_time, 'number', 'auth_time present (max_age was asked)');
    assert.ok((second.auth_time as number) >= Math.floor(Date.now() / 1000) - 300 - 1, 'auth_time recent');
  },

  async 'oidcc-max-age-10000'(h) {
    const authTimePresent = (claims: JWTPayload) => assert.equal(typeof claims.auth_time, 'number', 'CheckIdTokenAuthTimeClaimPresentDueToMaxAge');
    const { second } = await sameAuthTwice(h, { extra: { max_age: '15000' } }, () => ({ extra: { max_age: '10000' } }), authTimePresent);
    authTimePresent(second);
  },

  async 'oidcc-ensure-request-with-unknown-parameter-succeeds'(h) {
    await happyFlow(h, h.client, { extra: { extra: 'foobar' } });
  },

  async 'oidcc-id-token-hint'(h) {
    await sameAuthTwice(h, {}, (idToken) => ({ extra: { prompt: 'none', id_token_hint: idToken } }));
  },

  async 'oidcc-login-hint'(h) {
    await happyFlow(h, h.client, { extra: { login_hint: 'dana@acme.example' } });
  },
  async 'oidcc-ui-locales'(h) {
    await happyFlow(h, h.client, { extra: { ui_locales: 'se' } });
  },
  async 'oidcc-claims-locales'(h) {
    await happyFlow(h, h.client, { extra: { claims_locales: 'se' } });
  },

  async 'oidcc-ensure-request-with-acr-values-succeeds'(h, findings) {
    const supported = h.metadata.acr_values_supported as string[] | undefined;
    const requested = supported?.length ? supported : ['1', '2'];
    const flow = await happyFlow(h, h.client, { extra: { acr_values: requested.join(' ') } });
    // ValidateIdTokenACRClaimAgainstAcrValuesRequest (a WARNING: acr SHOULD be one of them)
    findings.expect('ValidateIdTokenACRClaimAgainstAcrValuesRequest', requested.includes(String(flow.claims.acr)), `acr ${String(flow.claims.acr)} is none of ${requested.join(' ')}`);
  },

  async 'oidcc-codereuse'(h, findings) {
    const flow = await happyFlow(h, h.client);
    const again = await reuse(h, flow);
    if (again.status === 200) findings.expect('ServerAllowedReusingAuthorizationCode', false, 'the code was accepted twice');
    else invalidGrant(again, findings);
  },

  async 'oidcc-ensure-registered-redirect-uri'(h) {
    // CreateBadRedirectUriByAppending
    const bad = `${CALLBACK}${randomValue(10)}`;
    const browser = new Browser();
    const outcome = await authorize(h.client, browser, { redirectUri: bad });
    const visited = browser.history.flatMap((hop) => [hop.url.href, hop.location?.href ?? '']);
    assert.ok(!visited.some((u) => u.startsWith(CALLBACK)), 'the browser was sent to a redirect URI');
    assert.equal(outcome.callback, undefined);
    // ExpectRedirectUriErrorPage: an error page at Concord that says what happened.
    assert.equal(outcome.page.url.origin, h.issuer);
    assert.equal(outcome.page.status, 400);
    assert.match(outcome.page.body, /redirect_uri/);
  },

  async 'oidcc-ensure-post-request-succeeds'(h, findings) {
    const outcome = await authorize(h.client, new Browser(), { method: 'POST' });
    // ExpectRedirectUriHasBeenCalled (a WARNING: the suite waits 30 s for the redirect URI to be called).
    findings.expect('ExpectRedirectUriHasBeenCalled', outcome.callback !== undefined, `POST to the authorization endpoint: ${outcome.page.status} ${outcome.page.body.slice(0, 100)}`);
    if (outcome.callback) {
      const tokens = await exchange(h.client, expectCode(h, outcome), outcome.request);
      await standardIdTokenChecks(h, h.client, tokens.id_token!, outcome.request);
    }
  },

  async 'oidcc-server-client-secret-post'(h) {
    assert.ok((h.metadata.token_endpoint_auth_methods_supported as string[]).includes('client_secret_post'), 'EnsureServerConfigurationSupportsClientSecretPost');
    await happyFlow(h, h.postClient);
  },

  async 'oidcc-claims-essential'(h, findings) {
    const flow = await happyFlow(h, h.client, { extra: { claims: JSON.stringify({ userinfo: { name: { essential: true } } }) } });
    const info = validateUserinfo(await userinfo(h, flow.tokens.access_token), flow.claims.sub!);
    const missing = missingScopeClaims(info, 'openid');
    findings.expect('VerifyScopesReturnedInUserInfoClaims', missing.length === 0, `userinfo lacks ${missing.join(', ')}`);
    findings.expect('EnsureUserInfoContainsName', info.name !== undefined, 'userinfo has no name');
    idTokenWithoutName(findings, flow.claims);
  },

  async 'oidcc-refresh-token'(h, findings) {
    await refreshSteps(h, h.client, findings, false);
    const second = await refreshSteps(h, h.client2, findings, true);
    // performSecondClientTests: client 2's refresh token used by client 1.
    const stolen = await tokenRequest(h.client, { grant_type: 'refresh_token', refresh_token: second.refreshToken, scope: 'openid' });
    invalidGrant(stolen, findings);
  },

  async 'oidcc-ensure-request-with-valid-pkce-succeeds'(h) {
    // SetupPkceAndAddToAuthorizationRequest, AddCodeVerifierToTokenEndpointRequest (every flow here does).
    await happyFlow(h, h.client);
  },
};

/** oidcc-codereuse-30seconds, its first part done by codeUsedOnce() beforehand. */
export async function codeReusedAfter30Seconds(h: Harness, findings: Findings, used: Awaited<ReturnType<typeof codeUsedOnce>>): Promise<void> {
  // WaitFor30Seconds
  await wait(Math.max(0, used.usedAt + 30_000 - Date.now()));
  invalidGrant(await reuse(h, used.flow), findings);
  // The access token of the code's first use SHOULD be revoked (RFC 6749 4.1.2): EnsureHttpStatusCodeIs4xx, a WARNING.
  const resource = await userinfo(h, used.flow.tokens.access_token);
  findings.expect('EnsureHttpStatusCodeIs4xx', resource.status >= 400 && resource.status < 500, `the first access token still answers ${resource.status} at userinfo`);
}
