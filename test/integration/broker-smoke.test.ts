import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { signedIn, startFederation, type Federation } from '../support/federation.ts';

describe('brokered login, smoke', () => {
  let fed: Federation;
  before(async () => {
    fed = await startFederation();
  });
  after(() => fed.close());

  it('signs alice in through Acme and bob through Globex, with prefixed subjects', async () => {
    const alice = await signedIn(fed, 'alice@acme.example');
    const claims = alice.tokens.claims()!;
    assert.equal(claims.sub, 'acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001');
    assert.equal(claims.idp, 'acme');
    assert.equal(claims.email, 'alice@acme.example');
    assert.equal(claims.email_verified, true);
    const jwks = createRemoteJWKSet(new URL(`${fed.concord.issuer}/jwks`));
    const at = await jwtVerify(alice.tokens.access_token, jwks, { issuer: fed.concord.issuer, typ: 'at+jwt' });
    assert.equal(at.payload.sub, claims.sub);
    assert.equal(at.payload.idp, 'acme');
    const bob = await signedIn(fed, 'bob@globex.example');
    assert.equal(bob.tokens.claims()!.sub, 'globex:f4e1b9c0-0b6d-4c55-9c3a-globex000001');
  });
});
