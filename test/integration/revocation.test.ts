import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { createVerifier } from '../../src/verify/index.ts';
import { keyedHash, tokenIdKey } from '../../src/provider/index.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' };
const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };

/**
 * Revocation honoured everywhere Concord answers: once a grant is revoked, whatever revoked it, the
 * access tokens issued under it get 401 at /me and `active: false` at introspection; tokens of other
 * grants are untouched. (A service verifying offline cannot know: docs/verify.md.)
 */
describe('revocation of access tokens', () => {
  let fed: Federation;

  before(async () => {
    fed = await startFederation({ clients: [RP, MACHINE] });
  });
  after(() => fed.close());

  const me = (token: string) => fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${token}` } });
  const introspect = (token: string) => oidc.tokenIntrospection(fed.rp, token);

  /** The token stands at both endpoints: the checks below can fail. */
  async function assertLive(token: string, what: string): Promise<void> {
    const answer = await me(token);
    assert.equal(answer.status, 200, `${what}: /me answers ${answer.status} ${await answer.text()}`);
    const introspected = await introspect(token);
    assert.equal(introspected.active, true, `${what}: introspection`);
    assert.equal(introspected.client_id, RP.client_id);
    assert.equal(introspected.jti, JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti, 'the JWT’s own jti');
  }

  /** Refused at both endpoints, while its signature and lifetime still verify offline. */
  async function assertRevoked(token: string, what: string): Promise<void> {
    const answer = await me(token);
    assert.equal(answer.status, 401, `${what}: /me`);
    assert.match(answer.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.deepEqual(await introspect(token).then((r) => ({ active: r.active })), { active: false }, `${what}: introspection`);
    const offline = await createVerifier({ issuer: fed.concord.issuer, audience: fed.concord.issuer })(token);
    assert.equal(offline.client_id, RP.client_id, 'offline verification still accepts it: the window docs/verify.md describes');
  }

  it('a replayed code revokes the grant: the first exchange’s access token is refused', async () => {
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    const other = (await signedIn(fed, 'alice@acme.example')).tokens;
    await assertLive(tokens.access_token, 'before the replay');
    await assert.rejects(exchange(fed.rp, callback, auth), (err: { error?: string }) => err.error === 'invalid_grant');
    await assertRevoked(tokens.access_token, 'after the code was replayed');
    await assertLive(other.access_token, 'another login’s token');
  });

  it('a replayed refresh token revokes the grant: every access token of it is refused', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    const other = (await signedIn(fed, 'bob@globex.example')).tokens;
    await assertLive(tokens.access_token, 'the first access token');
    await assertLive(refreshed.access_token, 'the refreshed access token');
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant');
    await assertRevoked(tokens.access_token, 'the first access token after the replay');
    await assertRevoked(refreshed.access_token, 'the refreshed access token after the replay');
    await assertLive(other.access_token, 'another login’s token');
  });

  it('logout (RP-initiated) ends the session and revokes its grants', async () => {
    const { tokens, browser } = await signedIn(fed, 'carol@acme.example');
    await assertLive(tokens.access_token, 'before logout');
    const page = await browser.get(oidc.buildEndSessionUrl(fed.rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: RP.post_logout_redirect_uris[0]! }), {
      stopAt: (u) => u.origin !== fed.concord.issuer,
    });
    const form = parseForm(page.body, '/session/end/confirm');
    // Concord ends its session, then sends the browser on to the partner's logout (not followed here).
    const done = await browser.post(new URL(form.action, page.url), { ...form.fields, logout: 'yes' }, { stopAt: (u) => u.origin !== fed.concord.issuer });
    assert.ok(done.stoppedAt, `logout left Concord: ${done.status} ${done.url.href}`);
    await assertRevoked(tokens.access_token, 'after logout');
  });

  it('revoke-sessions (admin) revokes every grant of the user', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const other = (await signedIn(fed, 'bob@globex.example')).tokens;
    await assertLive(tokens.access_token, 'before revoke-sessions');
    const user = encodeURIComponent(tokens.claims()!.sub);
    const revoked = await fetch(`${fed.concord.adminUrl}/admin/v1/users/${user}/revoke-sessions`, { method: 'POST', headers: ADMIN });
    assert.equal(revoked.status, 200, await revoked.text());
    await assertRevoked(tokens.access_token, 'after revoke-sessions');
    await assertLive(other.access_token, 'another user’s token');
  });

  it('disabling (offboarding) a participant revokes its users’ grants', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const other = (await signedIn(fed, 'alice@acme.example')).tokens;
    await assertLive(tokens.access_token, 'before the participant is disabled');
    const disabled = await fetch(`${fed.concord.adminUrl}/admin/v1/participants/globex/disable`, { method: 'POST', headers: ADMIN });
    assert.equal(disabled.status, 200, await disabled.text());
    try {
      await assertRevoked(tokens.access_token, 'after globex was disabled');
      await assertLive(other.access_token, 'another participant’s user');
    } finally {
      await fetch(`${fed.concord.adminUrl}/admin/v1/participants/globex/enable`, { method: 'POST', headers: ADMIN });
    }
    assert.equal((await me(tokens.access_token)).status, 401, 'enabling it again brings no revoked token back');
  });

  it('revokes an access token at the revocation endpoint (RFC 7009) as oidc-provider does an opaque one: with its grant’s tokens', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    const other = (await signedIn(fed, 'alice@acme.example')).tokens;
    await assertLive(tokens.access_token, 'before revocation');
    await oidc.tokenRevocation(fed.rp, tokens.access_token, { token_type_hint: 'access_token' });
    await assertRevoked(tokens.access_token, 'the revoked token');
    await assertRevoked(refreshed.access_token, 'the grant’s other access token');
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, refreshed.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'and its refresh token');
    await assertLive(other.access_token, 'another login’s token');
  });

  it('introspects a client-credentials token, and answers inactive for a forged or foreign JWT', async () => {
    const machine = await oidc.discovery(new URL(fed.concord.issuer), MACHINE.client_id, MACHINE.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const { access_token } = await oidc.clientCredentialsGrant(machine);
    const introspected = await oidc.tokenIntrospection(machine, access_token);
    assert.equal(introspected.active, true);
    assert.equal(introspected.client_id, MACHINE.client_id);
    const [header, payload] = access_token.split('.');
    const forged = `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`;
    assert.equal((await oidc.tokenIntrospection(machine, forged)).active, false);
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    assert.equal((await oidc.tokenIntrospection(machine, tokens.id_token!)).active, false, 'an ID token is not an access token');
  });

  /*
   * The record of a JWT access token is kept under X = HMAC(key, `jwt-at:` + jti), as it is. Instances
   * of before kept it under `h1.` + HMAC(key, X), and look a record up there first, then under X
   * itself; their revocation deletes both. During a rolling upgrade both kinds share the store.
   * (Client-credentials tokens have no record: client-credentials-tokens.test.ts.)
   */
  describe('token records written by this version and by the one before', () => {
    const recordKey = (token: string) => {
      const { settings, keys } = fed.concord.concord;
      const jti = String(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti);
      const key = tokenIdKey(settings.secretsKey, keys.pairwiseSalt());
      const x = keyedHash(key, `jwt-at:${jti}`);
      return { x, before: `h1.${keyedHash(key, x)}` };
    };
    it('keeps a new token’s record under its hash as it is, where an instance of before looks too', async () => {
      const { tokens } = await signedIn(fed, 'carol@acme.example');
      const raw = fed.concord.concord.store.adapter('AccessToken');
      const { x, before } = recordKey(tokens.access_token);
      assert.equal(await raw.find(before), undefined, 'not under the hash of the hash (one HMAC per token)');
      const record = await raw.find(x);
      assert.equal(record?.clientId, RP.client_id, 'an instance of before finds it where it looks after its own form');
      // Revoked by an instance of before (its destroy deletes the value's hash and the value itself):
      await raw.destroy(before);
      await raw.destroy(x);
      assert.equal((await introspect(tokens.access_token)).active, false, 'and its revocation reaches it');
    });

    it('introspects and revokes a token whose record an instance of before wrote (RFC 7662, RFC 7009)', async () => {
      // A login's access token (a record of its grant), written as before: /me and introspection still answer it.
      const { tokens } = await signedIn(fed, 'carol@acme.example');
      const loginRaw = fed.concord.concord.store.adapter('AccessToken');
      const { x, before } = recordKey(tokens.access_token);
      const record = (await loginRaw.find(x))!;
      assert.ok(record, 'the login’s token record is under its hash as it is');
      await loginRaw.destroy(x);
      await loginRaw.upsert(before, record, 300);
      await assertLive(tokens.access_token, 'a login’s token recorded as before');
      await oidc.tokenRevocation(fed.rp, tokens.access_token, { token_type_hint: 'access_token' });
      await assertRevoked(tokens.access_token, 'revoked');
    });
  });
});
