import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { KeyManager, type SigningAlgorithm } from '../../src/keys/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { MemoryStore } from '../../src/store/index.ts';

function setup(options: { rotateEvery?: number; algorithms?: SigningAlgorithm[] } = {}) {
  let now = 1_800_000_000;
  const store = new MemoryStore();
  const secrets = createSecretBox(randomBytes(32).toString('base64'));
  const make = (algorithms: SigningAlgorithm[] = options.algorithms ?? ['ES256']) =>
    new KeyManager({ store, secrets, activationDelay: 900, maxTokenTtl: 300, now: () => now, ...options, algorithms });
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
    const [next] = await keys.rotate();
    assert.equal(next!.state, 'next');
    let set = keys.keySet();
    assert.equal(set.jwks.keys[0]!.kid, first, 'the current key stays first (signs)');
    assert.deepEqual(set.jwks.keys[1]!.key_ops, ['verify'], 'the next key is published, verify only');

    advance(901);
    assert.deepEqual(keys.views().map((v) => [v.kid, v.state]), [[next!.kid, 'current'], [first, 'retiring']]);
    set = keys.keySet();
    assert.equal(set.jwks.keys[0]!.kid, next!.kid);
    assert.equal(set.jwks.keys[0]!.key_ops, undefined);
    assert.deepEqual(set.jwks.keys[1]!.key_ops, ['verify']);

    advance(300);
    assert.equal(await keys.sweep(), 0, 'still within the longest token lifetime + skew');
    advance(61);
    assert.equal(await keys.sweep(), 1);
    assert.deepEqual(keys.views().map((v) => v.kid), [next!.kid]);
  });

  it('lets every instance agree on the signing key through the store', async () => {
    const { make, advance } = setup();
    const a = make();
    const b = make();
    await a.init();
    await b.init();
    const [rotated] = await a.rotate();
    await b.reload();
    assert.equal(b.keySet().fingerprint, a.keySet().fingerprint);
    advance(1000);
    assert.equal(b.keySet().jwks.keys[0]!.kid, rotated!.kid);
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

  it('keeps one current key per offered algorithm, each able to sign, the rest verify-only', async () => {
    const { make } = setup({ algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] });
    const a = make();
    const b = make();
    await Promise.all([a.init(), b.init()]);
    assert.deepEqual(a.views().map((v) => v.alg).sort(), ['ES256', 'EdDSA', 'PS256', 'RS256'], 'one key each, even with two instances starting at once');
    assert.equal(b.keySet().fingerprint, a.keySet().fingerprint);
    const { keys } = a.keySet().jwks;
    assert.deepEqual(keys.map((k) => [k.alg, k.kty, k.key_ops]), [['RS256', 'RSA', undefined], ['PS256', 'RSA', undefined], ['ES256', 'EC', undefined], ['EdDSA', 'OKP', undefined]]);
    assert.deepEqual(a.algorithmViews().map((v) => [v.alg, v.offered, v.current !== undefined]), [['RS256', true, true], ['PS256', true, true], ['ES256', true, true], ['EdDSA', true, true]]);
    assert.equal(a.signingJwk('PS256')!.kid, keys[1]!.kid);
  });

  it('rotates every algorithm together, each with its own overlap', async () => {
    const { make, advance } = setup({ algorithms: ['RS256', 'ES256'] });
    const keys = make();
    await keys.init();
    const before = keys.algorithmViews();
    const rotated = await keys.rotate();
    assert.deepEqual(rotated.map((v) => [v.alg, v.state]), [['RS256', 'next'], ['ES256', 'next']]);
    assert.equal(new Set(rotated.map((v) => v.activatesAt)).size, 1, 'they sign from the same moment');
    assert.deepEqual(keys.keySet().jwks.keys.slice(0, 2).map((k) => k.kid), before.map((v) => v.current), 'the old keys sign until then');
    advance(901);
    const after = keys.algorithmViews();
    assert.deepEqual(after.map((v) => [v.alg, v.current, v.retiring]), [['RS256', rotated[0]!.kid, [before[0]!.current]], ['ES256', rotated[1]!.kid, [before[1]!.current]]]);
    advance(361);
    assert.equal(await keys.sweep(), 2, 'both old keys leave once their tokens have expired');
  });

  it('upgrades a single-algorithm store: the ES256 key keeps signing, an RS256 key is made and signs at once', async () => {
    const { make, advance } = setup();
    const old = make(['ES256']);
    await old.init();
    const es256 = old.views()[0]!.kid;
    const upgraded = make(['RS256', 'ES256']);
    await upgraded.init();
    const views = upgraded.algorithmViews();
    assert.equal(views.find((v) => v.alg === 'ES256')!.current, es256);
    assert.ok(views.find((v) => v.alg === 'RS256')!.current, 'an RS256 key signs');
    advance(3600);
    assert.equal(await upgraded.sweep(), 0, 'no key of the old ring is dropped');
  });

  it('heals a ring that lost an algorithm’s keys (an earlier release sweeping them in a rolling upgrade)', async () => {
    const { store, make } = setup({ algorithms: ['RS256', 'ES256'] });
    const keys = make();
    await keys.init();
    const es256 = keys.algorithmViews().find((v) => v.alg === 'ES256')!.current!;
    await store.deleteRecord('signing-keys', es256);
    await keys.reload();
    assert.equal(keys.signingJwk('ES256'), undefined, 'no ES256 key left');
    assert.deepEqual(await keys.addMissing(), ['ES256']);
    assert.ok(keys.signingJwk('ES256'), 'an ES256 key signs again');
    assert.deepEqual(await keys.addMissing(), [], 'nothing more to add');
  });

  it('keeps the keys of an algorithm no longer offered published, verify-only, until a rotation has outlived their tokens', async () => {
    const { make, advance } = setup();
    const before = make(['RS256', 'EdDSA']);
    await before.init();
    const eddsa = before.views().find((v) => v.alg === 'EdDSA')!.kid;
    const after = make(['RS256']);
    await after.init();
    const published = after.keySet().jwks.keys.find((k) => k.kid === eddsa);
    assert.deepEqual(published?.key_ops, ['verify']);
    assert.equal(after.signingJwk('EdDSA'), undefined);
    assert.deepEqual(after.algorithmViews().map((v) => [v.alg, v.offered, v.retiring]), [['RS256', true, []], ['EdDSA', false, [eddsa]]]);
    await after.rotate();
    advance(901 + 361);
    await after.sweep();
    assert.ok(!after.views().some((v) => v.kid === eddsa), 'gone after the rotation outlived its tokens');
  });
});
