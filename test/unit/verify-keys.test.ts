import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createVerifier, VerifyError, type FetchLike, type VerifierOptions, type VerifyErrorCode } from '../../packages/verify/src/index.ts';
import { startJwksServer, type JwksServer, type TestSigningAlg } from '../support/jwks-server.ts';

async function refusal(promise: Promise<unknown>, code: VerifyErrorCode): Promise<VerifyError> {
  const err = await promise.then(
    () => assert.fail(`expected a VerifyError ${code}, the token was accepted`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VerifyError, `expected a VerifyError, got ${String(err)}`);
  assert.equal(err.code, code, `expected ${code}, got ${err.code} (${String((err.cause as Error | undefined)?.message)})`);
  return err;
}

describe('verify: keys from discovery and the JWKS', () => {
  let server: JwksServer;
  const opts = (extra: Partial<VerifierOptions> = {}): VerifierOptions => ({ issuer: server.issuer, audience: server.audience, ...extra });

  beforeEach(async () => {
    server = await startJwksServer();
  });
  afterEach(() => server.close());

  it('fetches discovery once and the JWKS once for many verifications, concurrent ones included', async () => {
    const verify = createVerifier(opts());
    const token = await server.sign();
    await Promise.all(Array.from({ length: 20 }, () => verify(token)));
    for (let i = 0; i < 20; i++) await verify(token);
    assert.deepEqual(server.requests, { discovery: 1, jwks: 1, other: 0 });
  });

  it('skips discovery when given jwksUri', async () => {
    const verify = createVerifier(opts({ jwksUri: server.jwksUri }));
    await verify(await server.sign());
    assert.deepEqual(server.requests, { discovery: 0, jwks: 1, other: 0 });
  });

  it('finds the discovery document of an issuer with a path, and one with a trailing slash', async () => {
    const tenant = await startJwksServer({ issuerPath: '/tenants/acme' });
    try {
      await createVerifier({ issuer: tenant.issuer, audience: tenant.audience })(await tenant.sign());
      const slashed = `${tenant.issuer}/`;
      tenant.discoveryOverrides.issuer = slashed;
      await createVerifier({ issuer: slashed, audience: tenant.audience })(await tenant.sign({ iss: slashed }));
      assert.equal(tenant.requests.discovery, 2);
      assert.equal(tenant.requests.other, 0);
    } finally {
      await tenant.close();
    }
  });

  it('an unknown kid triggers exactly one refetch, then the cool-down blocks further refetches', async () => {
    const verify = createVerifier(opts({ cooldownDuration: 400 }));
    await verify(await server.sign());
    assert.equal(server.requests.jwks, 1);

    const bogus = await server.sign({}, { kid: 'no-such-key' });
    // Within the cool-down after the first fetch: refused without a request.
    for (let i = 0; i < 10; i++) await refusal(verify(bogus), 'unknown_key');
    assert.equal(server.requests.jwks, 1, 'no refetch inside the cool-down');

    await sleep(450);
    // A flood, concurrent and sequential: one refetch, then the cool-down again.
    const flood = await Promise.allSettled(Array.from({ length: 25 }, () => verify(bogus)));
    assert.ok(flood.every((r) => r.status === 'rejected' && (r.reason as VerifyError).code === 'unknown_key'));
    for (let i = 0; i < 25; i++) await refusal(verify(bogus), 'unknown_key');
    assert.equal(server.requests.jwks, 2, 'exactly one refetch');

    await sleep(450);
    await refusal(verify(bogus), 'unknown_key');
    assert.equal(server.requests.jwks, 3, 'one more once the cool-down is over');
    assert.equal(server.requests.discovery, 1);
  });

  it('with the default cool-down (30 s) a flood of unknown kids causes no refetch after a fetch', async () => {
    const verify = createVerifier(opts());
    await verify(await server.sign());
    const bogus = await server.sign({}, { kid: 'bogus' });
    await Promise.allSettled(Array.from({ length: 100 }, () => verify(bogus)));
    assert.equal(server.requests.jwks, 1);
  });

  it('key rotation: a new kid appearing in the JWKS is picked up', async () => {
    const verify = createVerifier(opts({ cooldownDuration: 100 }));
    const oldKid = server.kid;
    const oldToken = await server.sign();
    await verify(oldToken);
    const newKid = await server.rotate();
    assert.notEqual(newKid, oldKid);
    assert.equal(server.kid, newKid);
    await sleep(150);
    const claims = await verify(await server.sign());
    assert.equal(claims.sub, 'acme:alice');
    assert.equal(server.requests.jwks, 2);
    // The old key is still published (overlap): its tokens still verify, without another fetch.
    await verify(oldToken);
    assert.equal(server.requests.jwks, 2);
  });

  it('key rotation: a key that has left the JWKS stops verifying once the cache is refreshed', async () => {
    const verify = createVerifier(opts({ cacheMaxAge: 100 }));
    const oldKid = server.kid;
    const oldToken = await server.sign();
    await verify(oldToken);
    await server.rotate();
    server.setPublished(oldKid, false);
    await sleep(150);
    await refusal(verify(oldToken), 'unknown_key');
    await verify(await server.sign());
  });

  it('a key signed with but not yet published is unknown_key', async () => {
    const verify = createVerifier(opts());
    const hidden = await server.rotate({ publish: false });
    await refusal(verify(await server.sign({}, { kid: hidden })), 'unknown_key');
  });

  for (const alg of ['EdDSA', 'RS256', 'PS256'] satisfies TestSigningAlg[]) {
    it(`verifies ${alg} keys by default`, async () => {
      const other = await startJwksServer({ alg });
      try {
        await createVerifier({ issuer: other.issuer, audience: other.audience })(await other.sign());
      } finally {
        await other.close();
      }
    });
  }

  it('discovery failing: jwks_unavailable (503), then retried on a later call', async () => {
    const verify = createVerifier(opts({ retryDelay: 0 }));
    const token = await server.sign();
    server.failNext('discovery', 2);
    const err = await refusal(verify(token), 'jwks_unavailable');
    assert.equal(err.status, 503);
    await refusal(verify(token), 'jwks_unavailable');
    await verify(token);
    assert.equal(server.requests.discovery, 3);
    await verify(token);
    assert.equal(server.requests.discovery, 3, 'cached once it succeeded');
  });

  it('JWKS failing: jwks_unavailable, then retried', async () => {
    const verify = createVerifier(opts({ retryDelay: 0 }));
    const token = await server.sign();
    server.failNext('jwks', 1, 500);
    await refusal(verify(token), 'jwks_unavailable');
    await verify(token);
    assert.equal(server.requests.jwks, 2);
  });

  it('after a failure, retryDelay keeps a flood of tokens from hammering Concord', async () => {
    const verify = createVerifier(opts({ retryDelay: 300 }));
    const token = await server.sign();
    server.failNext('discovery', 1);
    await refusal(verify(token), 'jwks_unavailable');
    await Promise.allSettled(Array.from({ length: 50 }, () => verify(token)));
    for (let i = 0; i < 20; i++) await refusal(verify(token), 'jwks_unavailable');
    assert.equal(server.requests.discovery, 1);
    await sleep(350);
    await verify(token);
    assert.equal(server.requests.discovery, 2);
  });

  it('a discovery document naming another issuer is refused: jwks_unavailable', async () => {
    server.discoveryOverrides.issuer = 'https://evil.example';
    const verify = createVerifier(opts({ retryDelay: 0 }));
    await refusal(verify(await server.sign()), 'jwks_unavailable');
    server.discoveryOverrides.jwks_uri = 42;
    server.discoveryOverrides.issuer = server.issuer;
    await refusal(verify(await server.sign()), 'jwks_unavailable');
  });

  it('a JWKS that is not a JWKS: jwks_unavailable', async () => {
    server.discoveryOverrides.jwks_uri = `${server.issuer}/.well-known/openid-configuration`;
    const verify = createVerifier(opts());
    await refusal(verify(await server.sign()), 'jwks_unavailable');
  });

  it('Concord unreachable: jwks_unavailable', async () => {
    const verify = createVerifier(opts({ timeoutDuration: 500 }));
    const token = await server.sign();
    await server.close();
    await refusal(verify(token), 'jwks_unavailable');
    server = await startJwksServer(); // for afterEach
  });

  it('uses the injected fetch for discovery and the JWKS, with the timeout signal', async () => {
    const seen: string[] = [];
    const spy: FetchLike = (url, init) => {
      seen.push(url);
      assert.ok(init.signal instanceof AbortSignal);
      assert.equal(init.redirect, 'manual');
      return fetch(url, init);
    };
    const verify = createVerifier(opts({ fetch: spy }));
    await verify(await server.sign());
    assert.deepEqual(seen, [server.discoveryUrl, server.jwksUri]);
  });

  it('a hanging Concord is given up after timeoutDuration', async () => {
    const hanging: FetchLike = (_url, init) =>
      new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
    const verify = createVerifier(opts({ fetch: hanging, timeoutDuration: 100 }));
    const started = Date.now();
    await refusal(verify(await server.sign()), 'jwks_unavailable');
    assert.ok(Date.now() - started < 2000);
  });

  it('warmUp fetches discovery and keys ahead of the first token, and reports an outage', async () => {
    const verify = createVerifier(opts());
    await verify.warmUp();
    assert.deepEqual(server.requests, { discovery: 1, jwks: 1, other: 0 });
    await verify.warmUp();
    await verify(await server.sign());
    assert.deepEqual(server.requests, { discovery: 1, jwks: 1, other: 0 });

    const down = createVerifier({ issuer: 'http://127.0.0.1:9', audience: 'x', timeoutDuration: 500 });
    await refusal(down.warmUp(), 'jwks_unavailable');
  });
});
