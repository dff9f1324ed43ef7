import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEMO_PASSWORD, startPartnerIdp, type PartnerIdp } from '../../demo/partner-idp.ts';
import { createOidcConnector, UpstreamError, type Connector, type OidcConnectorOptions, type OidcLogout, type PendingOidcLogin } from '../../src/upstream/index.ts';
import { callbackFrom } from '../support/callbacks.ts';
import { Browser, parseForm } from '../support/http-client.ts';

/**
 * The OIDC connector against a real oidc-provider (the demo partner IdP), driven over HTTP with a
 * cookie jar the way a browser would: beginLogin -> upstream login page -> POST credentials ->
 * redirects -> our callback URL -> completeLogin.
 */

const REDIRECT_URI = 'http://127.0.0.1:1/broker/acme/callback'; // never requested: the browser stops before it
const POST_LOGOUT = 'http://127.0.0.1:1/logged-out';
const CLIENT = { client_id: 'concord', client_secret: 'acme-client-secret-0123456789' };

function rejectsWith(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

/** Signs in at the partner IdP; returns the callback URL it redirects to (not requested). */
async function signIn(browser: Browser, authUrl: string, username: string, password: string): Promise<URL> {
  const page = await browser.get(authUrl, { stopAt: (u) => u.href.startsWith(REDIRECT_URI) });
  assert.equal(page.status, 200, 'the login page');
  const form = parseForm(page.body, '/login');
  const done = await browser.post(new URL(form.action, page.url), { ...form.fields, username, password }, { stopAt: (u) => u.href.startsWith(REDIRECT_URI) });
  assert.ok(done.stoppedAt, `expected a redirect to the callback, got ${done.status} at ${done.url.href}`);
  return done.stoppedAt;
}

describe('upstream OIDC connector against the demo partner IdP', () => {
  let idp: PartnerIdp;
  let logs: Array<{ obj: Record<string, unknown>; msg?: string }>;
  let connector: Connector;
  const make = (extra: Partial<OidcConnectorOptions> = {}) =>
    createOidcConnector({
      participantId: 'acme',
      issuer: idp.issuer,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
      allowInsecureHttp: true,
      timeoutMs: 3000,
      logger: { debug: (obj, msg) => logs.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }) },
      ...extra,
    });

  before(async () => {
    idp = await startPartnerIdp({
      name: 'Acme',
      domain: 'acme.example',
      clients: [{ ...CLIENT, redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT] }],
      extraClaims: { department: 'R&D' },
    });
    logs = [];
    connector = make();
  });
  after(() => idp.close());

  it('probes discovery and the JWKS', async () => {
    const info = await connector.probe();
    assert.equal(info.issuer, idp.issuer);
    assert.deepEqual(info.algorithms, ['RS256']);
    assert.equal(info.endpoints.authorization, `${idp.issuer}/auth`);
    assert.ok(info.endpoints.token);
    assert.ok(info.endpoints.jwks);
    assert.ok(info.endpoints.endSession);
  });

  it('builds an authorization URL with state, nonce and PKCE S256', async () => {
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI, params: { login_hint: 'alice@acme.example' } });
    const u = new URL(url);
    assert.equal(u.origin + u.pathname, `${idp.issuer}/auth`);
    const p = u.searchParams;
    assert.equal(p.get('response_type'), 'code');
    assert.equal(p.get('client_id'), 'concord');
    assert.equal(p.get('redirect_uri'), REDIRECT_URI);
    assert.equal(p.get('scope'), 'openid email profile');
    assert.equal(p.get('state'), pending.state);
    assert.equal(p.get('nonce'), (pending as PendingOidcLogin).nonce);
    assert.equal(p.get('code_challenge_method'), 'S256');
    assert.ok(p.get('code_challenge') && p.get('code_challenge') !== (pending as PendingOidcLogin).codeVerifier);
    assert.equal(p.get('login_hint'), 'alice@acme.example');
    assert.deepEqual(JSON.parse(JSON.stringify(pending)), pending, 'pending is JSON-serialisable');
    const again = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    assert.notEqual(again.pending.state, pending.state);
    assert.notEqual((again.pending as PendingOidcLogin).nonce, (pending as PendingOidcLogin).nonce);
    assert.notEqual((again.pending as PendingOidcLogin).codeVerifier, (pending as PendingOidcLogin).codeVerifier);
  });

  it('completes a login: subject, claims, amr and acr', async () => {
    const browser = new Browser();
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI, params: { login_hint: 'alice@acme.example' } });
    const callback = await signIn(browser, url, 'alice@acme.example', DEMO_PASSWORD);
    assert.equal(callback.searchParams.get('iss'), idp.issuer, 'RFC 9207 iss in the response');

    // Another connector instance (another Concord instance) finishes it from the stored pending.
    const stored = JSON.parse(JSON.stringify(pending));
    const identity = await make().completeLogin(callbackFrom(callback), stored);
    const alice = idp.users.find((u) => u.email === 'alice@acme.example')!;
    assert.equal(identity.issuer, idp.issuer);
    assert.equal(identity.subject, alice.sub);
    assert.equal(identity.claims.email, 'alice@acme.example');
    assert.equal(identity.claims.email_verified, true);
    assert.equal(identity.claims.upn, 'alice@acme.example');
    assert.deepEqual(identity.claims.groups, ['engineering', 'all-staff']);
    assert.equal(identity.claims.department, 'R&D', 'extraClaims reach the ID token');
    assert.equal(identity.claims.password, undefined);
    assert.deepEqual(identity.amr, ['pwd']);
    assert.equal(identity.acr, 'urn:concord:demo:password');
    assert.equal(identity.logout?.protocol, 'oidc');
    assert.equal(identity.logout.idTokenHint.split('.').length, 3, 'the ID token is kept as id_token_hint for logout');
    assert.equal(typeof identity.authTime, 'number');
    assert.ok(identity.durationMs >= 0 && identity.durationMs < 3000);
  });

  it('ends the timeout of each call with the call: no timer left running, none of openid-client\'s', async () => {
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const callback = await signIn(new Browser(), url, 'alice@acme.example', DEMO_PASSWORD);
    // AbortSignal.timeout's timer runs its full course after the call it guarded, then aborts a
    // signal nobody listens to any more (a DOMException and an abort event per call, for nothing).
    const armed: AbortSignal[] = [];
    const timeoutSignal = AbortSignal.timeout.bind(AbortSignal);
    AbortSignal.timeout = (ms: number) => {
      const signal = timeoutSignal(ms);
      armed.push(signal);
      return signal;
    };
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    try {
      await connector.completeLogin(callbackFrom(callback), pending);
    } finally {
      AbortSignal.timeout = timeoutSignal;
    }
    assert.equal(armed.length, 0, 'no AbortSignal.timeout per call');
    assert.equal(timers(), before, 'the timeout of each call is cleared when the call ends');
  });

  it('carries nested custom claims (Keycloak-style realm_access) and fetches userinfo when asked', async () => {
    const globex = await startPartnerIdp({
      name: 'Globex',
      domain: 'globex.example',
      clients: [{ ...CLIENT, redirect_uris: [REDIRECT_URI] }],
      idTokenSigningAlg: 'ES256',
    });
    try {
      const c = createOidcConnector({ participantId: 'globex', issuer: globex.issuer, clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, allowInsecureHttp: true, fetchUserinfo: true });
      const { url, pending } = await c.beginLogin({ redirectUri: REDIRECT_URI });
      const callback = await signIn(new Browser(), url, 'bob', DEMO_PASSWORD); // by username
      const identity = await c.completeLogin(callbackFrom(callback), pending);
      assert.equal(identity.claims.email, 'bob@globex.example');
      assert.deepEqual(identity.claims.realm_access, { roles: ['sales', 'offline_access', 'uma_authorization'] });
      assert.deepEqual(identity.claims.groups, ['/globex/sales', '/globex/staff']);
      assert.equal(identity.claims.preferred_username, 'bob');
    } finally {
      await globex.close();
    }
  });

  it('the partner IdP requires PKCE', async () => {
    const { url } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const bare = new URL(url);
    bare.searchParams.delete('code_challenge');
    bare.searchParams.delete('code_challenge_method');
    const res = await new Browser().get(bare, { stopAt: (u) => u.href.startsWith(REDIRECT_URI) });
    assert.ok(res.stoppedAt, 'the IdP answers the client with an error');
    assert.equal(res.stoppedAt.searchParams.get('error'), 'invalid_request');
    assert.match(res.stoppedAt.searchParams.get('error_description') ?? '', /PKCE/);
  });

  it('refuses a wrong password at the IdP (the form comes back, no redirect)', async () => {
    const browser = new Browser();
    const { url } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const page = await browser.get(url);
    const form = parseForm(page.body, '/login');
    const res = await browser.post(new URL(form.action, page.url), { ...form.fields, username: 'alice@acme.example', password: 'nope' });
    assert.equal(res.status, 401);
    assert.match(res.body, /Wrong email or password/);
    assert.equal(res.stoppedAt, undefined);
  });

  it('refuses a callback whose state is not the pending one (and makes no token request)', async () => {
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const callback = await signIn(new Browser(), url, 'alice@acme.example', DEMO_PASSWORD);
    const other = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const before = logs.filter((l) => l.obj.endpoint === 'token').length;
    await assert.rejects(connector.completeLogin(callbackFrom(callback), other.pending), rejectsWith('state_mismatch'));
    const tampered = new URL(callback);
    tampered.searchParams.set('state', 'x'.repeat(pending.state.length));
    await assert.rejects(connector.completeLogin(callbackFrom(tampered), pending), rejectsWith('state_mismatch'));
    const noState = new URL(callback);
    noState.searchParams.delete('state');
    await assert.rejects(connector.completeLogin(callbackFrom(noState), pending), rejectsWith('state_mismatch'));
    assert.equal(logs.filter((l) => l.obj.endpoint === 'token').length, before, 'no code exchange was attempted');
    // The untouched callback still works once.
    const identity = await connector.completeLogin(callbackFrom(callback), pending);
    assert.equal(identity.claims.email, 'alice@acme.example');
    // A replayed code is refused by the IdP.
    await assert.rejects(connector.completeLogin(callbackFrom(callback), pending), rejectsWith('upstream_error'));
  });

  it('turns "Cancel" at the IdP into upstream_error (access_denied)', async () => {
    const browser = new Browser();
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const page = await browser.get(url);
    const cancel = parseForm(page.body, '/abort');
    const done = await browser.post(new URL(cancel.action, page.url), cancel.fields, { stopAt: (u) => u.href.startsWith(REDIRECT_URI) });
    assert.ok(done.stoppedAt);
    await assert.rejects(connector.completeLogin(callbackFrom(done.stoppedAt), pending), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'upstream_error');
      assert.equal(err.upstreamError, 'access_denied');
      return true;
    });
  });

  it('refuses a callback iss that is not the upstream, and a missing one when advertised', async () => {
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const callback = await signIn(new Browser(), url, 'alice@acme.example', DEMO_PASSWORD);
    const wrong = new URL(callback);
    wrong.searchParams.set('iss', 'https://evil.example');
    await assert.rejects(connector.completeLogin(callbackFrom(wrong), pending), rejectsWith('iss_mismatch'));
    const missing = new URL(callback);
    missing.searchParams.delete('iss');
    await assert.rejects(connector.completeLogin(callbackFrom(missing), pending), rejectsWith('iss_mismatch'));
  });

  it('builds the end-session URL of the partner IdP', async () => {
    const url = await connector.logoutUrl({ logout: { protocol: 'oidc', idTokenHint: 'a.b.c' }, postLogoutRedirectUri: POST_LOGOUT, state: 's1' });
    assert.ok(url);
    const u = new URL(url);
    assert.equal(u.origin + u.pathname, `${idp.issuer}/session/end`);
    assert.equal(u.searchParams.get('post_logout_redirect_uri'), POST_LOGOUT);
    assert.equal(u.searchParams.get('id_token_hint'), 'a.b.c');
    assert.equal(u.searchParams.get('client_id'), 'concord');
    assert.equal(u.searchParams.get('state'), 's1');
  });

  it('logs each upstream call with endpoint and duration, and never a token, code or secret', async () => {
    const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
    const callback = await signIn(new Browser(), url, 'alice@acme.example', DEMO_PASSWORD);
    const identity = await connector.completeLogin(callbackFrom(callback), pending);
    const calls = logs.filter((l) => l.msg === 'upstream call');
    assert.ok(calls.some((l) => l.obj.endpoint === 'discovery'));
    assert.ok(calls.some((l) => l.obj.endpoint === 'token' && typeof l.obj.durationMs === 'number' && l.obj.status === 200));
    const text = JSON.stringify(logs);
    for (const secret of [CLIENT.client_secret, (identity.logout as OidcLogout).idTokenHint, callback.searchParams.get('code')!, (pending as PendingOidcLogin).codeVerifier, (pending as PendingOidcLogin).nonce, pending.state]) {
      assert.ok(!text.includes(secret), 'a secret leaked into the logs');
    }
  });
});

/**
 * Endpoints come from the IdP's discovery document; without allowPrivateNetwork only public
 * addresses are called. A loopback listener stands in for the private service a partner could aim
 * Concord at: it counts the connections it gets.
 */
describe('OIDC connector: private addresses', () => {
  let server: http.Server;
  let connections = 0;
  let port = 0;
  before(async () => {
    server = http.createServer((_req, res) => res.end('{}'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const connector = (extra: Partial<OidcConnectorOptions>) =>
    createOidcConnector({ participantId: 'inside', issuer: `https://127.0.0.1:${port}`, clientId: 'concord', clientSecret: 'x'.repeat(20), timeoutMs: 2000, ...extra });

  it('does not call an IdP on a loopback or private address, and says why', async () => {
    const before = connections;
    await assert.rejects(connector({}).probe(), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'discovery_invalid');
      assert.match(err.message, /127\.0\.0\.1.*not a public address/);
      return true;
    });
    await assert.rejects(connector({ issuer: `https://localhost:${port}` }).probe(), rejectsWith('discovery_invalid'));
    assert.equal(connections, before, 'no connection was made');
  });

  it('calls it when the participant allows its private network', async () => {
    const before = connections;
    // The listener speaks http, so the https call fails; what matters is that it was made.
    await assert.rejects(connector({ allowPrivateNetwork: true }).probe(), rejectsWith('upstream_unreachable'));
    assert.ok(connections > before, 'the call reached the listener');
  });
});
