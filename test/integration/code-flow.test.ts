import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { createVerifier } from '../../packages/verify/src/index.ts';
import { Browser } from '../support/http-client.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';

const isOAuthError = (code: string) => (err: unknown) => {
  assert.equal((err as oidc.ResponseBodyError).error, code, (err as Error).message);
  return true;
};

/** The authorization code flow end to end, with openid-client as the relying party. */
describe('authorization code flow with PKCE', () => {
  let fed: Federation;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  before(async () => {
    fed = await startFederation({
      settings: { resourceServers: [{ audience: 'https://short-lived.example', scopes: ['read'], accessTokenTtl: 1 }] },
      clients: [RP, { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'], redirect_uris: [] }],
    });
    jwks = createRemoteJWKSet(new URL(`${fed.concord.issuer}/jwks`));
  });
  after(() => fed.close());

  it('issues an ID token and a JWT access token, both verifiable offline', async () => {
    const { tokens, auth } = await signedIn(fed, 'alice@acme.example');
    // A client that names no id_token_signed_response_alg gets RS256 (OIDC Registration 2).
    const id = await jwtVerify(tokens.id_token!, jwks, { issuer: fed.concord.issuer, audience: RP.client_id, algorithms: ['RS256'] });
    assert.equal(id.payload.nonce, auth.nonce);
    assert.equal(id.payload.exp! - id.payload.iat!, 300);
    assert.equal(id.payload.sub, 'acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001');
    // Access tokens: keys.accessTokenAlgorithm (default ES256), whatever the client's ID tokens use.
    const at = await jwtVerify(tokens.access_token, jwks, { issuer: fed.concord.issuer, audience: fed.concord.issuer, typ: 'at+jwt', algorithms: ['ES256'] });
    assert.equal(at.payload.client_id, RP.client_id);
    assert.equal(at.payload.exp! - at.payload.iat!, 300);
    assert.match(String(at.payload.scope), /\bopenid\b/);
    assert.ok(tokens.refresh_token);
  });

  it('serves userinfo for the JWT access token, released by scope', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const claims = await oidc.fetchUserInfo(fed.rp, tokens.access_token, tokens.claims()!.sub);
    assert.equal(claims.email, 'alice@acme.example');
    assert.equal(claims.idp, 'acme');
    assert.equal(claims.name, 'Alice Anders');

    const narrow = await signedIn(fed, 'alice@acme.example', { scope: 'openid' });
    const response = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${narrow.tokens.access_token}` } });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.sub, narrow.tokens.claims()!.sub);
    assert.equal(body.email, undefined, 'the email scope was not granted');
  });

  it('refuses userinfo for a tampered token, a token for another audience, and no token', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const [h, p, s] = tokens.access_token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(tokens.access_token), sub: 'globex:someone' })).toString('base64url');
    for (const token of [`${h}.${forged}.${s}`, `${h}.${p}.${s!.slice(0, -4)}AAAA`]) {
      const response = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    const none = await fetch(`${fed.concord.issuer}/me`);
    assert.equal(none.status, 401);
    const machine = await oidc.discovery(new URL(fed.concord.issuer), 'machine', 'machine-secret-0123456789', undefined, { execute: [oidc.allowInsecureRequests] });
    const cc = await oidc.clientCredentialsGrant(machine, {});
    const response = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${cc.access_token}` } });
    assert.equal(response.status, 403, 'a token without openid scope');
  });

  it('rotates refresh tokens; a replayed one revokes the whole grant', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const first = tokens.refresh_token!;
    const second = await oidc.refreshTokenGrant(fed.rp, first);
    assert.ok(second.refresh_token);
    assert.notEqual(second.refresh_token, first, 'rotated');
    const verified = await jwtVerify(second.id_token!, jwks, { issuer: fed.concord.issuer, audience: RP.client_id });
    assert.equal(verified.payload.sub, 'globex:f4e1b9c0-0b6d-4c55-9c3a-globex000001');

    await assert.rejects(oidc.refreshTokenGrant(fed.rp, first), isOAuthError('invalid_grant'));
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, second.refresh_token!), isOAuthError('invalid_grant'), 'reuse detection revoked the rotated token too');
  });

  it('introspects and revokes refresh tokens', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const active = await oidc.tokenIntrospection(fed.rp, tokens.refresh_token!);
    assert.equal(active.active, true);
    assert.equal(active.client_id, RP.client_id);
    assert.equal(active.sub, tokens.claims()!.sub);
    await oidc.tokenRevocation(fed.rp, tokens.refresh_token!);
    const inactive = await oidc.tokenIntrospection(fed.rp, tokens.refresh_token!);
    assert.equal(inactive.active, false);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), isOAuthError('invalid_grant'));
  });

  it('refuses a reused code and revokes what the first exchange issued', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(browser, auth, { email: 'alice@acme.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    await assert.rejects(exchange(fed.rp, callback, auth), isOAuthError('invalid_grant'));
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), isOAuthError('invalid_grant'));
  });

  it('refuses a wrong PKCE verifier', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(browser, auth, { email: 'alice@acme.example' });
    await assert.rejects(exchange(fed.rp, callback, { ...auth, codeVerifier: oidc.randomPKCECodeVerifier() }), isOAuthError('invalid_grant'));
  });

  it('lets an access token expire: the verifier refuses it as expired', async () => {
    const machine = await oidc.discovery(new URL(fed.concord.issuer), 'machine', 'machine-secret-0123456789', undefined, { execute: [oidc.allowInsecureRequests] });
    const { access_token } = await oidc.clientCredentialsGrant(machine, { resource: 'https://short-lived.example', scope: 'read' });
    // The resource server's accessTokenTtl (1 s) sets the lifetime, whatever the default (300 s).
    const { iat, exp } = decodeJwt(access_token);
    assert.equal(exp! - iat!, 1);
    // Valid apart from its age: a verifier that tolerates the age takes it. (A 1 s token may already
    // have expired by the time a loaded machine verifies it, so the check of validity must not race it.)
    const tolerant = createVerifier({ issuer: fed.concord.issuer, audience: 'https://short-lived.example', clockTolerance: 60 });
    assert.equal((await tolerant(access_token)).client_id, 'machine');
    // Once past exp, a verifier without tolerance refuses it as expired.
    const strict = createVerifier({ issuer: fed.concord.issuer, audience: 'https://short-lived.example', clockTolerance: 0 });
    const wait = exp! * 1000 + 1100 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await assert.rejects(strict(access_token), { code: 'expired' });
  });
});
