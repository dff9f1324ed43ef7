import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMapping } from '../../src/mapping/index.ts';

/** An IdP may not get another organisation's address released as verified by dressing it up. */
describe('email policy: only plain addresses count as the participant’s own', () => {
  const mapping = compileMapping(undefined, { participantId: 'acme', domains: ['acme.example'] });
  const release = (email: string) => {
    const outcome = mapping.apply({ sub: 'u', email, email_verified: true });
    assert.ok(outcome.ok);
    return outcome.claims;
  };

  it('releases a plain address in its own domain as verified', () => {
    assert.deepEqual([release('alice.smith+x@acme.example').email, release('alice.smith+x@acme.example').email_verified], ['alice.smith+x@acme.example', true]);
  });

  for (const email of ['ceo@globex.example@acme.example', '"ceo@globex.example"@acme.example', 'ceo@globex.example\n@acme.example', 'a b@acme.example', '.alice@acme.example', 'alice..x@acme.example', `${'a'.repeat(65)}@acme.example`]) {
    it(`does not release ${JSON.stringify(email)} as verified`, () => {
      const claims = release(email);
      assert.equal(claims.email, undefined);
      assert.equal(claims.email_verified, undefined);
    });
  }
});
