import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader, importJWK, SignJWT } from 'jose';
import { KeyManager } from '../../src/keys/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { createStore } from '../../src/store/index.ts';
import { createVerifier } from '../../src/verify/index.ts';
import { freePort } from '../support/ports.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { startConcord, type TestConcord } from '../support/concord.ts';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };

/** Two instances on one Redis sign with one key set and follow a rotation: published everywhere before it signs. */
describe('key rotation across instances', () => {
  const prefix = `keys-${randomBytes(4).toString('hex')}:`;
  const secretsKey = randomBytes(32).toString('base64');
  let a: TestConcord;
  let b: TestConcord;
  let port: number;

  const start = async () =>
    startConcord({ store: await createStore({ url: 'redis://127.0.0.1:6379', prefix }), clients: [MACHINE], settings: { secretsKey, keys: { activationDelay: 2 } } });
  const token = async (instance: TestConcord) => {
    const response = await fetch(`${instance.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('machine:machine-secret-0123456789').toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    return ((await response.json()) as { access_token: string }).access_token;
  };
  const kids = async (instance: TestConcord) => ((await (await fetch(`${instance.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();

  before(async () => {
    port = await freePort();
    a = await start();
    b = await start();
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await dropRedisPrefix(prefix);
  });

  it('shares one signing key per algorithm from the store', async () => {
    assert.equal((await kids(a)).length, 2, 'RS256 and ES256');
    assert.deepEqual(await kids(a), await kids(b));
    assert.equal(decodeProtectedHeader(await token(a)).kid, decodeProtectedHeader(await token(b)).kid);
  });

  it('publishes the keys rotated on one instance on the other before they sign, then both sign with them', async () => {
    const response = await fetch(`${a.adminUrl}/admin/v1/keys/rotate`, { method: 'POST', headers: ADMIN });
    const { keys: rotated } = (await response.json()) as { keys: Array<{ kid: string; alg: string; activatesAt: string }> };
    assert.deepEqual(rotated.map((k) => k.alg), ['RS256', 'ES256']);
    const es256 = rotated.find((k) => k.alg === 'ES256')!.kid;
    // B learns of the rotation (the store's channel, or its periodic reload) and publishes every new
    // key; what matters is the order: published by B while B still signs with the old key.
    let published: string[] = [];
    while (!rotated.every((k) => published.includes(k.kid))) {
      published = await kids(b);
      if (!rotated.every((k) => published.includes(k.kid))) {
        assert.notEqual(decodeProtectedHeader(await token(b)).kid, es256, 'B must not sign with a key it does not publish');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // Then, after the activation delay, each signs with the new key (the test's timeout bounds the
    // wait). Each instance takes it up at its own next look at the key ring (once a second), so one
    // may still sign with the old key, published by both, for up to a second after the other.
    for (const instance of [b, a]) {
      while (decodeProtectedHeader(await token(instance)).kid !== es256) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(decodeProtectedHeader(await token(b)).kid, es256, 'B keeps signing with the new key');
    assert.deepEqual(await kids(a), await kids(b), 'one key set');
  });

  it('keeps the keys across a restart (same store, same secrets key)', async () => {
    const before = await kids(a);
    await a.close();
    a = await start();
    assert.deepEqual(await kids(a), before);
  });

  it('upgrades a store of the single-algorithm days: its ES256 key keeps signing and verifying, an RS256 key joins', async () => {
    const oldPrefix = `keys-old-${randomBytes(4).toString('hex')}:`;
    const store = await createStore({ url: 'redis://127.0.0.1:6379', prefix: oldPrefix });
    let upgraded: TestConcord | undefined;
    try {
      // The key ring an earlier release left: one ES256 key in the same collection, sealed alike.
      const old = new KeyManager({ store, secrets: createSecretBox(secretsKey), algorithms: ['ES256'], activationDelay: 2, maxTokenTtl: 300 });
      await old.init();
      const oldKey = old.signingJwk('ES256')!;
      const { key_ops: _ops, ...privateJwk } = oldKey;
      const issuedBefore = await new SignJWT({ client_id: 'machine', scope: 'openid' })
        .setProtectedHeader({ alg: 'ES256', kid: oldKey.kid!, typ: 'at+jwt' })
        .setIssuer(`http://127.0.0.1:${port}`)
        .setAudience(`http://127.0.0.1:${port}`)
        .setSubject('machine')
        .setIssuedAt()
        .setJti(randomBytes(8).toString('hex'))
        .setExpirationTime('5m')
        .sign(await importJWK(privateJwk, 'ES256'));

      upgraded = await startConcord({ port, store: await createStore({ url: 'redis://127.0.0.1:6379', prefix: oldPrefix }), clients: [MACHINE], settings: { secretsKey } });
      const published = ((await (await fetch(`${upgraded.issuer}/jwks`)).json()) as { keys: Array<{ kid: string; alg: string }> }).keys;
      assert.deepEqual(published.map((k) => k.alg).sort(), ['ES256', 'RS256']);
      assert.ok(published.some((k) => k.kid === oldKey.kid), 'the old ES256 key is still published');
      assert.equal(decodeProtectedHeader(await token(upgraded)).kid, oldKey.kid, 'and still signs access tokens');
      const verified = await createVerifier({ issuer: upgraded.issuer, audience: upgraded.issuer })(issuedBefore);
      assert.equal(verified.client_id, 'machine', 'a token signed before the upgrade verifies');
    } finally {
      await upgraded?.close();
      await store.close();
      await dropRedisPrefix(oldPrefix);
    }
  });
});
