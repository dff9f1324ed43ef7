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
  it('releases an own-domain email as the upstream verified it, with its domain in canonical form', () => {
    assert.deepEqual(released('bob@acme.example'), { email: 'bob@acme.example', email_verified: true });
    assert.deepEqual(released('Bob@ACME.Example'), { email: 'Bob@acme.example', email_verified: true });
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
      'bob@acme.example..',
      'bob@ acme.example',
      'bob@acme.example@evil.com',
      'acme.example',
      'bob@',
      '',
      'bob@аcme.example', // Cyrillic а: another domain (xn--cme-5cd.example)
      'bob@acme.example/x',
      'bob@@acme.example',
    ]) {
      assert.deepEqual(released(email), { email: undefined, email_verified: undefined }, email);
    }
  });

  it('reads every spelling of an own domain as that domain (UTS-46), and releases the one canonical form', () => {
    // The relying party gets the form Concord compared, so no reader can take it for another domain.
    for (const email of ['bob@acme.example.', 'bob@ＡＣＭＥ.example', 'bob@acme\u3002example', 'bob@ACME.EXAMPLE.']) {
      assert.deepEqual(released(email), { email: 'bob@acme.example', email_verified: true }, email);
    }
    const m = compileMapping({ rules: [] }, { participantId: 'kiwi', domains: ['kiwi.example'] });
    assert.deepEqual(claims(m.apply({ email: 'bob@\u212Aiwi.example', email_verified: true })), { email: 'bob@kiwi.example', email_verified: true });
    const idn = compileMapping({ rules: [] }, { participantId: 'b', domains: ['Bücher.example'] });
    assert.deepEqual(claims(idn.apply({ email: 'Anna@BÜCHER.example.', email_verified: true })), { email: 'Anna@xn--bcher-kva.example', email_verified: true });
  });

  it('holds every other released claim that carries an address to the same domains (preferred_username, upn, lists)', () => {
    const m = compileMapping({ rules: [], passthrough: ['preferred_username', 'upn', 'emails', 'name', 'groups'] }, CTX);
    const out = claims(
      m.apply({
        preferred_username: 'ceo@globex.example',
        upn: 'Bob@ACME.example',
        emails: ['bob@acme-corp.example', 'bob@gmail.com', 42],
        name: 'Bob (bob@gmail.com)',
        groups: ['staff', 'admins@globex.example'],
      }),
    );
    assert.deepEqual(out, { upn: 'Bob@acme.example', emails: ['bob@acme-corp.example', 42], name: 'Bob (bob@gmail.com)', groups: ['staff'] });
    // Not even kept when foreign emails are: no _verified flag could tell a relying party.
    const kept = compileMapping({ rules: [], keepForeignEmailUnverified: true, passthrough: ['preferred_username'] }, CTX);
    assert.deepEqual(claims(kept.apply({ preferred_username: 'ceo@globex.example' })), {});
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
