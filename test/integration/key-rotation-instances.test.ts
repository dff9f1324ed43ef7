import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { createStore } from '../../src/store/index.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { startConcord, type TestConcord } from '../support/concord.ts';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789' };
const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };

/** Two instances on one Redis sign with one key set and follow a rotation within a second. */
describe('key rotation across instances', () => {
  const prefix = `keys-${randomBytes(4).toString('hex')}:`;
  const secretsKey = randomBytes(32).toString('base64');
  let a: TestConcord;
  let b: TestConcord;

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
    a = await start();
    b = await start();
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await dropRedisPrefix(prefix);
  });

  it('shares one signing key from the store', async () => {
    assert.deepEqual(await kids(a), await kids(b));
    assert.equal(decodeProtectedHeader(await token(a)).kid, decodeProtectedHeader(await token(b)).kid);
  });

  it('publishes a key rotated on one instance on the other within a second, then both sign with it', async () => {
    const response = await fetch(`${a.adminUrl}/admin/v1/keys/rotate`, { method: 'POST', headers: ADMIN });
    const { key } = (await response.json()) as { key: { kid: string } };
    const started = Date.now();
    while (!(await kids(b)).includes(key.kid)) {
      assert.ok(Date.now() - started < 1500, 'instance B publishes the new key within a second');
      await new Promise((r) => setTimeout(r, 50));
    }
    const deadline = Date.now() + 6000;
    while (decodeProtectedHeader(await token(b)).kid !== key.kid) {
      assert.ok(Date.now() < deadline, 'B signs with the new key after the delay');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(decodeProtectedHeader(await token(a)).kid, key.kid);
  });

  it('keeps the keys across a restart (same store, same secrets key)', async () => {
    const before = await kids(a);
    await a.close();
    a = await start();
    assert.deepEqual(await kids(a), before);
  });
});
