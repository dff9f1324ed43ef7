import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMapping, type MappingConfig, type MappingOutcome } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example', 'acme-corp.example'] };

function claims(outcome: MappingOutcome): Record<string, unknown> {
  assert.equal(outcome.ok, true);
  return (outcome as { claims: Record<string, unknown> }).claims;
}

/** `verified: null` stands for an upstream that sends no email_verified (null claims are skipped). */
function released(email: unknown, config: Partial<MappingConfig> = {}, verified: unknown = true) {
  const out = claims(compileMapping({ rules: [], ...config }, CTX).apply({ email, email_verified: verified }));
  return { email: out.email, email_verified: out.email_verified };
}

describe('mapping email domain policy', () => {
  it('releases an own-domain email as the upstream verified it, case-insensitively', () => {
    assert.deepEqual(released('bob@acme.example'), { email: 'bob@acme.example', email_verified: true });
    assert.deepEqual(released('Bob@ACME.Example'), { email: 'Bob@ACME.Example', email_verified: true });
    assert.deepEqual(released('bob@acme-corp.example'), { email: 'bob@acme-corp.example', email_verified: true });
    assert.deepEqual(released('bob@acme.example', {}, false), { email: 'bob@acme.example', email_verified: false });
    assert.deepEqual(released('bob@acme.example', {}, 'true'), { email: 'bob@acme.example', email_verified: true });
    assert.deepEqual(released('bob@acme.example', {}, 'yes'), { email: 'bob@acme.example', email_verified: false });
    assert.deepEqual(released('bob@acme.example', {}, null), { email: 'bob@acme.example', email_verified: undefined });
  });

  it('drops a foreign email with email_verified: exact domain match, never a suffix', () => {
    for (const email of [
      'bob@gmail.com',
      'bob@evil-acme.example',
      'bob@xacme.example',
      'bob@sub.acme.example',
      'bob@acme.example.evil.com',
      'bob@acme.example.',
      'bob@ acme.example',
      'bob@acme.example@evil.com',
      'acme.example',
      'bob@',
      '',
      'bob@ａｃｍｅ.example', // fullwidth letters
      'bob@аcme.example', // Cyrillic а
    ]) {
      assert.deepEqual(released(email), { email: undefined, email_verified: undefined }, email);
    }
  });

  it('does not fold Unicode case: the Kelvin sign is not "k"', () => {
    const m = compileMapping({ rules: [] }, { participantId: 'kiwi', domains: ['kiwi.example'] });
    const spoof = 'bob@\u212Aiwi.example';
    assert.equal(spoof.toLowerCase(), 'bob@kiwi.example', 'what a Unicode lower-casing compare would accept');
    assert.deepEqual(claims(m.apply({ email: spoof, email_verified: true })), {});
    assert.deepEqual(claims(m.apply({ email: 'bob@KIWI.example', email_verified: true })), { email: 'bob@KIWI.example', email_verified: true });
  });

  it('keeps a foreign email unverified when the mapping opts in, whatever the upstream or the rules say', () => {
    const config = { keepForeignEmailUnverified: true, rules: [{ claim: 'email_verified', value: true }] };
    assert.deepEqual(released('bob@gmail.com', config), { email: 'bob@gmail.com', email_verified: false });
    assert.deepEqual(released('bob@gmail.com', config, null), { email: 'bob@gmail.com', email_verified: false });
    assert.deepEqual(released('bob@acme.example', config, false), { email: 'bob@acme.example', email_verified: true });
  });

  it('applies to an email set by a rule, and after every rule', () => {
    const m = compileMapping(
      { rules: [{ claim: 'email', from: 'upn' }, { claim: 'email_verified', value: true }, { claim: 'email', cel: "claims.alt" , when: 'has(claims.alt)' }] },
      CTX,
    );
    assert.deepEqual(claims(m.apply({ upn: 'bob@acme.example' })), { email: 'bob@acme.example', email_verified: true });
    assert.deepEqual(claims(m.apply({ upn: 'bob@acme.example', alt: 'bob@gmail.com' })), {});
    assert.deepEqual(claims(m.apply({ upn: 'bob@partner.example', email: 'bob@acme.example' })), {});
  });

  it('drops email_verified without an email, and an email that is not a string', () => {
    assert.deepEqual(released(undefined), { email: undefined, email_verified: undefined });
    assert.deepEqual(released(['bob@acme.example']), { email: undefined, email_verified: undefined });
    assert.deepEqual(released(42, { keepForeignEmailUnverified: true }), { email: undefined, email_verified: undefined });
  });

  it('matches configured domains whatever their case or surrounding space', () => {
    const m = compileMapping({ rules: [] }, { participantId: 'x', domains: [' X.Example '] });
    assert.deepEqual(claims(m.apply({ email: 'a@x.example', email_verified: true })), { email: 'a@x.example', email_verified: true });
  });
});
