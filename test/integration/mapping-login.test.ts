import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { parse as parseYaml } from 'yaml';
import { DEMO_USERS, type PartnerUser } from '../../demo/partner-idp.ts';
import { authorizationRequest, exchange, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { assertErrorPage, assertNoCodeAtRp, atRp } from './broker-helpers.ts';

/**
 * Claim mapping in whole logins: the demo participants' own rules (config/participants/*.yaml) on
 * the claims of real partner IdPs, as they reach the ID token and the access token.
 */

const CONFIG_DIR = new URL('../../config/participants/', import.meta.url);
const mappingOf = async (file: string) => (parseYaml(await readFile(new URL(file, CONFIG_DIR), 'utf8')) as { mapping: unknown }).mapping;

/** An Acme account whose email (editable in Entra) differs from its UPN, and one from another tenant. */
const DAVE: PartnerUser = {
  sub: '5f0c1a52-8d1e-4b7a-9f0e-acme00000004',
  email: 'dave.dunn@acme.example',
  name: 'Dave Dunn',
  upn: 'dave@acme.example',
  tid: 'acme-tenant-7d3c',
  groups: ['engineering', 'contractors'],
  roles: ['Concord.Admin'],
};
const MALLORY: PartnerUser = {
  sub: '5f0c1a52-8d1e-4b7a-9f0e-guest0000001',
  email: 'mallory@acme.example',
  name: 'Mallory Guest',
  upn: 'mallory_contoso.example#EXT#@acme.example',
  tid: 'contoso-tenant-0000',
  groups: ['engineering'],
  roles: ['Concord.Admin'],
};

const SCOPE = 'openid email profile groups roles';

describe('mapping in brokered logins', () => {
  let fed: Federation;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  before(async () => {
    fed = await startFederation({
      acme: { mapping: await mappingOf('acme.yaml') },
      globex: { mapping: await mappingOf('globex.yaml') },
      acmeUsers: [...DEMO_USERS['acme.example']!, DAVE, MALLORY],
    });
    jwks = createRemoteJWKSet(new URL(`${fed.concord.issuer}/jwks`));
  });
  after(() => fed.close());

  async function accessClaims(accessToken: string) {
    const { payload } = await jwtVerify(accessToken, jwks, { issuer: fed.concord.issuer, audience: fed.concord.issuer, typ: 'at+jwt' });
    return payload;
  }

  it('Acme (Entra-style): email from the UPN, groups and roles through lookups, in the ID token and the access token', async () => {
    const { tokens } = await signedIn(fed, 'dave.dunn@acme.example', { scope: SCOPE });
    const id = tokens.claims()!;
    assert.equal(id.sub, `acme:${DAVE.sub}`);
    assert.equal(id.idp, 'acme');
    assert.equal(id.email, 'dave@acme.example', 'email comes from the upn');
    assert.equal(id.email_verified, true);
    assert.equal(id.preferred_username, 'dave');
    assert.equal(id.name, 'Dave Dunn');
    assert.deepEqual(id.groups, ['engineering'], 'unlisted groups are not released');
    assert.deepEqual(id.roles, ['admin', 'user']);
    for (const upstreamOnly of ['upn', 'tid', 'oid']) assert.equal(id[upstreamOnly], undefined, `${upstreamOnly} leaked`);

    // The client's access_token_claims: [groups, roles], in a token verified against Concord's JWKS.
    const at = await accessClaims(tokens.access_token);
    assert.equal(at.sub, id.sub);
    assert.equal(at.idp, 'acme');
    assert.equal(at.client_id, RP.client_id);
    assert.deepEqual(at.groups, ['engineering']);
    assert.deepEqual(at.roles, ['admin', 'user']);
    assert.equal(at.email, undefined, 'only the client’s access_token_claims go into the access token');

    // Userinfo answers the same mapped claims.
    const userinfo = (await (await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()) as Record<string, unknown>;
    assert.equal(userinfo.email, 'dave@acme.example');
    assert.deepEqual(userinfo.roles, ['admin', 'user']);
  });

  it('Acme: the demo users map as the demo shows them', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example', { scope: SCOPE });
    const id = tokens.claims()!;
    assert.deepEqual(id.groups, ['engineering', 'staff']);
    assert.deepEqual(id.roles, ['user']);
    // acr/amr are the login's, not the mapping's: passthrough leaves them out, the ID token still has them.
    assert.deepEqual(id.amr, ['pwd']);
  });

  it('Globex (Keycloak-style): realm roles without the built-in ones, group paths to names', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example', { scope: SCOPE });
    const id = tokens.claims()!;
    assert.equal(id.sub, 'globex:f4e1b9c0-0b6d-4c55-9c3a-globex000001');
    assert.deepEqual(id.roles, ['sales']);
    assert.deepEqual(id.groups, ['sales', 'staff']);
    assert.equal(id.realm_access, undefined);
    const at = await accessClaims(tokens.access_token);
    assert.deepEqual(at.roles, ['sales']);
    assert.deepEqual(at.groups, ['sales', 'staff']);
    assert.equal(decodeJwt(tokens.access_token).realm_access, undefined);
  });

  it('a failed require shows the participant’s message and yields no code', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { scope: SCOPE, login_hint: 'mallory@acme.example' });
    const partnerPage = await browser.get(auth.url, { stopAt: atRp });
    assert.equal(partnerPage.url.origin, new URL(fed.acme.issuer).origin);
    const form = /action="([^"]+\/login)"/.exec(partnerPage.body)![1]!;
    const res = await browser.post(new URL(form, partnerPage.url), { username: 'mallory@acme.example', password: 'demo' }, { stopAt: atRp });
    const reference = assertErrorPage(fed, res, 'mapping_rejected');
    assert.ok(res.body.includes('Sign in with your Acme work account. Guest and personal accounts cannot be used here.'), res.body);
    assertNoCodeAtRp(browser);
    const logged = fed.concord.logs.find((line) => line.reference === reference && line.page === 'mapping_rejected')!;
    assert.equal(logged.requirement, 'acme-tenant', 'the log names the rule that refused');
    assert.equal(await fed.concord.concord.accounts.find(`acme:${MALLORY.sub}`), undefined, 'a refused login saved an account');
  });
});
