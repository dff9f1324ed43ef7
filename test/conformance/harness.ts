import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import type { PartnerUser } from '../../demo/partner-idp.ts';
import { startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.ts';
import { freePort } from '../support/ports.ts';

/**
 * One Concord, its two partner IdPs (demo/partner-idp.ts) and the suite's clients, shared by every
 * module of the conformance plans (plans.ts); the flows the suite's modules drive, over HTTP with
 * openid-client and a cookie jar (a new Browser per module, as the suite asks for "no cookies").
 */

/** The suite's redirect URI (never requested: the browser stops there and the test reads it). */
export const CALLBACK = 'http://127.0.0.1:9999/conformance/callback';
/** The suite's post_logout_redirect_uri ("the redirect URL with /post_logout_redirect"). */
export const POST_LOGOUT = 'http://127.0.0.1:9999/conformance/post_logout_redirect';

/** The user every module signs in as: an Acme account with every OIDC Core 5.1 standard claim. */
export const USER: PartnerUser = {
  sub: '9b2e7c1e-conformance-0001',
  email: 'dana@acme.example',
  name: 'Dana Dimitrova',
  given_name: 'Dana',
  family_name: 'Dimitrova',
  middle_name: 'Ivanova',
  nickname: 'dd',
  preferred_username: 'dana',
  profile: 'https://people.acme.example/dana',
  picture: 'https://people.acme.example/dana.png',
  website: 'https://dana.example',
  gender: 'female',
  birthdate: '1988-02-29',
  zoneinfo: 'Europe/Sofia',
  locale: 'bg-BG',
  phone_number: '+359 2 123 4567',
  phone_number_verified: true,
  address: { formatted: '1 Vitosha Blvd\nSofia 1000\nBulgaria', street_address: '1 Vitosha Blvd', locality: 'Sofia', postal_code: '1000', country: 'BG' },
  updated_at: 1_700_000_000,
};

export type ClientAuth = 'client_secret_basic' | 'client_secret_post';

export interface SuiteClient {
  id: string;
  secret: string;
  auth: ClientAuth;
  /** openid-client's view of Concord for this client. */
  config: oidc.Configuration;
}

export interface Harness {
  fed: Federation;
  issuer: string;
  /** The discovery document as served. */
  metadata: Record<string, unknown>;
  /** The JWKS as served. */
  jwks: JSONWebKeySet;
  /** client_secret_basic, with post_logout_redirect_uri and backchannel_logout_uri (the suite's "client"). */
  client: SuiteClient;
  /** client_secret_post (the suite's "client_secret_post" client). */
  postClient: SuiteClient;
  /** A second client_secret_basic client (the suite's "client2"). */
  client2: SuiteClient;
  /** The client's back-channel logout endpoint. */
  backchannel: LogoutReceiver;
  close(): Promise<void>;
}

const registered = (id: string, auth: ClientAuth, extra: Record<string, unknown> = {}) => ({
  client_id: id,
  client_name: `Conformance ${id}`,
  client_secret: `${id}-secret-0123456789abcdef`,
  redirect_uris: [CALLBACK],
  post_logout_redirect_uris: [POST_LOGOUT],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: auth,
  skip_consent: true,
  ...extra,
});

export async function startHarness(): Promise<Harness> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const backchannel = await startLogoutReceiver({ issuer, clientId: 'conformance-client' });
  const clients = [
    registered('conformance-client', 'client_secret_basic', { backchannel_logout_uri: backchannel.uri, backchannel_logout_session_required: true }),
    registered('conformance-post', 'client_secret_post'),
    registered('conformance-client2', 'client_secret_basic'),
  ];
  let fed: Federation;
  try {
    fed = await startFederation({ port, clients, acmeUsers: [USER], settings: { logLevel: 'warn' } });
  } catch (error) {
    await backchannel.close();
    throw error;
  }
  const suiteClient = async (c: (typeof clients)[number]): Promise<SuiteClient> => {
    const auth = c.token_endpoint_auth_method as ClientAuth;
    const method = auth === 'client_secret_post' ? oidc.ClientSecretPost(c.client_secret) : oidc.ClientSecretBasic(c.client_secret);
    const config = await oidc.discovery(new URL(issuer), c.client_id, undefined, method, { execute: [oidc.allowInsecureRequests] });
    return { id: c.client_id, secret: c.client_secret, auth, config };
  };
  const [client, postClient, client2] = await Promise.all(clients.map(suiteClient));
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  const jwks = (await (await fetch(String(metadata.jwks_uri))).json()) as JSONWebKeySet;
  return {
    fed,
    issuer,
    metadata,
    jwks,
    client: client!,
    postClient: postClient!,
    client2: client2!,
    backchannel,
    async close() {
      await fed.close();
      await backchannel.close();
    },
  };
}

/**
 * What one module run found: the suite's WARNING conditions that did not hold (its FAILURE
 * conditions are assertions: they throw).
 */
export class Findings {
  readonly warnings: Array<{ condition: string; detail: string }> = [];
  /** Records the suite's WARNING condition `condition` when `holds` is false. */
  expect(condition: string, holds: boolean, detail: string): void {
    if (!holds) this.warnings.push({ condition, detail });
  }
  conditions(): string[] {
    return [...new Set(this.warnings.map((w) => w.condition))].sort();
  }
}

// --- the authorization request and the user's part --------------------------------------------

export interface AuthorizationRequest {
  params: Record<string, string>;
  state?: string;
  nonce?: string;
  codeVerifier: string;
}

export interface AuthorizationOptions {
  scope?: string;
  /** Further parameters (prompt, max_age, display, ...). */
  extra?: Record<string, string>;
  /** Parameters the module leaves out (the suite's `.skip(...)`). */
  omit?: Array<'nonce' | 'state' | 'response_type'>;
  redirectUri?: string;
  /** The request as a form POST to the authorization endpoint (oidcc-ensure-post-request-succeeds). */
  method?: 'GET' | 'POST';
  /** The order of the query parameters: the suite's alternate flow reorders them. */
  reorder?: boolean;
  /** The suite's requested_state_length (default 32 characters, as its random values). */
  stateLength?: number;
}

export interface AuthorizationOutcome {
  request: AuthorizationRequest;
  /** The redirect to the client's redirect URI (not requested), if the flow got there. */
  callback?: URL;
  /** The last page the browser got when the flow did not reach the redirect URI. */
  page: BrowserResponse;
  /** Whether the user was shown a login page (Concord's, or the partner IdP's password page). */
  loginPageShown: boolean;
  /** Whether the user was asked to consent (and allowed). */
  consentPageShown: boolean;
}

/** A random value of `length` characters from the URL-safe alphabet (the suite's CreateRandom*Value). */
export function randomValue(length = 32): string {
  let out = '';
  while (out.length < length) out += oidc.randomState();
  return out.slice(0, length);
}

/**
 * Builds the module's authorization request (state, nonce, response_type=code, the scope, PKCE S256:
 * Concord requires PKCE of every client) and drives the browser through it: Concord's login page
 * (the user's email), the partner IdP's (password), until Concord redirects to the redirect URI.
 */
export async function authorize(client: SuiteClient, browser: Browser, options: AuthorizationOptions = {}): Promise<AuthorizationOutcome> {
  const omit = new Set(options.omit ?? []);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = omit.has('state') ? undefined : randomValue(options.stateLength ?? 32);
  const nonce = omit.has('nonce') ? undefined : randomValue(32);
  const params: Record<string, string> = {
    client_id: client.id,
    redirect_uri: options.redirectUri ?? CALLBACK,
    scope: options.scope ?? 'openid',
    ...(omit.has('response_type') ? {} : { response_type: 'code' }),
    ...(state ? { state } : {}),
    ...(nonce ? { nonce } : {}),
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...options.extra,
  };
  const request: AuthorizationRequest = { params, codeVerifier, ...(state ? { state } : {}), ...(nonce ? { nonce } : {}) };
  const redirectUri = params.redirect_uri!;
  const stopAt = (u: URL) => u.href.startsWith(redirectUri) && (u.href.length === redirectUri.length || '?#'.includes(u.href[redirectUri.length]!));
  const endpoint = new URL(String(client.config.serverMetadata().authorization_endpoint));
  const entries = Object.entries(params);
  if (options.reorder) entries.reverse();
  let page: BrowserResponse;
  if (options.method === 'POST') {
    page = await browser.post(endpoint, new URLSearchParams(entries), { stopAt });
  } else {
    const url = new URL(endpoint);
    for (const [k, v] of entries) url.searchParams.set(k, v);
    page = await browser.get(url, { stopAt });
  }
  let loginPageShown = false;
  let consentPageShown = false;
  const concord = new URL(endpoint).origin;
  for (let step = 0; step < 4 && !page.stoppedAt && page.status === 200; step++) {
    if (page.url.origin === concord && page.url.pathname.startsWith('/interaction/') && page.body.includes('name="email"')) {
      // Concord's own login page: the user's email picks the organisation.
      loginPageShown = true;
      const form = parseForm(page.body, '/login');
      page = await browser.post(new URL(form.action, page.url), { ...form.fields, email: String(USER.email) }, { stopAt });
    } else if (page.body.includes('name="password"')) {
      // The partner IdP's login page.
      loginPageShown = true;
      const form = parseForm(page.body, '/login');
      page = await browser.post(new URL(form.action, page.url), { ...form.fields, username: String(USER.email), password: 'demo' }, { stopAt });
    } else if (page.url.origin === concord && /action="[^"]*\/consent"/.test(page.body)) {
      // Concord's consent page (prompt=consent): the user allows (the first form).
      consentPageShown = true;
      const form = parseForm(page.body, '/consent');
      page = await browser.post(new URL(form.action, page.url), form.fields, { stopAt });
    } else {
      break;
    }
  }
  return { request, page, loginPageShown, consentPageShown, ...(page.stoppedAt ? { callback: page.stoppedAt } : {}) };
}

/** The parameters of a redirect to the redirect URI (query: the code flow's default response mode). */
export const callbackParams = (callback: URL) => Object.fromEntries(callback.searchParams);

/** An authorization that must succeed: the callback with a code (and the suite's checks of it). */
export function expectCode(h: Harness, outcome: AuthorizationOutcome): URL {
  assert.ok(outcome.callback, `the authorization did not come back to the client: ${outcome.page.status} at ${outcome.page.url.href}: ${outcome.page.body.slice(0, 300)}`);
  const params = callbackParams(outcome.callback);
  assert.equal(params.error, undefined, `the authorization failed: ${params.error}: ${params.error_description}`);
  // CheckMatchingCallbackParameters, ValidateIssIfPresentInAuthorizationResponse, CheckStateInAuthorizationResponse
  if (params.iss !== undefined) assert.equal(params.iss, h.issuer, 'iss in the authorization response (RFC 9207)');
  assert.equal(params.state, outcome.request.state, 'state in the authorization response');
  assert.ok(params.code, 'no code in the authorization response');
  return outcome.callback;
}

/** The code exchange with openid-client (which checks state, iss, nonce, PKCE and the ID token). */
export async function exchange(client: SuiteClient, callback: URL, request: AuthorizationRequest) {
  return oidc.authorizationCodeGrant(client.config, callback, {
    expectedState: request.state ?? oidc.skipStateCheck,
    ...(request.nonce ? { expectedNonce: request.nonce } : {}),
    pkceCodeVerifier: request.codeVerifier,
    idTokenExpected: true,
  });
}

/** A token endpoint request as the suite makes it (raw, to see status, headers and body). */
export async function tokenRequest(client: SuiteClient, form: Record<string, string>) {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (client.auth === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.id);
    body.set('client_secret', client.secret);
  }
  const res = await fetch(String(client.config.serverMetadata().token_endpoint), { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** The userinfo endpoint the three ways the suite calls it. */
export async function userinfo(h: Harness, accessToken: string, how: 'get' | 'post-header' | 'post-body' = 'get') {
  const url = String(h.metadata.userinfo_endpoint);
  const res =
    how === 'get'
      ? await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } })
      : how === 'post-header'
        ? await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } })
        : await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ access_token: accessToken }) });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', json, text };
}

// --- the suite's conditions -------------------------------------------------------------------

const SKEW_S = 5 * 60;
const nowS = () => Math.floor(Date.now() / 1000);

/** The claims of a JWT (no verification: the checks below verify). */
export const claimsOf = (jwt: string): JWTPayload => decodeJwt(jwt);

/**
 * PerformStandardIdTokenChecks: ValidateIdToken (iss, aud, exp, iat, auth_time, acr, nbf),
 * ValidateIdTokenStandardClaims, ValidateIdTokenNonce, ValidateIdTokenSignature (against the
 * published JWKS), CheckForSubjectInIdToken, EnsureIdTokenUpdatedAtValid; and the configure step's
 * CheckForKeyIdInServerJWKs (the token's kid is in the JWKS).
 */
export async function standardIdTokenChecks(h: Harness, client: SuiteClient, idToken: string, request: { nonce?: string }): Promise<JWTPayload> {
  const header = decodeProtectedHeader(idToken);
  assert.notEqual(header.alg, 'none', 'the ID token is not signed');
  const { payload } = await jwtVerify(idToken, createLocalJWKSet(h.jwks));
  assert.equal(payload.iss, h.issuer, "'iss' is the issuer");
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  assert.ok(aud.includes(client.id), "'aud' contains the client id");
  assert.equal(typeof payload.exp, 'number', "'exp' present");
  assert.ok(payload.exp! >= nowS() - SKEW_S, 'token expired');
  assert.ok(payload.exp! < nowS() + 50 * 365 * 86400, "'exp' not more than 50 years ahead (milliseconds?)");
  assert.equal(typeof payload.iat, 'number', "'iat' present");
  assert.ok(payload.iat! <= nowS() + SKEW_S && payload.iat! >= nowS() - SKEW_S, "'iat' within 5 minutes of now");
  if (payload.auth_time !== undefined) {
    const authTime = payload.auth_time as number;
    assert.ok(authTime <= nowS() + SKEW_S && authTime >= nowS() - 365 * 86400, 'auth_time neither in the future nor over a year old');
  }
  if (payload.acr !== undefined) assert.notEqual(payload.acr, '', 'acr is not an empty string');
  // ValidateIdTokenNonce: the request's nonce, or none when the request had none.
  assert.equal(payload.nonce, request.nonce, 'nonce is the request\'s');
  assert.ok(typeof payload.sub === 'string' && payload.sub.length > 0, "'sub' present");
  validateStandardClaims(payload, 'id_token');
  validateUpdatedAt(payload, 'id_token');
  return payload;
}

const STRING = (v: unknown) => typeof v === 'string' && v.trim() !== '' && v.toLowerCase() !== 'null';
const BOOLEAN = (v: unknown) => typeof v === 'boolean';
const NUMBER = (v: unknown) => typeof v === 'number';
const BIRTHDATE = (v: unknown) => {
  if (!STRING(v)) return false;
  const s = v as string;
  const year = (y: number) => y >= 1850 && y <= new Date().getUTCFullYear();
  if (/^\d{4}$/.test(s)) return year(Number(s));
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y === 0 ? 2000 : y, mo - 1, d));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && (y === 0 || year(y));
};
const ADDRESS_MEMBERS = ['formatted', 'street_address', 'locality', 'region', 'postal_code', 'country'];
const ADDRESS = (v: unknown) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.entries(v).every(([k, x]) => !ADDRESS_MEMBERS.includes(k) || STRING(x));

/** The type of each OIDC Core 5.1 standard claim (the suite's AbstractValidateOpenIdStandardClaims). */
const STANDARD_CLAIM_TYPES: Record<string, (v: unknown) => boolean> = {
  sub: STRING, name: STRING, given_name: STRING, family_name: STRING, middle_name: STRING, nickname: STRING,
  preferred_username: STRING, profile: STRING, picture: STRING, website: STRING, email: STRING, email_verified: BOOLEAN,
  gender: STRING, birthdate: BIRTHDATE, zoneinfo: STRING, locale: STRING, phone_number: STRING, phone_number_verified: BOOLEAN,
  address: ADDRESS, updated_at: NUMBER,
};

/** ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims: every standard claim present has its type. */
export function validateStandardClaims(claims: Record<string, unknown>, where: string): void {
  for (const [name, valid] of Object.entries(STANDARD_CLAIM_TYPES)) {
    if (claims[name] !== undefined) assert.ok(valid(claims[name]), `${where}: ${name} is not valid: ${JSON.stringify(claims[name])}`);
  }
}

/** EnsureIdTokenUpdatedAtValid / EnsureUserInfoUpdatedAtValid: not in the future, not before 1990. */
export function validateUpdatedAt(claims: Record<string, unknown>, where: string): void {
  if (claims.updated_at === undefined) return;
  const at = claims.updated_at as number;
  assert.ok(at <= nowS() + SKEW_S, `${where}: updated_at in the future`);
  assert.ok(at >= Date.UTC(1990, 0, 1) / 1000, `${where}: updated_at before 1990`);
}

/** The claims each scope stands for (the suite's AbstractVerifyScopesReturnedInClaims). */
export const SCOPE_STANDARD_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at', 'preferred_username'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
  offline_access: [],
};

/** VerifyScopesReturnedInUserInfoClaims: the claims of every requested scope are there (a WARNING). */
export function missingScopeClaims(claims: Record<string, unknown>, scope: string): string[] {
  return scope.split(' ').flatMap((s) => SCOPE_STANDARD_CLAIMS[s] ?? []).filter((c) => !(c in claims));
}

/**
 * The userinfo checks of AbstractOIDCCUserInfoTest / AbstractOIDCCReturnedClaimsServerTest:
 * 200, JSON (EnsureContentTypeJson), the standard claims' types, sub, updated_at, and the same sub
 * as the token endpoint's ID token (VerifyUserInfoAndIdTokenInTokenEndpointSameSub).
 */
export function validateUserinfo(response: Awaited<ReturnType<typeof userinfo>>, idTokenSub: string): Record<string, unknown> {
  assert.equal(response.status, 200, `userinfo answered ${response.status}: ${response.text.slice(0, 200)}`);
  assert.match(response.contentType, /^application\/json/, 'userinfo is JSON');
  const body = response.json;
  assert.ok(body, 'userinfo body is a JSON object');
  validateStandardClaims(body, 'userinfo');
  assert.ok(STRING(body.sub), 'userinfo has sub');
  validateUpdatedAt(body, 'userinfo');
  assert.equal(body.sub, idTokenSub, 'userinfo and ID token have the same sub');
  // EnsureMemberValuesInClaimNameReferenceToMemberNamesInClaimSources: no aggregated/distributed claims dangling.
  const names = body._claim_names as Record<string, string> | undefined;
  const sources = body._claim_sources as Record<string, unknown> | undefined;
  if (names) for (const source of Object.values(names)) assert.ok(sources && source in sources, `_claim_names points at a missing source ${source}`);
  return body;
}

/** The error-response checks of performGenericAuthorizationEndpointErrorResponseValidation. */
export function genericAuthorizationError(h: Harness, outcome: AuthorizationOutcome, findings: Findings): Record<string, string> {
  assert.ok(outcome.callback, `expected an error at the redirect URI, got ${outcome.page.status} at ${outcome.page.url.href}`);
  const params = callbackParams(outcome.callback);
  // CheckStateInAuthorizationResponse
  assert.equal(params.state, outcome.request.state, 'state of the error response');
  if (params.iss !== undefined) assert.equal(params.iss, h.issuer, 'iss of the error response');
  // EnsureErrorFromAuthorizationEndpointResponse, RejectAuthCodeInAuthorizationEndpointResponse
  assert.ok(params.error, 'an error');
  assert.equal(params.code, undefined, 'no code with an error');
  const expected = new Set(['error', 'error_description', 'error_uri', 'state', 'session_state', 'iss']);
  const unexpected = Object.keys(params).filter((k) => !expected.has(k));
  findings.expect('CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint', unexpected.length === 0, `unexpected: ${unexpected.join(', ')}`);
  if (params.error_description !== undefined) {
    findings.expect('CheckErrorDescriptionFromAuthorizationEndpointResponseErrorContainsCRLFTAB', !/[\r\n\t]/.test(params.error_description), params.error_description);
    // RFC 6749 4.1.2.1: %x20-21 / %x23-5B / %x5D-7E
    assert.match(params.error_description, /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, 'error_description characters (RFC 6749 4.1.2.1)');
  }
  if (params.error_uri !== undefined) assert.doesNotThrow(() => new URL(params.error_uri!), 'error_uri is a URI');
  return params;
}

/** CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface */
export const USER_INTERFACE_ERRORS = ['interaction_required', 'login_required', 'account_selection_required', 'consent_required'];

/** The Shannon entropy of a string, in bits (the suite's AbstractEnsureMinimumEntropy). */
export function entropyBits(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / s.length) * Math.log2(n / s.length);
  return perChar * s.length;
}

/** The suite's token-endpoint error checks (AbstractOIDCCAuthCodeReuse.checkResponse, RefreshTokenRequestExpectingErrorSteps). */
export function invalidGrant(response: Awaited<ReturnType<typeof tokenRequest>>, findings: Findings): void {
  assert.equal(response.status, 400, `expected 400, got ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(response.json.error, 'invalid_grant');
  const description = response.json.error_description;
  if (typeof description === 'string') {
    findings.expect('CheckErrorDescriptionFromTokenEndpointResponseErrorContainsCRLFTAB', !/[\r\n\t]/.test(description), description);
    assert.match(description, /^[\x20\x21\x23-\x5B\x5D-\x7E]*$/, 'error_description characters');
  }
  if (response.json.error_uri !== undefined) assert.doesNotThrow(() => new URL(String(response.json.error_uri)));
}

/** Waits `ms` (the suite's WaitForOneSecond and the like: auth_time has a resolution of a second). */
export const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
