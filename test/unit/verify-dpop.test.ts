import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateSecret, SignJWT } from 'jose';
import Koa from 'koa';
import {
  accessTokenHash,
  concordKoa,
  createMemoryReplayCache,
  createVerifier,
  normaliseHtu,
  VerifyError,
  type DPoPNonceSource,
  type Verifier,
  type VerifyErrorCode,
} from '../../packages/verify/src/index.ts';
import { dpopKeys, dpopProof, type DPoPKeys } from '../support/dpop-proof.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';

/*
 * concord-verify's DPoP checks (RFC 9449 §4.3, §7.1, §8) one by one, against tokens from a
 * loopback JWKS. The end-to-end path with Concord and openid-client is test/integration/dpop.test.ts.
 */

const HTU = 'https://orders.example.test/orders';

async function refusal(promise: Promise<unknown>): Promise<VerifyError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VerifyError, String(err));
    return err;
  }
  assert.fail('accepted');
}

describe('verify: DPoP-bound tokens (RFC 9449)', () => {
  let jwks: JwksServer;
  let keys: DPoPKeys;
  let token: string;
  let verify: Verifier;

  before(async () => {
    jwks = await startJwksServer();
    keys = await dpopKeys();
    token = await jwks.sign({ cnf: { jkt: await calculateJwkThumbprint(await exportJWK(keys.publicKey)) } });
    verify = createVerifier({ issuer: jwks.issuer, audience: jwks.audience });
  });
  after(() => jwks.close());

  const check = async (proof: string | undefined, request: { method?: string; url?: string } = {}, on = token, verifier = verify) =>
    verifier(on, { dpop: { proof, method: request.method ?? 'GET', url: request.url ?? HTU } });

  it('accepts a valid proof and returns the claims with cnf', async () => {
    const claims = await check(await dpopProof(keys, 'GET', HTU, token));
    assert.equal(claims.cnf?.jkt, await calculateJwkThumbprint(await exportJWK(keys.publicKey)));
  });

  it('refuses the bound token without a proof (as Bearer) and an unbound one with a proof', async () => {
    assert.equal((await refusal(verify(token))).code, 'dpop_bound');
    const plain = await jwks.sign();
    assert.equal((await refusal(check(await dpopProof(keys, 'GET', HTU, plain), {}, plain))).code, 'dpop_unbound');
    const strict = createVerifier({ issuer: jwks.issuer, audience: jwks.audience, dpop: { required: true } });
    assert.equal((await refusal(strict(plain))).code, 'dpop_unbound', 'dpop.required: no bearer tokens at all');
  });

  it('refuses malformed proofs and keys that are not a public asymmetric key', async () => {
    const cases: Array<[string, Promise<string> | string | undefined, VerifyErrorCode, string?]> = [
      ['none', undefined, 'dpop_proof_missing'],
      ['two DPoP headers', (async () => `${await dpopProof(keys, 'GET', HTU, token)}, ${await dpopProof(keys, 'GET', HTU, token)}`)(), 'dpop_proof_missing'],
      ['not a JWS', 'not-a-jwt', 'dpop_proof_invalid'],
      ['typ JWT', dpopProof(keys, 'GET', HTU, token, { header: { typ: 'JWT' } }), 'dpop_proof_invalid', 'typ'],
      ['a private jwk', (async () => dpopProof(keys, 'GET', HTU, token, { header: { jwk: await exportJWK(keys.privateKey) } }))(), 'dpop_proof_invalid', 'jwk'],
      ['no jwk', dpopProof(keys, 'GET', HTU, token, { header: { jwk: undefined } }), 'dpop_proof_invalid', 'jwk'],
      ['no jti', dpopProof(keys, 'GET', HTU, token, { claims: { jti: undefined } }), 'dpop_proof_invalid', 'jti'],
      ['a jti of 300 characters', dpopProof(keys, 'GET', HTU, token, { claims: { jti: 'j'.repeat(300) } }), 'dpop_proof_invalid', 'jti'],
      ['iat a string', dpopProof(keys, 'GET', HTU, token, { claims: { iat: 'now' } }), 'dpop_proof_invalid'],
      ['htm lower case', dpopProof(keys, 'get', HTU, token), 'dpop_proof_mismatch', 'htm'],
    ];
    for (const [what, proof, code, claim] of cases) {
      const err = await refusal(check(await proof));
      assert.equal(err.code, code, what);
      if (claim !== undefined) assert.equal(err.claim, claim, what);
      assert.equal(err.error, 'invalid_dpop_proof', what);
    }
  });

  it('refuses symmetric and unlisted algorithms', async () => {
    const secret = await generateSecret('HS256', { extractable: true });
    const hs = await new SignJWT({ jti: 'x', htm: 'GET', htu: HTU, iat: Math.floor(Date.now() / 1000), ath: accessTokenHash(token) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: await exportJWK(secret) })
      .sign(secret);
    assert.equal((await refusal(check(hs))).code, 'dpop_proof_invalid');
    const es384 = await dpopKeys('ES384');
    const es384Token = await jwks.sign({ cnf: { jkt: await calculateJwkThumbprint(await exportJWK(es384.publicKey)) } });
    const err = await refusal(check(await dpopProof(es384, 'GET', HTU, es384Token, { alg: 'ES384' }), {}, es384Token));
    assert.equal(err.code, 'dpop_proof_invalid');
    assert.equal(err.claim, 'alg');
    assert.throws(() => createVerifier({ issuer: jwks.issuer, audience: jwks.audience, dpop: { algorithms: ['HS256' as never] } }), /asymmetric/);
  });

  it('compares htu without query and fragment, normalised (RFC 9449 §4.3, RFC 3986 §6.2)', async () => {
    assert.equal(normaliseHtu('HTTPS://Orders.Example.TEST:443/a/../orders?x=1#f'), HTU);
    assert.equal(normaliseHtu('ftp://orders.example.test/'), undefined);
    await check(await dpopProof(keys, 'GET', 'https://ORDERS.example.test:443/orders#top', token), { url: `${HTU}?page=2` });
    const err = await refusal(check(await dpopProof(keys, 'GET', 'https://orders.example.test/orders/', token)));
    assert.equal(err.code, 'dpop_proof_mismatch');
    assert.equal(err.claim, 'htu');
    const http = await refusal(check(await dpopProof(keys, 'GET', 'http://orders.example.test/orders', token)));
    assert.equal(http.claim, 'htu');
  });

  it('refuses a replayed jti within the window, per key', async () => {
    const proof = await dpopProof(keys, 'GET', HTU, token);
    await check(proof);
    const err = await refusal(check(proof));
    assert.equal(err.code, 'dpop_proof_replayed');
    assert.equal(err.claim, 'jti');
  });

  it('refuses a proof for another token (ath) or by another key (jkt)', async () => {
    const other = await jwks.sign({ cnf: { jkt: 'x'.repeat(43) } });
    assert.equal((await refusal(check(await dpopProof(keys, 'GET', HTU, other)))).claim, 'ath');
    assert.equal((await refusal(check(await dpopProof(keys, 'GET', HTU, other), {}, other))).claim, 'jkt');
  });

  it('asks for a nonce when a nonce source is set (RFC 9449 §8), and accepts the current one', async () => {
    let current = 'nonce-1';
    const nonce: DPoPNonceSource = { next: () => current, check: (value) => value === current };
    const withNonce = createVerifier({ issuer: jwks.issuer, audience: jwks.audience, dpop: { nonce } });
    const missing = await refusal(check(await dpopProof(keys, 'GET', HTU, token), {}, token, withNonce));
    assert.equal(missing.code, 'dpop_nonce_required');
    assert.equal(missing.error, 'use_dpop_nonce');
    assert.equal(missing.dpopNonce, 'nonce-1');
    await check(await dpopProof(keys, 'GET', HTU, token, { claims: { nonce: 'nonce-1' } }), {}, token, withNonce);
    current = 'nonce-2';
    assert.equal((await refusal(check(await dpopProof(keys, 'GET', HTU, token, { claims: { nonce: 'nonce-1' } }), {}, token, withNonce))).dpopNonce, 'nonce-2');
  });

  it('middleware: use_dpop_nonce with a DPoP-Nonce header; the proof checked against the origin option', async () => {
    const nonce: DPoPNonceSource = { next: () => 'fresh', check: (value) => value === 'fresh' };
    const koa = new Koa();
    koa.use(concordKoa({ issuer: jwks.issuer, audience: jwks.audience, dpop: { nonce } }, { realm: 'orders', origin: 'https://orders.example.test' }));
    koa.use((ctx) => {
      ctx.body = 'ok';
    });
    const server = http.createServer(koa.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const local = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
    try {
      const first = await fetch(local, { headers: { authorization: `DPoP ${token}`, dpop: await dpopProof(keys, 'GET', HTU, token) } });
      assert.equal(first.status, 401);
      assert.equal(first.headers.get('dpop-nonce'), 'fresh');
      assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP realm="orders", error="use_dpop_nonce", error_description="[^"]+", algs="ES256 /);
      assert.deepEqual(await first.json(), { error: 'use_dpop_nonce', error_description: 'the DPoP proof must carry the nonce from the DPoP-Nonce header' });
      const second = await fetch(local, { headers: { authorization: `dpop ${token}`, dpop: await dpopProof(keys, 'GET', HTU, token, { claims: { nonce: 'fresh' } }) } });
      assert.equal(second.status, 200, 'the scheme is case-insensitive; htu is the configured origin, not the loopback one');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('verify: the in-memory DPoP replay cache', () => {
  it('remembers a key for its lifetime, then forgets it', () => {
    let now = 1_000_000;
    const cache = createMemoryReplayCache({ now: () => now });
    assert.equal(cache.claim('a', 10), true);
    assert.equal(cache.claim('a', 10), false);
    now += 10_001;
    assert.equal(cache.claim('a', 10), true, 'expired: a proof that old fails the iat check anyway');
  });

  it('is bounded: at maxEntries the oldest entry goes first', () => {
    const cache = createMemoryReplayCache({ maxEntries: 2 });
    assert.equal(cache.claim('a', 60), true);
    assert.equal(cache.claim('b', 60), true);
    assert.equal(cache.claim('c', 60), true);
    assert.equal(cache.claim('b', 60), false, 'b and c are kept');
    assert.equal(cache.claim('c', 60), false);
    assert.equal(cache.claim('a', 60), true, 'a was dropped to make room');
    assert.throws(() => createMemoryReplayCache({ maxEntries: 0 }), /positive integer/);
  });
});
