import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createSecretBox } from '../../src/secrets/index.ts';

describe('secrets at rest', () => {
  const key = randomBytes(32).toString('base64');

  it('seals with AES-256-GCM for a context and opens again', () => {
    const box = createSecretBox(key);
    const sealed = box.seal('upstream-secret', 'participant:acme:upstream.clientSecret');
    assert.match(sealed, /^v2\./);
    assert.ok(!sealed.includes('upstream-secret'));
    assert.notEqual(box.seal('upstream-secret', 'participant:acme:upstream.clientSecret'), sealed, 'a fresh IV each time');
    assert.equal(box.open(sealed, 'participant:acme:upstream.clientSecret'), 'upstream-secret');
  });

  it('does not open a value in another context: a secret copied to another record stays shut', () => {
    const box = createSecretBox(key);
    const sealed = box.seal('acme-secret', 'participant:acme:upstream.clientSecret');
    assert.throws(() => box.open(sealed, 'participant:evil:upstream.clientSecret'), { code: 'secret_unreadable' });
    assert.throws(() => box.open(box.seal('{"d":"..."}', 'signing-key:k1'), 'signing-key:k2'), { code: 'secret_unreadable' });
  });

  it('still reads v1 values, sealed before contexts, in any context', () => {
    // v1 as the previous version wrote it: AES-256-GCM without additional data.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(key, 'base64'), iv);
    const ciphertext = Buffer.concat([cipher.update('old-secret', 'utf8'), cipher.final()]);
    const v1 = ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
    assert.equal(createSecretBox(key).open(v1, 'cookie-keys'), 'old-secret');
  });

  it('refuses a tampered value and a wrong key', () => {
    const sealed = createSecretBox(key).seal('x', 'c');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('y').toString('base64url');
    assert.throws(() => createSecretBox(key).open(parts.join('.'), 'c'), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(randomBytes(32).toString('base64')).open(sealed, 'c'), { code: 'secret_unreadable' });
  });

  it('with a key, refuses a value stored in the clear (one Concord did not write)', () => {
    const planted = createSecretBox(undefined).seal('attacker-chosen-private-key', 'signing-key:k1');
    assert.match(planted, /^plain\./);
    assert.throws(() => createSecretBox(key).open(planted, 'signing-key:k1'), { code: 'secret_not_sealed' });
    assert.equal(createSecretBox(undefined).open(planted, 'signing-key:k1'), 'attacker-chosen-private-key', 'the embedded store, without a key, reads its own');
  });

  it('refuses a shortened authentication tag', () => {
    const parts = createSecretBox(key).seal('x', 'c').split('.');
    parts[2] = Buffer.from(parts[2]!, 'base64url').subarray(0, 4).toString('base64url');
    assert.throws(() => createSecretBox(key).open(parts.join('.'), 'c'), { code: 'secret_unreadable' });
  });

  it('compresses on request (z2, plainz.): smaller, bound to its context, and what was sealed before still opens', () => {
    const text = JSON.stringify({ claims: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`claim_${i}`, `value of claim ${i}`])), token: randomBytes(300).toString('base64url') });
    for (const box of [createSecretBox(key), createSecretBox(undefined)]) {
      const plain = box.seal(text, 'session:s1:upstream');
      const packed = box.seal(text, 'session:s1:upstream', { compress: true });
      assert.match(packed, box.encrypting ? /^z2\./ : /^plainz\./);
      assert.ok(packed.length < plain.length * 0.8, `${packed.length} < 0.8 x ${plain.length}`);
      assert.equal(box.open(packed, 'session:s1:upstream'), text);
      assert.equal(box.open(plain, 'session:s1:upstream'), text);
    }
    const packed = createSecretBox(key).seal(text, 'session:s1:upstream', { compress: true });
    assert.throws(() => createSecretBox(key).open(packed, 'session:s2:upstream'), { code: 'secret_unreadable' });
    const parts = packed.split('.');
    parts[3] = `A${parts[3]!.slice(1)}`;
    assert.throws(() => createSecretBox(key).open(parts.join('.'), 'session:s1:upstream'), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(key).open(createSecretBox(undefined).seal(text, 'c', { compress: true }), 'c'), { code: 'secret_not_sealed' });
  });

  it("compresses with the tokens' dictionary on request (z3, plainz3.): smaller than z2 for an upstream's ID token and claims, bound to its context", () => {
    const header = JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k-2026' });
    const payload = JSON.stringify({ iss: 'https://idp.acme.example', sub: randomBytes(12).toString('hex'), aud: 'concord', exp: 1_800_000_600, iat: 1_800_000_000, auth_time: 1_799_999_990, nonce: randomBytes(16).toString('base64url'), email: 'ada@acme.example', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', groups: ['engineering'] });
    const text = JSON.stringify({ logout: { protocol: 'oidc', idTokenHint: { jws: [header, payload, randomBytes(256).toString('base64url')] }, sid: 's1' } });
    for (const box of [createSecretBox(key), createSecretBox(undefined)]) {
      const z2 = box.seal(text, 'session:s1:upstream', { compress: true });
      const z3 = box.seal(text, 'session:s1:upstream', { compress: 'tokens' });
      assert.match(z3, box.encrypting ? /^z3\./ : /^plainz3\./);
      assert.ok(z3.length < z2.length - 80, `${z3.length} vs ${z2.length}`);
      assert.equal(box.open(z3, 'session:s1:upstream'), text);
      assert.equal(box.open(z2, 'session:s1:upstream'), text);
    }
    assert.throws(() => createSecretBox(key).open(createSecretBox(key).seal(text, 'session:s1:upstream', { compress: 'tokens' }), 'session:s2:upstream'), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(key).open(createSecretBox(undefined).seal(text, 'c', { compress: 'tokens' }), 'c'), { code: 'secret_not_sealed' });
  });

  it('seals as bytes (sealBytes): a quarter smaller than the text, every form opens, bound to its context', () => {
    const text = JSON.stringify({ claims: { email: 'ada@acme.example' }, token: randomBytes(300).toString('base64url') });
    for (const box of [createSecretBox(key), createSecretBox(undefined)]) {
      for (const compress of [undefined, true, 'tokens'] as const) {
        const options = compress === undefined ? {} : { compress };
        const bytes = box.sealBytes(text, 'session:s1:upstream', options);
        assert.notEqual(bytes[0], 0x22, 'never the start of a JSON string');
        assert.ok(bytes.length < box.seal(text, 'session:s1:upstream', options).length * 0.8);
        assert.equal(box.openBytes(bytes, 'session:s1:upstream'), text);
      }
    }
    const sealed = createSecretBox(key).sealBytes(text, 'session:s1:upstream', { compress: 'tokens' });
    assert.throws(() => createSecretBox(key).openBytes(sealed, 'session:s2:upstream'), { code: 'secret_unreadable' });
    const tampered = Buffer.from(sealed);
    tampered[40] = tampered[40]! ^ 1;
    assert.throws(() => createSecretBox(key).openBytes(tampered, 'session:s1:upstream'), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(key).openBytes(Buffer.from([0x7f, 1, 2]), 'c'), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(key).openBytes(createSecretBox(undefined).sealBytes(text, 'c'), 'c'), { code: 'secret_not_sealed' });
    assert.throws(() => createSecretBox(undefined).openBytes(sealed, 'session:s1:upstream'), { code: 'secrets_key_missing' });
  });

  it('refuses a key of the wrong size', () => {
    assert.throws(() => createSecretBox(randomBytes(16).toString('base64')), { code: 'invalid_secrets_key' });
  });
});
