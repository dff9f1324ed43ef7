import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT } from 'jose';
import type { SigningAlgorithm } from '../../src/keys/index.ts';
import { keyedHash, tokenIdKey } from '../../src/provider/index.ts';
import { createStore } from '../../src/store/index.ts';
import { createVerifier } from '../../src/verify/index.ts';
import { dpopKeys, dpopProof } from '../support/dpop-proof.ts';
import { freePort } from '../support/ports.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { startConcord, type TestConcord } from '../support/concord.ts';

const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };
const BASIC = `Basic ${Buffer.from(`${MACHINE.client_id}:${MACHINE.client_secret}`).toString('base64')}`;

/**
 * Client-credentials JWT access tokens have no record (provider/access-tokens.ts): introspection
 * (RFC 7662) and revocation (RFC 7009) work from the verified JWT and a revocation marker in the
 * store, shared by every instance. Two instances behind one issuer, on a real Redis; tokens of the
 * release before (a record, a jti without the mark) still introspect and revoke.
 */
describe('client-credentials tokens across instances, without records', () => {
  const prefix = `cc-tokens-${randomBytes(4).toString('hex')}:`;
  const secretsKey = randomBytes(32).toString('base64');
  let a: TestConcord;
  let b: TestConcord;
  /** Where each instance listens; both serve the one issuer (a load balancer's). */
  let urlA: string;
  let urlB: string;

  before(async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${portA}`;
    const start = async (port: number) =>
      startConcord({ port, store: await createStore({ url: 'redis://127.0.0.1:6379', prefix }), clients: [MACHINE], settings: { issuer, secretsKey }, logLevel: 'warn' });
    a = await start(portA);
    b = await start(portB);
    urlA = issuer;
    urlB = `http://127.0.0.1:${portB}`;
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await dropRedisPrefix(prefix);
  });

  const post = (url: string, path: string, body: Record<string, string>) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: BASIC }, body: new URLSearchParams(body).toString() });
  const issue = async (url: string) => ((await (await post(url, '/token', { grant_type: 'client_credentials' })).json()) as { access_token: string }).access_token;
  const introspect = async (url: string, token: string) => (await (await post(url, '/token/introspection', { token })).json()) as Record<string, unknown>;
  const revoke = (url: string, token: string) => post(url, '/token/revocation', { token, token_type_hint: 'access_token' });
  const me = (url: string, token: string) => fetch(`${url}/me`, { headers: { authorization: `Bearer ${token}` } });
  /** The store key of a token's record (access-tokens.ts accessTokenRecordId, as hashed-ids.ts stores it). */
  const recordKey = (jti: string) => keyedHash(tokenIdKey(secretsKey, a.concord.keys.pairwiseSalt()), `jwt-at:${jti}`);

  /** What an active introspection answers for a client-credentials JWT: its own claims. */
  function assertActive(answer: Record<string, unknown>, token: string, what: string): void {
    const claims = decodeJwt(token);
    assert.deepEqual(
      answer,
      { active: true, client_id: MACHINE.client_id, exp: claims.exp, iat: claims.iat, iss: claims.iss, jti: claims.jti, aud: claims.aud, ...(claims.scope ? { scope: claims.scope } : {}), token_type: 'Bearer' },
      what,
    );
  }

  it('introspects a token on the other instance, keeps no record of it, and a revocation on one is seen by the other', async () => {
    const token = await issue(urlA);
    const other = await issue(urlA);
    const { jti } = decodeJwt(token);
    assert.match(String(jti), /^cc\./, 'the jti says the token has no record');
    assert.equal(await a.concord.store.adapter('ClientCredentials').find(recordKey(String(jti))), undefined, 'no record written');
    assertActive(await introspect(urlB, token), token, 'introspected at B');
    assertActive(await introspect(urlA, token), token, 'introspected at A');
    // At /me it stands too: refused for its scope (no openid), not as revoked, as when it had a record.
    const unrevoked = await me(urlB, token);
    assert.equal(unrevoked.status, 403);
    assert.match(unrevoked.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);

    const revoked = await revoke(urlB, token);
    assert.equal(revoked.status, 200);
    assert.deepEqual(await introspect(urlA, token), { active: false }, 'revoked at B: inactive at A');
    assert.deepEqual(await introspect(urlB, token), { active: false }, 'and at B');
    assert.equal((await revoke(urlA, token)).status, 200, 'revoking it again answers 200 (RFC 7009 2.2)');
    const answer = await me(urlA, token);
    assert.equal(answer.status, 401);
    assert.match(answer.headers.get('www-authenticate') ?? '', /the access token was revoked/);
    assertActive(await introspect(urlA, other), other, 'another token of the same client stands');
    const offline = await createVerifier({ issuer: urlA, audience: urlA })(token);
    assert.equal(offline.client_id, MACHINE.client_id, 'it still verifies offline (docs/verify.md)');
  });

  it('introspects a DPoP-bound token as bound (RFC 9449 6.2: token_type DPoP, cnf.jkt), from its claims', async () => {
    const keys = await dpopKeys();
    const response = await fetch(`${urlA}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: BASIC, dpop: await dpopProof(keys, 'POST', `${urlA}/token`, undefined) },
      body: 'grant_type=client_credentials',
    });
    const { access_token: token, token_type } = (await response.json()) as { access_token: string; token_type: string };
    assert.equal(token_type, 'DPoP');
    const claims = decodeJwt(token) as { cnf?: { jkt?: string } };
    assert.ok(claims.cnf?.jkt, 'the token is bound to the key');
    const answer = await introspect(urlB, token);
    assert.equal(answer.active, true);
    assert.equal(answer.token_type, 'DPoP');
    assert.deepEqual(answer.cnf, { jkt: claims.cnf.jkt });
  });

  it('answers inactive for a token with the mark whose signature is not Concord’s', async () => {
    const token = await issue(urlA);
    const [header, payload] = token.split('.');
    assert.deepEqual(await introspect(urlB, `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}`), { active: false });
  });

  it('introspects and revokes a token the release before issued (a record under its jti’s hash, no mark)', async () => {
    // What that release signed and stored: the same claims with oidc-provider's nanoid as jti, and its record.
    const fresh = decodeJwt(await issue(urlA));
    const header = decodeProtectedHeader(await issue(urlA));
    const jwk = a.concord.keys.signingJwk(header.alg as SigningAlgorithm)!;
    const jti = randomBytes(32).toString('base64url').slice(0, 43);
    const { jti: _marked, ...claims } = fresh;
    const token = await new SignJWT({ ...claims, jti })
      .setProtectedHeader({ alg: header.alg!, kid: jwk.kid!, typ: 'at+jwt' })
      .sign(await importJWK(jwk, header.alg));
    const record = { jti: `at1.${recordKey(jti)}`, kind: 'ClientCredentials', iat: claims.iat, exp: claims.exp, clientId: MACHINE.client_id, aud: claims.aud, ...(claims.scope ? { scope: claims.scope } : {}) };
    await a.concord.provider().ClientCredentials.adapter.upsert(record.jti, record as never, 300);
    assert.ok(await a.concord.store.adapter('ClientCredentials').find(recordKey(jti)), 'stored where that release stored it');

    assertActive(await introspect(urlB, token), token, 'a token of the release before');
    assert.equal((await revoke(urlA, token)).status, 200);
    assert.deepEqual(await introspect(urlB, token), { active: false }, 'revoked at A: inactive at B');
    assert.equal(await a.concord.store.adapter('ClientCredentials').find(recordKey(jti)), undefined, 'its record is gone');
  });
});
