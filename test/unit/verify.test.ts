import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, importJWK, SignJWT, type CryptoKey } from 'jose';
import {
  createVerifier,
  DEFAULT_ALGORITHMS,
  hasScope,
  VERIFY_ERROR_CODES,
  VerifyError,
  type ConcordAccessTokenClaims,
  type Verifier,
  type VerifyErrorCode,
} from '../../packages/verify/src/index.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

async function refusal(promise: Promise<unknown>, code: VerifyErrorCode): Promise<VerifyError> {
  const err = await promise.then(
    () => assert.fail(`expected a VerifyError ${code}, the token was accepted`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VerifyError, `expected a VerifyError, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code} (${String((err.cause as Error | undefined)?.message)})`);
  assert.equal(err.status, VERIFY_ERROR_CODES[code].status);
  return err;
}

describe('verify: what a token must be', () => {
  let server: JwksServer;
  let verify: Verifier;

  before(async () => {
    server = await startJwksServer();
    verify = createVerifier({ issuer: server.issuer, audience: server.audience });
  });
  after(() => server.close());

  it('accepts a valid access token and returns its claims, typed', async () => {
    const token = await server.sign({ scope: 'openid orders:read' });
    const claims: ConcordAccessTokenClaims = await verify(token);
    assert.equal(claims.iss, server.issuer);
    assert.equal(claims.sub, 'acme:alice');
    assert.equal(claims.aud, server.audience);
    assert.equal(claims.client_id, 'test-client');
    assert.equal(claims.scope, 'openid orders:read');
    assert.equal(typeof claims.jti, 'string');
    assert.equal(typeof claims.exp, 'number');
  });

  it('accepts typ "application/at+jwt" (RFC 9068 §2.1) and an aud array naming the audience', async () => {
    const token = await server.sign({ aud: ['https://other.example', server.audience] }, { typ: 'application/at+jwt' });
    assert.deepEqual((await verify(token)).aud, ['https://other.example', server.audience]);
  });

  it('refuses a token whose payload was tampered with: bad_signature', async () => {
    const [h, p, s] = (await server.sign()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${b64({ ...claims, sub: 'acme:mallory' })}.${s}`;
    await refusal(verify(forged), 'bad_signature');
  });

  it('refuses a token whose signature was altered: bad_signature', async () => {
    const token = await server.sign();
    const [h, p, s] = token.split('.');
    const sig = Buffer.from(s!, 'base64url');
    sig[10]! ^= 0xff;
    await refusal(verify(`${h}.${p}.${sig.toString('base64url')}`), 'bad_signature');
  });

  it('refuses an expired token: expired', async () => {
    await refusal(verify(await server.sign({ iat: now() - 600, exp: now() - 60 })), 'expired');
  });

  it('tolerates small clock skew on exp, within clockTolerance (default 5 s)', async () => {
    await verify(await server.sign({ exp: now() - 2 }));
    await refusal(verify(await server.sign({ exp: now() - 10 })), 'expired');
  });

  it('refuses a token that is not yet valid: not_yet_valid', async () => {
    await refusal(verify(await server.sign({ nbf: now() + 120 })), 'not_yet_valid');
  });

  it('refuses a token for another audience: wrong_audience', async () => {
    const err = await refusal(verify(await server.sign({ aud: 'https://billing.example.test' })), 'wrong_audience');
    assert.equal(err.claim, 'aud');
  });

  it('refuses a token from another issuer: wrong_issuer', async () => {
    await refusal(verify(await server.sign({ iss: 'https://evil.example.test' })), 'wrong_issuer');
  });

  it('refuses an ID token (typ JWT) presented as an access token: wrong_type', async () => {
    const idToken = await server.sign(
      { aud: server.audience, nonce: 'n-0S6', auth_time: now(), client_id: undefined, scope: undefined },
      { typ: 'JWT' },
    );
    await refusal(verify(idToken), 'wrong_type');
  });

  it('refuses a token without typ: wrong_type', async () => {
    const key = server.keys.get(server.kid)!;
    const token = await new SignJWT({ iss: server.issuer, aud: server.audience, sub: 's', client_id: 'c', jti: 'j', iat: now(), exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid })
      .sign(key.privateKey);
    await refusal(verify(token), 'wrong_type');
  });

  it('refuses alg none: alg_not_allowed', async () => {
    const [, p] = (await server.sign()).split('.');
    await refusal(verify(`${b64({ alg: 'none', typ: 'at+jwt', kid: server.kid })}.${p}.`), 'alg_not_allowed');
    await refusal(verify(`${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`), 'alg_not_allowed');
  });

  it('refuses HS256 signed with the public key as the secret: alg_not_allowed', async () => {
    const { publicJwk, kid } = server.keys.get(server.kid)!;
    const claims = { iss: server.issuer, aud: server.audience, sub: 'acme:mallory', client_id: 'c', jti: 'j', iat: now(), exp: now() + 60 };
    const pem = await exportSPKI((await importJWK(publicJwk, 'ES256', { extractable: true })) as CryptoKey);
    for (const secret of [pem, JSON.stringify(publicJwk)]) {
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(new TextEncoder().encode(secret));
      await refusal(verify(token), 'alg_not_allowed');
    }
  });

  it('refuses an allowed-by-jose but not allowed-by-us algorithm: alg_not_allowed', async () => {
    const es256Only = createVerifier({ issuer: server.issuer, audience: server.audience, algorithms: ['ES256'] });
    await es256Only(await server.sign());
    const edOnly = createVerifier({ issuer: server.issuer, audience: server.audience, algorithms: ['EdDSA'] });
    await refusal(edOnly(await server.sign()), 'alg_not_allowed');
  });

  it('refuses what is not a JWS: malformed', async () => {
    for (const junk of ['', 'abc', 'a.b', 'a.b.c', '...', `${b64({ alg: 'ES256' })}.e30`, 'x'.repeat(5000)]) {
      await refusal(verify(junk), 'malformed');
    }
    await refusal(verify(undefined as unknown as string), 'malformed');
  });

  it('refuses a token missing a required RFC 9068 claim: malformed, naming the claim', async () => {
    for (const claim of ['exp', 'iat', 'sub', 'jti', 'client_id', 'aud', 'iss']) {
      const err = await refusal(verify(await server.sign({ [claim]: undefined })), 'malformed');
      assert.equal(err.claim, claim);
    }
  });

  it('refuses claims of the wrong type: malformed', async () => {
    for (const [claim, value] of [['sub', 42], ['client_id', null], ['jti', {}], ['scope', ['openid']], ['exp', 'tomorrow']] as const) {
      const err = await refusal(verify(await server.sign({ [claim]: value })), 'malformed');
      assert.equal(err.claim, claim);
    }
  });

  it('refuses a JWE or a payload that is not JSON: malformed', async () => {
    const key = server.keys.get(server.kid)!;
    const { CompactSign } = await import('jose');
    const notJson = await new CompactSign(new TextEncoder().encode('not json'))
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .sign(key.privateKey);
    await refusal(verify(notJson), 'malformed');
    await refusal(verify('eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d'), 'malformed');
  });

  it('checks required scopes, as whole words: insufficient_scope with the scopes required', async () => {
    const strict = createVerifier({ issuer: server.issuer, audience: server.audience, requiredScopes: ['orders:read'] });
    await strict(await server.sign({ scope: 'openid orders:read' }));
    await strict(await server.sign({ scope: 'orders:read' }));
    for (const scope of ['openid', 'orders:readwrite', 'xorders:read', 'orders', '', undefined]) {
      const err = await refusal(strict(await server.sign({ scope })), 'insufficient_scope');
      assert.deepEqual(err.requiredScopes, ['orders:read']);
    }
  });

  it('adds per-call required scopes to the verifier ones', async () => {
    const strict = createVerifier({ issuer: server.issuer, audience: server.audience, requiredScopes: ['a'] });
    const call = { requiredScopes: ['b'] };
    await strict(await server.sign({ scope: 'a b' }), call);
    const err = await refusal(strict(await server.sign({ scope: 'a' }), call), 'insufficient_scope');
    assert.deepEqual(err.requiredScopes, ['a', 'b']);
  });

  it('accepts any of several audiences', async () => {
    const multi = createVerifier({ issuer: server.issuer, audience: ['https://a.example', server.audience] });
    await multi(await server.sign());
  });

  it('the error message is the fixed description, never token content', async () => {
    const err = await refusal(verify(await server.sign({ aud: '<script>' })), 'wrong_audience');
    assert.equal(err.message, VERIFY_ERROR_CODES.wrong_audience.description);
    assert.equal(err.expose, true);
    assert.ok(!err.message.includes('<script>'));
  });
});

describe('verify: options', () => {
  const base = { issuer: 'https://concord.example', audience: 'https://api.example' };

  it('defaults to ES256, EdDSA, RS256, PS256 and resolves the other defaults', () => {
    const v = createVerifier(base);
    assert.deepEqual(DEFAULT_ALGORITHMS, ['ES256', 'EdDSA', 'RS256', 'PS256']);
    assert.deepEqual(v.options.algorithms, DEFAULT_ALGORITHMS);
    assert.equal(v.options.clockTolerance, 5);
    assert.equal(v.options.cooldownDuration, 30_000);
    assert.equal(v.options.cacheMaxAge, 600_000);
    assert.equal(v.options.timeoutDuration, 5000);
    assert.deepEqual(v.options.audience, ['https://api.example']);
  });

  it('refuses to be configured with none, HS* or unknown algorithms', () => {
    for (const alg of ['none', 'HS256', 'HS384', 'HS512', 'RSA-OAEP', 'dir', 'es256']) {
      assert.throws(() => createVerifier({ ...base, algorithms: [alg] as never }), TypeError, alg);
    }
    assert.throws(() => createVerifier({ ...base, algorithms: [] }), TypeError);
  });

  it('refuses missing issuer or audience, bad scopes, bad durations, a bad jwksUri', () => {
    assert.throws(() => createVerifier({ ...base, issuer: 'not a url' }), TypeError);
    assert.throws(() => createVerifier({ ...base, audience: '' }), TypeError);
    assert.throws(() => createVerifier({ ...base, audience: [] }), TypeError);
    assert.throws(() => createVerifier({ ...base, requiredScopes: ['two words'] }), TypeError);
    assert.throws(() => createVerifier({ ...base, requiredScopes: ['quote"'] }), TypeError);
    assert.throws(() => createVerifier({ ...base, clockTolerance: -1 }), TypeError);
    assert.throws(() => createVerifier({ ...base, cooldownDuration: Number.NaN }), TypeError);
    assert.throws(() => createVerifier({ ...base, jwksUri: 'ftp://concord.example/jwks' }), TypeError);
    assert.throws(() => createVerifier({ ...base, jwksUri: 'http://concord.example/jwks' }), TypeError, 'http keys for an https issuer');
  });

  it('hasScope matches whole space-separated words only', () => {
    assert.equal(hasScope('a b c', 'b'), true);
    assert.equal(hasScope('ab b', 'b'), true);
    assert.equal(hasScope('ab bc', 'b'), false);
    assert.equal(hasScope('', 'b'), false);
  });
});
