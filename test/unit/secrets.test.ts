import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createSecretBox } from '../../src/secrets/index.ts';

describe('secrets at rest', () => {
  const key = randomBytes(32).toString('base64');

  it('seals with AES-256-GCM and opens again', () => {
    const box = createSecretBox(key);
    const sealed = box.seal('upstream-secret');
    assert.match(sealed, /^v1\./);
    assert.ok(!sealed.includes('upstream-secret'));
    assert.notEqual(box.seal('upstream-secret'), sealed, 'a fresh IV each time');
    assert.equal(box.open(sealed), 'upstream-secret');
  });

  it('refuses a tampered value and a wrong key', () => {
    const sealed = createSecretBox(key).seal('x');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('y').toString('base64url');
    assert.throws(() => createSecretBox(key).open(parts.join('.')), { code: 'secret_unreadable' });
    assert.throws(() => createSecretBox(randomBytes(32).toString('base64')).open(sealed), { code: 'secret_unreadable' });
  });

  it('with a key, refuses a value stored in the clear (one Concord did not write)', () => {
    const planted = createSecretBox(undefined).seal('attacker-chosen-private-key');
    assert.match(planted, /^plain\./);
    assert.throws(() => createSecretBox(key).open(planted), { code: 'secret_not_sealed' });
    assert.equal(createSecretBox(undefined).open(planted), 'attacker-chosen-private-key', 'the embedded store, without a key, reads its own');
  });

  it('refuses a key of the wrong size', () => {
    assert.throws(() => createSecretBox(randomBytes(16).toString('base64')), { code: 'invalid_secrets_key' });
  });
});
