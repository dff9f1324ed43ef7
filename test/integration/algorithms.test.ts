import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { createVerifier } from '../../packages/verify/src/index.ts';
import { startConcord } from '../support/concord.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startFederation, type Federation } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';

const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };
const ADMIN = { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' };
const ALL = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
type Alg = (typeof ALL)[number];

/** A relying party like RP (same redirect URI), whose ID tokens (and more) are signed with `alg`. */
const rpFor = (alg: Alg, extra: Record<string, unknown> = {}) => ({ ...RP, client_id: `rp-${alg.toLowerCase()}`, id_token_signed_response_alg: alg, ...extra });

/** openid-client as an RP that registered `metadata`: it refuses an ID token (or userinfo JWT) in any other alg. */
const strictRp = (fed: Federation, metadata: Record<string, string>) =>
  oidc.discovery(new URL(fed.concord.issuer), metadata.client_id!, { client_secret: RP.client_secret, ...metadata }, undefined, { execute: [oidc.allowInsecureRequests] });

/** A real brokered login (Concord -> partner IdP -> Concord) and code exchange for the RP `rp`. */
async function loginAt(rp: oidc.Configuration, email = 'alice@acme.example', params: Record<string, string> = {}) {
  const auth = await authorizationRequest(rp, params);
  const callback = await brokeredLogin(new Browser(), auth, { email });
  return { auth, callback, tokens: params.response_mode ? undefined : await exchange(rp, callback, auth) };
}

describe('signing algorithms per client', () => {
  let fed: Federation;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  before(async () => {
    fed = await startFederation({
      // Every algorithm offered; access tokens in one that no client below asks for, to tell them apart.
      settings: { keys: { algorithms: [...ALL], accessTokenAlgorithm: 'EdDSA' } },
      clients: [RP, ...ALL.map((alg) => rpFor(alg)), rpFor('PS256', { client_id: 'rp-signed-userinfo', userinfo_signed_response_alg: 'PS256' }), rpFor('ES256', { client_id: 'rp-jarm', authorization_signed_response_alg: 'ES256' })],
    });
    jwks = createRemoteJWKSet(new URL(`${fed.concord.issuer}/jwks`));
  });
  after(() => fed.close());

  describe('what a strict RP checks before it trusts the OP', () => {
    let discovery: Record<string, unknown>;
    before(async () => {
      discovery = (await (await fetch(`${fed.concord.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    });

    it('publishes every field OpenID Connect Discovery 1.0 section 3 requires', () => {
      for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
        assert.ok(discovery[field] !== undefined && discovery[field] !== '', `${field} is required`);
      }
      assert.equal(discovery.issuer, fed.concord.issuer, 'issuer identical to the URL discovery was fetched from (section 4.3)');
      for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint']) {
        assert.ok(String(discovery[field]).startsWith(fed.concord.issuer), `${field} under the issuer`);
      }
      assert.ok((discovery.response_types_supported as string[]).includes('code'), 'dynamic OPs MUST support code');
      assert.ok((discovery.subject_types_supported as string[]).includes('public'));
    });

    it('lists RS256 and every offered algorithm for ID tokens, userinfo and JARM; never none, never HMAC', () => {
      assert.ok((discovery.id_token_signing_alg_values_supported as string[]).includes('RS256'), 'RS256 MUST be listed (section 3)');
      assert.deepEqual([...(discovery.id_token_signing_alg_values_supported as string[])].sort(), [...ALL].sort());
      assert.deepEqual([...(discovery.userinfo_signing_alg_values_supported as string[])].sort(), [...ALL].sort());
      assert.deepEqual([...(discovery.authorization_signing_alg_values_supported as string[])].sort(), [...ALL].sort());
      for (const [field, value] of Object.entries(discovery)) {
        if (!field.endsWith('_alg_values_supported') || field.includes('encryption')) continue;
        for (const alg of value as string[]) {
          assert.notEqual(alg, 'none', `${field} offers none`);
          if (field.includes('signing_alg') && !field.startsWith('request_object') && !field.includes('endpoint_auth')) assert.doesNotMatch(alg, /^HS/, `${field} offers ${alg}`);
        }
      }
    });

    it('publishes a JWKS whose every key has kid, alg and use, and no private member', async () => {
      const response = await fetch(String(discovery.jwks_uri));
      const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
      assert.deepEqual(keys.map((k) => k.alg).sort(), [...ALL].sort(), 'a key for each offered algorithm');
      assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length, 'kids are unique');
      for (const key of keys) {
        assert.equal(typeof key.kid, 'string', 'kid');
        assert.ok(ALL.includes(key.alg as Alg), `alg ${String(key.alg)}`);
        assert.equal(key.use, 'sig');
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth', 'key_ops']) assert.equal(key[member], undefined, `${String(key.kid)} has ${member}`);
      }
    });
  });

  for (const alg of ALL) {
    it(`signs the ID token of a client registered with ${alg} in ${alg}, verifiable with jose against the JWKS`, async () => {
      const rp = await strictRp(fed, { client_id: `rp-${alg.toLowerCase()}`, id_token_signed_response_alg: alg });
      const { tokens, auth } = await loginAt(rp);
      const { payload, protectedHeader } = await jwtVerify(tokens!.id_token!, jwks, { issuer: fed.concord.issuer, audience: `rp-${alg.toLowerCase()}`, algorithms: [alg] });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(payload.nonce, auth.nonce);
      assert.equal(payload.idp, 'acme');
      // The access token is the deployment's choice, whatever the client's ID tokens use.
      assert.equal(decodeProtectedHeader(tokens!.access_token).alg, 'EdDSA');
      assert.equal((await createVerifier({ issuer: fed.concord.issuer, audience: fed.concord.issuer })(tokens!.access_token)).client_id, `rp-${alg.toLowerCase()}`);
    });
  }

  it('gives a client that names no algorithm RS256 ID tokens (OIDC Registration 2)', async () => {
    // The RP registered no id_token_signed_response_alg (RP in the federation's clients).
    const { tokens } = await loginAt(fed.rp);
    assert.equal(decodeProtectedHeader(tokens!.id_token!).alg, 'RS256');
    await jwtVerify(tokens!.id_token!, jwks, { issuer: fed.concord.issuer, audience: RP.client_id, algorithms: ['RS256'] });
    assert.equal(decodeProtectedHeader(tokens!.access_token).alg, 'EdDSA', 'access tokens: keys.accessTokenAlgorithm');
  });

  it('answers userinfo as a JWT signed with the client’s userinfo_signed_response_alg', async () => {
    const rp = await strictRp(fed, { client_id: 'rp-signed-userinfo', id_token_signed_response_alg: 'PS256', userinfo_signed_response_alg: 'PS256' });
    const { tokens } = await loginAt(rp);
    const response = await fetch(String(rp.serverMetadata().userinfo_endpoint), { headers: { authorization: `Bearer ${tokens!.access_token}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/jwt/);
    const { payload, protectedHeader } = await jwtVerify(await response.text(), jwks, { issuer: fed.concord.issuer, audience: 'rp-signed-userinfo', algorithms: ['PS256'] });
    assert.equal(protectedHeader.alg, 'PS256');
    assert.equal(payload.sub, tokens!.claims()!.sub);
    assert.equal(payload.email, 'alice@acme.example');
    // openid-client reads the signed answer as a strict RP does.
    const claims = await oidc.fetchUserInfo(rp, tokens!.access_token, tokens!.claims()!.sub);
    assert.equal(claims.email, 'alice@acme.example');
  });

  it('signs JWT-secured authorization responses (JARM) with the client’s authorization_signed_response_alg', async () => {
    const rp = await strictRp(fed, { client_id: 'rp-jarm', id_token_signed_response_alg: 'ES256', authorization_signed_response_alg: 'ES256' });
    oidc.useJwtResponseMode(rp);
    const { callback, auth } = await loginAt(rp, 'alice@acme.example', { response_mode: 'jwt' });
    const response = callback.searchParams.get('response');
    assert.ok(response, `a JWT response at the redirect URI: ${callback.href}`);
    const { payload, protectedHeader } = await jwtVerify(response, jwks, { issuer: fed.concord.issuer, audience: 'rp-jarm', algorithms: ['ES256'] });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.state, auth.state);
    const tokens = await exchange(rp, callback, auth);
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'ES256');
  });

  it('refuses, at the admin API, a client naming an algorithm the deployment does not offer, or HMAC', async () => {
    const narrow = await startConcord({ clients: [MACHINE] });
    try {
      const post = (body: Record<string, unknown>) => fetch(`${narrow.adminUrl}/admin/v1/clients`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
      const base = { ...rpFor('RS256'), client_id: 'svc' };
      const eddsa = await post({ ...base, id_token_signed_response_alg: 'EdDSA' });
      assert.equal(eddsa.status, 422);
      const body = (await eddsa.json()) as { error: string; field: string; error_description?: string; message?: string };
      assert.equal(body.field, 'id_token_signed_response_alg');
      assert.match(JSON.stringify(body), /EdDSA is not offered by this deployment \(keys\.algorithms: RS256, ES256\)/);
      for (const [field, alg] of [['userinfo_signed_response_alg', 'PS256'], ['authorization_signed_response_alg', 'EdDSA'], ['id_token_signed_response_alg', 'HS256'], ['id_token_signed_response_alg', 'none']] as const) {
        const refused = await post({ ...base, [field]: alg });
        assert.equal(refused.status, 422, `${field} ${alg}`);
        assert.equal(((await refused.json()) as { field: string }).field, field);
      }
      const accepted = await post({ ...base, id_token_signed_response_alg: 'ES256' });
      assert.equal(accepted.status, 201, await accepted.text());
    } finally {
      await narrow.close();
    }
  });
});

describe('access token algorithm', () => {
  for (const [alg, kty] of [['ES256', 'EC'], ['EdDSA', 'OKP'], ['RS256', 'RSA'], ['PS256', 'RSA']] as const) {
    it(`signs access tokens with keys.accessTokenAlgorithm ${alg}`, async () => {
      const instance = await startConcord({ clients: [MACHINE], settings: { keys: { algorithms: alg === 'RS256' ? ['RS256'] : ['RS256', alg], accessTokenAlgorithm: alg } } });
      try {
        const jwks = (await (await fetch(`${instance.issuer}/jwks`)).json()) as { keys: Array<{ kty: string; alg: string; d?: string }> };
        assert.ok(jwks.keys.some((k) => k.kty === kty && k.alg === alg && k.d === undefined), `a public ${alg} key`);
        const response = await fetch(`${instance.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('machine:machine-secret-0123456789').toString('base64')}` },
          body: 'grant_type=client_credentials',
        });
        const { access_token } = (await response.json()) as { access_token: string };
        assert.equal(decodeProtectedHeader(access_token).alg, alg);
        const claims = await createVerifier({ issuer: instance.issuer, audience: instance.issuer })(access_token);
        assert.equal(claims.client_id, 'machine');
      } finally {
        await instance.close();
      }
    });
  }

  it('defaults to ES256 access tokens and RS256 + ES256 keys', async () => {
    const instance = await startConcord({ clients: [MACHINE] });
    try {
      const discovery = (await (await fetch(`${instance.issuer}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
      assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['RS256', 'ES256']);
      const token = await oidc.clientCredentialsGrant(
        await oidc.discovery(new URL(instance.issuer), 'machine', 'machine-secret-0123456789', undefined, { execute: [oidc.allowInsecureRequests] }),
      );
      assert.equal(decodeProtectedHeader(token.access_token).alg, 'ES256');
    } finally {
      await instance.close();
    }
  });
});
