import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
// The package subpath services install, resolved through package.json "exports".
import { createVerifier } from 'concord/verify';
import { signedIn, startFederation, RP, type Federation } from '../support/federation.ts';

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(150);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/**
 * Rotation with overlap, end to end: the next key is published before it signs, both keys verify
 * during the overlap, and the old one leaves once its tokens have expired.
 */
describe('signing key rotation', () => {
  let fed: Federation;
  let machine: oidc.Configuration;
  const jwksKids = async () => ((await (await fetch(`${fed.concord.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
  const ccToken = async (resource?: string) => (await oidc.clientCredentialsGrant(machine, resource ? { resource } : {})).access_token;

  before(async () => {
    fed = await startFederation({
      settings: {
        keys: { activationDelay: 2, retireGrace: 1 },
        tokens: { accessTokenTtl: 3, idTokenTtl: 3, clientCredentialsTtl: 3 },
        resourceServers: [
          { audience: 'https://orders.example', scopes: ['orders:read'] },
          { audience: 'https://billing.example', scopes: ['billing:read'] },
        ],
      },
      clients: [RP, { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] }],
    });
    machine = await oidc.discovery(new URL(fed.concord.issuer), 'machine', 'machine-secret-0123456789', undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(() => fed.close());

  it('publishes the next key of every algorithm first, signs with them after the delay, and retires the old ones', async () => {
    const verifier = createVerifier({ issuer: fed.concord.issuer, audience: fed.concord.issuer, cooldownDuration: 0 });
    const byAlg = async () => new Map(((await (await fetch(`${fed.concord.issuer}/jwks`)).json()) as { keys: Array<{ kid: string; alg: string }> }).keys.map((k) => [k.kid, k.alg]));
    const initial = await byAlg();
    assert.deepEqual([...initial.values()].sort(), ['ES256', 'RS256'], 'one key per offered algorithm');
    const oldToken = await ccToken();
    const oldKid = decodeProtectedHeader(oldToken).kid!;
    assert.equal(initial.get(oldKid), 'ES256', 'access tokens: keys.accessTokenAlgorithm');
    const oldRsaKid = [...initial].find(([, alg]) => alg === 'RS256')![0];
    const { tokens: before } = await signedIn(fed, 'alice@acme.example');
    assert.equal(decodeProtectedHeader(before.id_token!).kid, oldRsaKid, 'ID tokens: RS256 for a client naming none');
    assert.equal((await verifier(oldToken)).client_id, 'machine');

    const rotated = await fetch(`${fed.concord.adminUrl}/admin/v1/keys/rotate`, { method: 'POST', headers: ADMIN });
    assert.equal(rotated.status, 201);
    const { keys: next } = (await rotated.json()) as { keys: Array<{ kid: string; alg: string; state: string; activatesAt: string }> };
    assert.deepEqual(next.map((k) => [k.alg, k.state]), [['RS256', 'next'], ['ES256', 'next']], 'a new key for every algorithm');
    assert.equal(next[0]!.activatesAt, next[1]!.activatesAt, 'all sign from the same moment');
    const nextOf = (alg: string) => next.find((k) => k.alg === alg)!.kid;

    // Published at once, not yet signing.
    await until(async () => {
      const kids = await jwksKids();
      return next.every((k) => kids.includes(k.kid)) ? true : undefined;
    }, 'the next keys in the JWKS');
    assert.equal(decodeProtectedHeader(await ccToken()).kid, oldKid, 'the old key still signs');

    // After the activation delay the new keys sign; old and new verify during the overlap.
    const newToken = await until(async () => {
      const t = await ccToken();
      return decodeProtectedHeader(t).kid === nextOf('ES256') ? t : undefined;
    }, 'the new key to sign');
    const { tokens: afterRotation } = await signedIn(fed, 'alice@acme.example');
    assert.equal(decodeProtectedHeader(afterRotation.id_token!).kid, nextOf('RS256'), 'the new RS256 key signs ID tokens');
    assert.equal((await verifier(newToken)).client_id, 'machine');
    assert.equal((await verifier(oldToken)).client_id, 'machine', 'a token of the old key is still valid in the overlap');
    const { keys } = (await (await fetch(`${fed.concord.adminUrl}/admin/v1/keys`, { headers: ADMIN })).json()) as { keys: Array<{ kid: string; state: string }> };
    const stateOf = new Map(keys.map((k) => [k.kid, k.state]));
    assert.deepEqual([stateOf.get(nextOf('RS256')), stateOf.get(nextOf('ES256')), stateOf.get(oldRsaKid), stateOf.get(oldKid)], ['current', 'current', 'retiring', 'retiring']);
    assert.doesNotMatch(JSON.stringify(keys), /"d"|sealed/, 'no private parts');

    // Once every token they signed has expired, the old keys leave the JWKS; a fresh verifier no longer knows them.
    await until(async () => {
      const kids = await jwksKids();
      return !kids.includes(oldKid) && !kids.includes(oldRsaKid) ? true : undefined;
    }, 'the old keys to leave');
    const late = createVerifier({ issuer: fed.concord.issuer, audience: fed.concord.issuer, clockTolerance: 3600 });
    await assert.rejects(late(oldToken), { code: 'unknown_key' });
    assert.equal((await late(newToken)).client_id, 'machine');
  });

  it('keeps a brokered login working across the rotation', async () => {
    await fetch(`${fed.concord.adminUrl}/admin/v1/keys/rotate`, { method: 'POST', headers: ADMIN });
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    assert.equal(tokens.claims()!.idp, 'acme', 'openid-client verified the ID token against the published JWKS');
  });

  it('scopes each token to one service (RFC 8707): another service refuses it', async () => {
    const orders = createVerifier({ issuer: fed.concord.issuer, audience: 'https://orders.example' });
    const billing = createVerifier({ issuer: fed.concord.issuer, audience: 'https://billing.example' });
    const token = (await oidc.clientCredentialsGrant(machine, { resource: 'https://orders.example', scope: 'orders:read' })).access_token;
    assert.equal((await orders(token, { requiredScopes: ['orders:read'] })).aud, 'https://orders.example');
    await assert.rejects(billing(token), { code: 'wrong_audience' });
  });

  it('refuses an ID token presented as an access token', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const verifier = createVerifier({ issuer: fed.concord.issuer, audience: RP.client_id });
    await assert.rejects(verifier(tokens.id_token!), { code: 'wrong_type' });
  });
});
