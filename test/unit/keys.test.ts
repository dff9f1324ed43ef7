import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { KeyManager } from '../../src/keys/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { MemoryStore } from '../../src/store/index.ts';

function setup(options: { rotateEvery?: number } = {}) {
  let now = 1_800_000_000;
  const store = new MemoryStore();
  const secrets = createSecretBox(randomBytes(32).toString('base64'));
  const make = () => new KeyManager({ store, secrets, algorithm: 'ES256', activationDelay: 900, maxTokenTtl: 300, now: () => now, ...options });
  return { store, secrets, make, advance: (s: number) => (now += s) };
}

const states = (m: KeyManager) => m.views().map((v) => v.state);

describe('signing keys', () => {
  it('creates one current key at first start and keeps it sealed in the store', async () => {
    const { store, make } = setup();
    const keys = make();
    await keys.init();
    assert.deepEqual(states(keys), ['current']);
    const [stored] = await store.listRecords<{ sealedPrivateJwk: string }>('signing-keys');
    assert.match(stored!.value.sealedPrivateJwk, /^v2\./, 'encrypted at rest');
    const again = make();
    await again.init();
    assert.equal(again.views()[0]!.kid, keys.views()[0]!.kid, 'a restart keeps the key');
  });

  it('shares cookie keys and a separate pairwise salt across instances, sealed in the store', async () => {
    const { store, make } = setup();
    const a = make();
    const b = make();
    await Promise.all([a.init(), b.init()]);
    assert.deepEqual(b.cookieKeys(), a.cookieKeys());
    assert.equal(b.pairwiseSalt(), a.pairwiseSalt());
    assert.ok(a.pairwiseSalt().length >= 43, '256 bits');
    assert.ok(!a.cookieKeys().includes(a.pairwiseSalt()), 'the salt is not a cookie key');
    for (const collection of ['cookie-keys', 'pairwise-salt']) {
      const [record] = await store.listRecords<string[]>(collection);
      assert.match(record!.value[0]!, /^v2\./, `${collection} encrypted at rest`);
    }
  });

  it('takes the first cookie key as the pairwise salt of a store from before the salt, so pairwise subs stay', async () => {
    const { store, secrets, make } = setup();
    // The store as an earlier version left it: cookie keys (the old pairwise secret), no salt.
    const oldCookieKey = randomBytes(32).toString('base64url');
    await store.putRecord('cookie-keys', 'current', [secrets.seal(oldCookieKey, 'cookie-keys')]);
    await store.incr('cookie-keys:init');
    const upgraded = make();
    await upgraded.init();
    assert.deepEqual(upgraded.cookieKeys(), [oldCookieKey]);
    assert.equal(upgraded.pairwiseSalt(), oldCookieKey);
    const again = make();
    await again.init();
    assert.equal(again.pairwiseSalt(), oldCookieKey, 'kept in the store from then on');
  });

  it('publishes a rotated key first, signs with it after the delay, drops the old one after its tokens expired', async () => {
    const { make, advance } = setup();
    const keys = make();
    await keys.init();
    const first = keys.views()[0]!.kid;
    const next = await keys.rotate();
    assert.equal(next.state, 'next');
    let set = keys.keySet();
    assert.equal(set.jwks.keys[0]!.kid, first, 'the current key stays first (signs)');
    assert.deepEqual(set.jwks.keys[1]!.key_ops, ['verify'], 'the next key is published, verify only');

    advance(901);
    assert.deepEqual(keys.views().map((v) => [v.kid, v.state]), [[next.kid, 'current'], [first, 'retiring']]);
    set = keys.keySet();
    assert.equal(set.jwks.keys[0]!.kid, next.kid);
    assert.equal(set.jwks.keys[0]!.key_ops, undefined);
    assert.deepEqual(set.jwks.keys[1]!.key_ops, ['verify']);

    advance(300);
    assert.equal(await keys.sweep(), 0, 'still within the longest token lifetime + skew');
    advance(61);
    assert.equal(await keys.sweep(), 1);
    assert.deepEqual(keys.views().map((v) => v.kid), [next.kid]);
  });

  it('lets every instance agree on the signing key through the store', async () => {
    const { make, advance } = setup();
    const a = make();
    const b = make();
    await a.init();
    await b.init();
    const rotated = await a.rotate();
    await b.reload();
    assert.equal(b.keySet().fingerprint, a.keySet().fingerprint);
    advance(1000);
    assert.equal(b.keySet().jwks.keys[0]!.kid, rotated.kid);
  });

  it('rotates on schedule exactly once per period across instances', async () => {
    const { make, advance } = setup({ rotateEvery: 30 * 86400 });
    const a = make();
    const b = make();
    await a.init();
    await b.init();
    assert.equal(await a.rotateIfDue(), false);
    advance(30 * 86400 + 1);
    const results = await Promise.all([a.rotateIfDue(), b.rotateIfDue()]);
    assert.deepEqual(results.sort(), [false, true]);
    await a.reload();
    assert.equal(a.views().length, 2);
  });

  it('never exposes private key material in views', async () => {
    const { make } = setup();
    const keys = make();
    await keys.init();
    assert.doesNotMatch(JSON.stringify(keys.views()), /"d"|sealed/);
  });
});
