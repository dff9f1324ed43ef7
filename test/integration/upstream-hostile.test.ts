import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createOidcConnector, UpstreamError, type Connector, type OidcConnectorOptions, type UpstreamErrorCode } from '../../src/upstream/index.ts';
import { startHostileIdp, type HostileIdp, type HostileMode } from '../support/hostile-idp.ts';
import { callbackFrom } from '../support/callbacks.ts';
import { freePort } from '../support/ports.ts';

/**
 * The connector against upstreams that lie, fail, or do not answer. Every refused case must end
 * in an UpstreamError with its stable code, and never in an identity.
 */

const REDIRECT_URI = 'http://127.0.0.1:1/broker/hostile/callback';

function rejectsWith(code: UpstreamErrorCode, reason?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.expose, false);
    if (reason) assert.match(err.message, reason);
    return true;
  };
}

/** beginLogin, follow the upstream's immediate redirect back, completeLogin. */
async function login(connector: Connector) {
  const { url, pending } = await connector.beginLogin({ redirectUri: REDIRECT_URI });
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 302);
  const callback = new URL(res.headers.get('location')!);
  assert.ok(callback.href.startsWith(REDIRECT_URI));
  return connector.completeLogin(callbackFrom(callback), pending);
}

describe('upstream OIDC connector against a hostile IdP', () => {
  let idp: HostileIdp;
  const connectorFor = (extra: Partial<OidcConnectorOptions> = {}) =>
    createOidcConnector({
      participantId: 'hostile',
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      allowInsecureHttp: true,
      timeoutMs: 2000,
      ...extra,
    });

  before(async () => {
    idp = await startHostileIdp({ domain: 'hostile.example', foreignDomain: 'victim.example' });
  });
  after(() => idp.close());

  it("accepts the well-formed answer of mode 'ok'", async () => {
    idp.setMode('ok');
    const identity = await login(connectorFor());
    assert.equal(identity.subject, 'user-1');
    assert.equal(identity.issuer, idp.issuer);
    assert.equal(identity.claims.email, 'user-1@hostile.example');
    assert.deepEqual(identity.amr, ['pwd']);
    assert.equal(identity.acr, 'urn:hostile:pwd');
  });

  // Each refused mode, the code it must yield, and a word of the reason (so it fails for the right reason).
  const refused: Array<[HostileMode, UpstreamErrorCode, RegExp, Partial<OidcConnectorOptions>?]> = [
    ['wrong_iss', 'token_invalid', /"iss"/],
    ['wrong_aud', 'token_invalid', /"aud"/],
    ['wrong_nonce', 'token_invalid', /nonce/],
    ['missing_nonce', 'token_invalid', /nonce/],
    ['expired', 'token_invalid', /"exp"/],
    ['alg_none', 'token_invalid', /"alg"/],
    ['hs256_with_public_key', 'token_invalid', /"alg"/],
    ['unknown_key', 'token_invalid', /key/],
    ['bad_signature', 'token_invalid', /signature/],
    ['future_iat', 'token_invalid', /iat/],
    ['wrong_azp', 'token_invalid', /azp/],
    ['multi_aud', 'token_invalid', /"aud"/],
    ['error_response', 'upstream_error', /access_denied/],
    ['token_error', 'upstream_error', /invalid_grant/],
    ['wrong_callback_iss', 'iss_mismatch', /evil\.example/],
    ['missing_callback_iss', 'iss_mismatch', /no iss/],
    ['userinfo_wrong_sub', 'userinfo_invalid', /sub/, { fetchUserinfo: true }],
    ['no_acceptable_alg', 'discovery_invalid', /no acceptable ID token algorithm/],
  ];
  for (const [mode, code, reason, extra] of refused) {
    it(`refuses mode '${mode}' with ${code}`, async () => {
      idp.setMode(mode);
      await assert.rejects(login(connectorFor(extra)), rejectsWith(code, reason));
    });
  }

  it('refuses alg none and HS256 even when the participant lists them', async () => {
    for (const mode of ['alg_none', 'hs256_with_public_key'] as const) {
      idp.setMode(mode);
      await assert.rejects(login(connectorFor({ allowedAlgorithms: ['RS256', 'HS256', 'none'] })), rejectsWith('token_invalid'));
    }
    idp.setMode('ok');
    await assert.rejects(connectorFor({ allowedAlgorithms: ['HS256', 'none'] }).probe(), rejectsWith('discovery_invalid'));
  });

  it('refuses an ID token in an algorithm the participant does not allow', async () => {
    idp.setMode('ok');
    await assert.rejects(login(connectorFor({ allowedAlgorithms: ['ES256'] })), rejectsWith('discovery_invalid'));
  });

  it("passes 'foreign_email' through unchanged: the connector validates tokens, domains are the mapping's job", async () => {
    idp.setMode('foreign_email');
    const identity = await login(connectorFor());
    assert.equal(identity.claims.email, 'user-1@victim.example');
  });

  it('times out a token endpoint that never answers', async () => {
    idp.setMode('token_hangs');
    await assert.rejects(login(connectorFor({ timeoutMs: 300 })), rejectsWith('upstream_timeout'));
    idp.setMode('ok');
  });

  it('refuses a discovery document whose issuer is not the configured one', async () => {
    idp.setMode('ok');
    // Discovery at {issuer}/tenant-a/.well-known/openid-configuration answers the plain issuer.
    const connector = connectorFor({ issuer: `${idp.issuer}/tenant-a` });
    await assert.rejects(connector.probe(), rejectsWith('discovery_invalid'));
    await assert.rejects(connector.beginLogin({ redirectUri: REDIRECT_URI }), rejectsWith('discovery_invalid'));
  });

  it('refuses an http issuer unless allowInsecureHttp is set', async () => {
    await assert.rejects(connectorFor({ allowInsecureHttp: false }).probe(), rejectsWith('discovery_invalid', /https/));
  });

  it('caches discovery, and keeps the last good document when a refresh fails', async () => {
    idp.setMode('ok');
    const other = await startHostileIdp();
    const count = () => other.requests.filter((r) => r.endsWith('/.well-known/openid-configuration')).length;
    const connector = createOidcConnector({
      participantId: 'other',
      issuer: other.issuer,
      clientId: other.clientId,
      clientSecret: other.clientSecret,
      allowInsecureHttp: true,
      timeoutMs: 1000,
      discoveryTtlSeconds: 0.2,
    });
    await Promise.all([1, 2, 3, 4, 5].map(() => connector.beginLogin({ redirectUri: REDIRECT_URI })));
    await connector.beginLogin({ redirectUri: REDIRECT_URI });
    assert.equal(count(), 1, 'one discovery fetch within the TTL, shared by concurrent logins');
    await new Promise((r) => setTimeout(r, 250));
    await connector.beginLogin({ redirectUri: REDIRECT_URI }); // stale: answered from cache, refreshed behind
    // The refresh runs behind the login: wait for it (a loaded machine may take longer than a fixed pause).
    for (let i = 0; i < 100 && count() < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(count(), 2, 'refreshed after the TTL');
    await other.close();
    await new Promise((r) => setTimeout(r, 250));
    const { url } = await connector.beginLogin({ redirectUri: REDIRECT_URI }); // refresh fails: last good document
    assert.ok(url.startsWith(`${other.issuer}/authorize`));
    await assert.rejects(connector.probe(), rejectsWith('upstream_unreachable'));
  });
});

describe('upstream OIDC connector against an IdP that is down or hangs', () => {
  const base = { participantId: 'down', clientId: 'concord', clientSecret: 'secret', allowInsecureHttp: true };
  let hanging: net.Server;
  const hangingSockets = new Set<net.Socket>();
  let hangingUrl: string;
  let failing: http.Server;
  let failingUrl: string;

  before(async () => {
    // Accepts connections, never answers.
    hanging = net.createServer((socket) => {
      hangingSockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
    failing = http.createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('maintenance');
    });
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', () => r()));
    failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const socket of hangingSockets) socket.destroy();
    await new Promise((r) => hanging.close(r));
    failing.closeAllConnections();
    await new Promise((r) => failing.close(r));
  });

  it('reports a refused connection as upstream_unreachable', async () => {
    const port = await freePort();
    const connector = createOidcConnector({ ...base, issuer: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    await assert.rejects(connector.probe(), rejectsWith('upstream_unreachable', /ECONNREFUSED/));
    await assert.rejects(connector.beginLogin({ redirectUri: REDIRECT_URI }), rejectsWith('upstream_unreachable'));
    await assert.rejects(connector.logoutUrl({ postLogoutRedirectUri: REDIRECT_URI, state: 's' }), rejectsWith('upstream_unreachable'));
  });

  it('reports an unresolvable host as upstream_unreachable', async () => {
    const connector = createOidcConnector({ ...base, issuer: 'http://idp.invalid', timeoutMs: 3000 });
    await assert.rejects(connector.probe(), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      // Some sandboxes time DNS out instead of failing it.
      assert.ok(err.code === 'upstream_unreachable' || err.code === 'upstream_timeout', err.code);
      return true;
    });
  });

  it('reports a 5xx on discovery as upstream_unreachable', async () => {
    const connector = createOidcConnector({ ...base, issuer: failingUrl });
    await assert.rejects(connector.probe(), rejectsWith('upstream_unreachable', /503/));
  });

  it('times out an upstream that accepts and never answers', async () => {
    const connector = createOidcConnector({ ...base, issuer: hangingUrl, timeoutMs: 300 });
    await assert.rejects(connector.probe(), rejectsWith('upstream_timeout'));
    await assert.rejects(connector.beginLogin({ redirectUri: REDIRECT_URI }), rejectsWith('upstream_timeout'));
  });
});
