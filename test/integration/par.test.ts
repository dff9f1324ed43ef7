import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { ClientSchema } from '../../src/config/index.ts';
import { brokeredLogin, exchange, RP, startFederation, type Federation } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { ADMIN_TOKEN, assertNoCodeAtRp } from './broker-helpers.ts';

/*
 * Issue 12 item 3: pushed authorization requests (RFC 9126) on purpose. Advertised, a whole
 * brokered login through them with openid-client as the RP, the same edge checks as /auth, and a
 * client that must use them (`require_pushed_authorization_requests`) is held to it. The per-source
 * budget and the credential-failure limits of /request are in limits-routes.test.ts.
 */

const PAR_ONLY = { ...RP, client_id: 'rp-par', client_secret: 'rp-par-secret-0123456789abcdef', require_pushed_authorization_requests: true };

describe('pushed authorization requests', () => {
  let fed: Federation;
  let parOnly: oidc.Configuration;

  before(async () => {
    fed = await startFederation({ clients: [RP, PAR_ONLY], settings: { upstream: { healthInterval: 0 } } });
    parOnly = await oidc.discovery(new URL(fed.concord.issuer), PAR_ONLY.client_id, PAR_ONLY.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(() => fed.close());

  async function parAuthorization(config: oidc.Configuration, extra: Record<string, string> = {}) {
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: RP.redirect_uris[0]!,
      scope: 'openid email profile',
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      ...extra,
    });
    return { url, state, nonce, codeVerifier };
  }

  it('is advertised in discovery, not required deployment-wide', () => {
    const metadata = fed.rp.serverMetadata();
    assert.equal(metadata.pushed_authorization_request_endpoint, `${fed.concord.issuer}/request`);
    assert.notEqual(metadata.require_pushed_authorization_requests, true);
  });

  it('carries a whole brokered login: the pushed login_hint picks the participant, the code exchange checks everything', async () => {
    const auth = await parAuthorization(parOnly, { login_hint: 'alice@acme.example' });
    assert.equal(auth.url.searchParams.get('client_id'), PAR_ONLY.client_id);
    assert.match(auth.url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);
    assert.equal(auth.url.searchParams.get('login_hint'), null, 'the parameters travel in the back channel');
    const callback = await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' });
    const tokens = await exchange(parOnly, callback, auth);
    assert.equal(tokens.claims()?.email, 'alice@acme.example');
  });

  it('holds a client with require_pushed_authorization_requests to it: plain /auth is refused', async () => {
    const browser = new Browser();
    const url = oidc.buildAuthorizationUrl(parOnly, {
      redirect_uri: RP.redirect_uris[0]!,
      scope: 'openid',
      state: 'plain',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await browser.get(url, { stopAt: (u) => u.href.startsWith(RP.redirect_uris[0]!) });
    const answer = page.stoppedAt ?? page.url;
    assert.equal(answer.searchParams.get('error'), 'invalid_request', `answered ${page.status} at ${answer.href}`);
    assert.match(answer.searchParams.get('error_description') ?? '', /pushed authorization request/i);
    assertNoCodeAtRp(browser);
    // A client without the flag may still use either.
    const plain = await parAuthorization(fed.rp);
    assert.match(plain.url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);
  });

  it('gets the edge checks of /auth: an oversized login_hint is refused before anything is stored', async () => {
    await assert.rejects(parAuthorization(fed.rp, { login_hint: `${'x'.repeat(3000)}@acme.example` }), (err: { error?: string; error_description?: string }) => {
      assert.equal(err.error, 'invalid_request');
      assert.match(err.error_description ?? '', /login_hint is longer than 512/);
      return true;
    });
  });

  it('is a client setting the config schema and the admin API accept', async () => {
    assert.equal(ClientSchema.parse({ client_id: 'x', client_secret: 'x-secret-0123456789', redirect_uris: ['https://x.example/cb'], require_pushed_authorization_requests: true }).require_pushed_authorization_requests, true);
    const res = await fetch(`${fed.concord.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'svc-par', client_secret: 'svc-par-secret-0123456789', redirect_uris: ['https://svc.example/cb'], require_pushed_authorization_requests: true }),
    });
    assert.equal(res.status, 201);
    assert.equal(((await res.json()) as { require_pushed_authorization_requests: boolean }).require_pushed_authorization_requests, true);
    const bad = await fetch(`${fed.concord.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'svc-bad', client_secret: 'svc-bad-secret-0123456789', redirect_uris: ['https://svc.example/cb'], require_pushed_authorization_requests: 'yes' }),
    });
    assert.equal(bad.status, 422);
  });
});
