import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import Koa from 'koa';
import * as oidc from 'openid-client';
import { concordExpress, concordKoa, createVerifier, type ConcordState } from '../../packages/verify/src/index.ts';
import { dpopKeys as newKeyPair, dpopProof as proof, type DPoPKeys as KeyPair } from '../support/dpop-proof.ts';
import { Browser } from '../support/http-client.ts';
import { authorizationRequest, brokeredLogin, RP, startFederation, type Federation } from '../support/federation.ts';

/*
 * DPoP (RFC 9449) end to end: openid-client's DPoP support as the client, a real Concord after a
 * real brokered login, and two services protected by concord-verify's Koa and Express middleware.
 * Proofs that must be refused are made here with jose, with the same key openid-client uses.
 */

const PUBLIC = { client_id: 'public-rp', token_endpoint_auth_method: 'none', redirect_uris: RP.redirect_uris, grant_types: ['authorization_code', 'refresh_token'], skip_consent: true };
const BOUND = { ...RP, client_id: 'bound-rp', client_secret: 'bound-rp-secret-0123456789', dpop_bound_access_tokens: true };

async function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Answer {
  status: number;
  challenge: string;
  body: string;
}

async function call(url: string, headers: Record<string, string>, method = 'GET'): Promise<Answer> {
  const res = await fetch(url, { method, headers });
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '', body: await res.text() };
}

/** A signed-in session's tokens, obtained with DPoP (openid-client's handle for `keys`). */
async function signedInWithDPoP(fed: Federation, config: oidc.Configuration, keys: KeyPair) {
  const DPoP = oidc.getDPoPHandle(config, keys);
  const auth = await authorizationRequest(config);
  const callback = await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' });
  const tokens = await oidc.authorizationCodeGrant(
    config,
    callback,
    { expectedState: auth.state, expectedNonce: auth.nonce, pkceCodeVerifier: auth.codeVerifier, idTokenExpected: true },
    undefined,
    { DPoP },
  );
  return { tokens, DPoP, sub: tokens.claims()!.sub };
}

describe('DPoP (RFC 9449): bound tokens stay bound', () => {
  let fed: Federation;
  let publicRp: oidc.Configuration;
  let boundRp: oidc.Configuration;
  const services: Record<'koa' | 'express', { url: string; close(): Promise<void> }> = {} as never;

  before(async () => {
    fed = await startFederation({ clients: [RP, PUBLIC, BOUND] });
    const issuer = new URL(fed.concord.issuer);
    const insecure = { execute: [oidc.allowInsecureRequests] };
    publicRp = await oidc.discovery(issuer, PUBLIC.client_id, undefined, oidc.None(), insecure);
    boundRp = await oidc.discovery(issuer, BOUND.client_id, BOUND.client_secret, undefined, insecure);
    // Tokens without `resource` are for Concord itself (aud = issuer): the services accept that audience.
    const verify = createVerifier({ issuer: fed.concord.issuer, audience: fed.concord.issuer });
    const koa = new Koa<ConcordState>();
    koa.use(concordKoa(verify, { realm: 'orders' }));
    koa.use((ctx) => {
      ctx.body = { sub: ctx.state.concord.sub, jkt: ctx.state.concord.cnf?.jkt };
    });
    services.koa = await listen(koa.callback());
    const app = express();
    app.use(concordExpress(verify, { realm: 'orders' }));
    app.all('/orders', (req, res) => {
      res.json({ sub: req.concord!.sub, jkt: req.concord!.cnf?.jkt });
    });
    services.express = await listen(app);
  });
  after(async () => {
    await Promise.all(Object.values(services).map((s) => s.close()));
    await fed?.close();
  });

  it('advertises DPoP in discovery: the proof algorithms Concord and concord-verify accept', async () => {
    const metadata = fed.rp.serverMetadata();
    assert.deepEqual(metadata.dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256']);
  });

  it('binds the access token to the client key (cnf.jkt) and refuses it as a Bearer token at /me', async () => {
    const keys = await newKeyPair();
    const { tokens, DPoP, sub } = await signedInWithDPoP(fed, fed.rp, keys);
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    const { cnf } = decodeJwt(tokens.access_token) as { cnf?: { jkt?: string } };
    assert.equal(cnf?.jkt, await calculateJwkThumbprint(await exportJWK(keys.publicKey)), "cnf.jkt is the client key's thumbprint");

    // With its proof (openid-client's handle): Concord's userinfo answers.
    const claims = await oidc.fetchUserInfo(fed.rp, tokens.access_token, sub, { DPoP });
    assert.equal(claims.email, 'alice@acme.example');

    // As a bearer token (what a thief without the key can do): refused, with a DPoP challenge.
    const bearer = await call(`${fed.concord.issuer}/me`, { authorization: `Bearer ${tokens.access_token}` });
    assert.equal(bearer.status, 401);
    assert.match(bearer.challenge, /^DPoP realm="[^"]+", error="invalid_token", error_description="[^"]*DPoP-bound[^"]*", algs="ES256 /);

    // A replayed proof, a proof for another method, or signed by another key: refused at /me too.
    const me = `${fed.concord.issuer}/me`;
    const once = await proof(keys, 'GET', me, tokens.access_token);
    assert.equal((await call(me, { authorization: `DPoP ${tokens.access_token}`, dpop: once })).status, 200);
    const replayed = await call(me, { authorization: `DPoP ${tokens.access_token}`, dpop: once });
    assert.equal(replayed.status, 401);
    assert.match(replayed.challenge, /^DPoP .*error="invalid_dpop_proof"/);
    const other = await newKeyPair();
    for (const dpop of [await proof(keys, 'POST', me, tokens.access_token), await proof(other, 'GET', me, tokens.access_token)]) {
      const refused = await call(me, { authorization: `DPoP ${tokens.access_token}`, dpop });
      assert.equal(refused.status, 401);
      assert.match(refused.challenge, /error="invalid_dpop_proof"/);
    }
  });

  for (const framework of ['koa', 'express'] as const) {
    it(`${framework} middleware: a bound token passes with its proof, and only with a valid one`, async () => {
      const keys = await newKeyPair();
      const { tokens, DPoP, sub } = await signedInWithDPoP(fed, fed.rp, keys);
      const at = tokens.access_token;
      const url = `${services[framework].url}/orders`;

      // openid-client's own request: the DPoP scheme and a proof for this URL and method.
      const response = await oidc.fetchProtectedResource(fed.rp, at, new URL(`${url}?page=2`), 'POST', undefined, undefined, { DPoP });
      assert.equal(response.status, 200, await response.clone().text());
      const body = (await response.json()) as { sub: string; jkt: string };
      assert.equal(body.sub, sub);
      assert.equal(body.jkt, (decodeJwt(at) as { cnf: { jkt: string } }).cnf.jkt);

      // As a bearer token: refused, the challenge says DPoP.
      const bearer = await call(url, { authorization: `Bearer ${at}` });
      assert.equal(bearer.status, 401);
      assert.match(bearer.challenge, /^DPoP realm="orders", error="invalid_token", error_description="[^"]+", algs="ES256 EdDSA Ed25519 PS256 RS256"$/);
      assert.equal(JSON.parse(bearer.body).error, 'invalid_token');

      // A valid hand-made proof passes (query and fragment are not part of htu); its replay does not.
      const valid = await proof(keys, 'GET', `${url}#ignored`, at);
      assert.equal((await call(`${url}?q=1`, { authorization: `DPoP ${at}`, dpop: valid })).status, 200);
      const replay = await call(url, { authorization: `DPoP ${at}`, dpop: valid });
      assert.equal(replay.status, 401);
      assert.match(replay.challenge, /^DPoP realm="orders", error="invalid_dpop_proof", error_description="[^"]*used before[^"]*", algs="/);

      const other = await newKeyPair();
      const refusals: Array<[string, string, RegExp]> = [
        ['no proof', '', /a DPoP proof is required/],
        ['another URL', await proof(keys, 'GET', `${services[framework].url}/invoices`, at), /not for this request/],
        ['another method', await proof(keys, 'DELETE', url, at), /not for this request/],
        ['another key (its own jwk)', await proof(other, 'GET', url, at), /not for this request/],
        ['signed by another key than its jwk', await proof(keys, 'GET', url, at, { signWith: other }), /not signed by its own public key/],
        ['a stale iat', await proof(keys, 'GET', url, at, { claims: { iat: Math.floor(Date.now() / 1000) - 3600 } }), /not issued recently enough/],
        ['an iat in the future', await proof(keys, 'GET', url, at, { claims: { iat: Math.floor(Date.now() / 1000) + 3600 } }), /not issued recently enough/],
        ['a wrong ath', await proof(keys, 'GET', url, `${at}x`), /not for this request/],
        ['no ath', await proof(keys, 'GET', url, undefined), /not for this request/],
      ];
      for (const [what, dpop, description] of refusals) {
        const refused = await call(url, dpop === '' ? { authorization: `DPoP ${at}` } : { authorization: `DPoP ${at}`, dpop });
        assert.equal(refused.status, 401, what);
        assert.match(refused.challenge, /^DPoP realm="orders", error="invalid_dpop_proof"/, what);
        assert.match(refused.challenge, description, what);
      }

      // A bearer token presented with the DPoP scheme is refused too: it is not bound.
      const plain = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
      assert.equal(plain.token_type.toLowerCase(), 'bearer', 'a confidential client refreshing without DPoP gets a bearer token');
      const unbound = await call(url, { authorization: `DPoP ${plain.access_token}`, dpop: await proof(keys, 'GET', url, plain.access_token) });
      assert.equal(unbound.status, 401);
      assert.match(unbound.challenge, /^Bearer realm="orders", error="invalid_token", error_description="[^"]*not DPoP-bound/);
      assert.equal((await call(url, { authorization: `Bearer ${plain.access_token}` })).status, 200);
    });
  }

  it('refuses a token request without a proof from a dpop_bound_access_tokens client', async () => {
    const auth = await authorizationRequest(boundRp);
    const callback = await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' });
    const checks = { expectedState: auth.state, expectedNonce: auth.nonce, pkceCodeVerifier: auth.codeVerifier, idTokenExpected: true };
    await assert.rejects(oidc.authorizationCodeGrant(boundRp, callback, checks), { error: 'invalid_dpop_proof' });
    const metrics = await (await fetch(`${fed.concord.adminUrl}/metrics`)).text();
    assert.match(metrics, /^concord_token_errors_total\{client="bound-rp",error="invalid_dpop_proof"\} [1-9]/m, 'counted as answered');
    // With a proof, the same client's login goes through and its token is bound.
    const keys = await newKeyPair();
    const { tokens } = await signedInWithDPoP(fed, boundRp, keys);
    assert.ok((decodeJwt(tokens.access_token) as { cnf?: { jkt?: string } }).cnf?.jkt);
    // Its refresh without a proof is refused as well; a wrong refresh token stays invalid_grant (a guess).
    await assert.rejects(oidc.refreshTokenGrant(boundRp, tokens.refresh_token!), { error: 'invalid_dpop_proof' });
    await assert.rejects(oidc.refreshTokenGrant(boundRp, `${tokens.refresh_token!}x`), { error: 'invalid_grant' });
  });

  it("binds a public client's refresh token to its key: a refresh with another key is refused", async () => {
    const keys = await newKeyPair();
    const { tokens } = await signedInWithDPoP(fed, publicRp, keys);
    assert.ok(tokens.refresh_token);
    const thief = oidc.getDPoPHandle(publicRp, await newKeyPair());
    await assert.rejects(oidc.refreshTokenGrant(publicRp, tokens.refresh_token!, undefined, { DPoP: thief }), (err: oidc.ResponseBodyError) => {
      assert.equal(err.error, 'invalid_grant');
      return true;
    });
    await assert.rejects(oidc.refreshTokenGrant(publicRp, tokens.refresh_token!), { error: 'invalid_grant' }, 'nor without a proof');
    // The key holder still can; the new access token is bound to the same key.
    const refreshed = await oidc.refreshTokenGrant(publicRp, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(publicRp, keys) });
    assert.equal(
      (decodeJwt(refreshed.access_token) as { cnf: { jkt: string } }).cnf.jkt,
      (decodeJwt(tokens.access_token) as { cnf: { jkt: string } }).cnf.jkt,
    );
  });
});

describe('DPoP nonces required (tokens.dpop.requireNonce)', () => {
  let fed: Federation;

  before(async () => {
    fed = await startFederation({ settings: { tokens: { dpop: { requireNonce: true } } } });
  });
  after(() => fed?.close());

  it("/token and /me ask for Concord's nonce (use_dpop_nonce), and openid-client's retry with it passes", async () => {
    const keys = await newKeyPair();
    // openid-client retries a use_dpop_nonce answer once with the DPoP-Nonce it got (RFC 9449 §8).
    const { tokens, DPoP, sub } = await signedInWithDPoP(fed, fed.rp, keys);
    assert.ok((decodeJwt(tokens.access_token) as { cnf?: { jkt?: string } }).cnf?.jkt);
    assert.equal((await oidc.fetchUserInfo(fed.rp, tokens.access_token, sub, { DPoP })).sub, sub);

    const me = `${fed.concord.issuer}/me`;
    const authorization = `DPoP ${tokens.access_token}`;
    const first = await fetch(me, { headers: { authorization, dpop: await proof(keys, 'GET', me, tokens.access_token) } });
    assert.equal(first.status, 401);
    assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP realm="[^"]+", error="use_dpop_nonce", error_description="[^"]+", algs="/);
    const nonce = first.headers.get('dpop-nonce');
    assert.ok(nonce, 'a DPoP-Nonce to retry with');
    const second = await fetch(me, { headers: { authorization, dpop: await proof(keys, 'GET', me, tokens.access_token, { claims: { nonce } }) } });
    assert.equal(second.status, 200, await second.clone().text());
    const forged = await fetch(me, { headers: { authorization, dpop: await proof(keys, 'GET', me, tokens.access_token, { claims: { nonce: `${nonce}x` } }) } });
    assert.equal(forged.status, 401);
    assert.match(forged.headers.get('www-authenticate') ?? '', /error="use_dpop_nonce"/);
  });
});
