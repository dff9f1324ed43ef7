import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { ClientSchema } from '../../src/config/index.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';

/** The provider's own endpoints, driven by openid-client as the relying party. */
describe('OpenID provider', () => {
  let instance: TestConcord;
  let config: client.Configuration;

  before(async () => {
    instance = await startConcord({
      clients: [CONFIDENTIAL_CLIENT, { client_id: 'public-spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:9999/spa'] }],
      settings: { resourceServers: [{ audience: 'https://api.example.test', scopes: ['orders:read'] }] },
    });
    config = await client.discovery(new URL(instance.issuer), CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret, undefined, {
      execute: [client.allowInsecureRequests],
    });
  });
  after(() => instance.close());

  it('publishes discovery with the issuer, PKCE S256 only and RFC 9207 iss', () => {
    const meta = config.serverMetadata();
    assert.equal(meta.issuer, instance.issuer);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(meta.response_types_supported, ['code']);
    for (const endpoint of ['token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint', 'end_session_endpoint']) {
      assert.ok(meta[endpoint], `${endpoint} advertised`);
    }
  });

  it('authenticates a client as the registry has it now: a changed secret at once, a removed client not at all', async () => {
    const { registry } = instance.concord;
    const token = (secret: string) =>
      fetch(`${instance.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`machine-rotating:${secret}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
      });
    const machine = (secret: string) => ClientSchema.parse({ client_id: 'machine-rotating', client_secret: secret, grant_types: ['client_credentials'] });
    registry.setClient(machine('first-secret-0123456789'));
    assert.equal((await token('first-secret-0123456789')).status, 200);
    assert.equal((await token('first-secret-0123456789')).status, 200, 'again, the same client');
    assert.equal((await token('second-secret-0123456789')).status, 401);
    registry.setClient(machine('second-secret-0123456789'));
    assert.equal((await token('first-secret-0123456789')).status, 401, 'the old secret is refused once the client changed');
    assert.equal((await token('second-secret-0123456789')).status, 200);
    registry.removeClient('machine-rotating');
    assert.equal((await token('second-secret-0123456789')).status, 401, 'a removed client is unknown');
  });

  it('publishes a JWKS of public keys only', async () => {
    const jwks = (await (await fetch(config.serverMetadata().jwks_uri!)).json()) as { keys: Array<Record<string, unknown>> };
    assert.ok(jwks.keys.length >= 1);
    for (const key of jwks.keys) {
      assert.equal(key.d, undefined, 'no private part');
      assert.ok(key.kty === 'RSA' || key.kty === 'EC', `kty ${String(key.kty)}: keys.algorithms defaults to RS256 and ES256`);
    }
  });

  it('issues an RFC 9068 JWT for client credentials, verifiable offline against the JWKS', async () => {
    const tokens = await client.clientCredentialsGrant(config, { scope: 'orders:read', resource: 'https://api.example.test' });
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: instance.issuer,
      audience: 'https://api.example.test',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.client_id, CONFIDENTIAL_CLIENT.client_id);
    assert.equal(payload.sub, CONFIDENTIAL_CLIENT.client_id);
    assert.equal(payload.scope, 'orders:read');
    assert.equal(payload.exp! - payload.iat!, 300, 'five minutes by default');
    assert.ok(typeof payload.jti === 'string' && payload.jti.length > 10);
  });

  it('gives a token without resource the issuer as audience', async () => {
    const tokens = await client.clientCredentialsGrant(config, {});
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!)), { issuer: instance.issuer, audience: instance.issuer, typ: 'at+jwt' });
    assert.equal(decodeProtectedHeader(tokens.access_token).alg, 'ES256');
    assert.equal(payload.aud, instance.issuer);
  });

  it('refuses an unknown resource with invalid_target', async () => {
    await assert.rejects(client.clientCredentialsGrant(config, { resource: 'https://unknown.example.test' }), (err: client.ResponseBodyError) => err.error === 'invalid_target');
  });

  it('refuses a wrong client secret and an unknown client with invalid_client', async () => {
    for (const [id, secret] of [[CONFIDENTIAL_CLIENT.client_id, 'wrong-secret-0123456789'], ['no-such-client', 'whatever-secret-012345']] as const) {
      const response = await fetch(config.serverMetadata().token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
      });
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_client');
    }
  });

  async function authorize(params: Record<string, string>) {
    const url = new URL(config.serverMetadata().authorization_endpoint!);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return fetch(url, { redirect: 'manual' });
  }

  it('refuses a redirect URI that is not registered exactly, without redirecting', async () => {
    for (const redirect_uri of ['http://127.0.0.1:9999/callback/', 'http://127.0.0.1:9999/callback?x=1', 'http://127.0.0.1:9999/evil']) {
      const response = await authorize({ client_id: CONFIDENTIAL_CLIENT.client_id, response_type: 'code', scope: 'openid', redirect_uri, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' });
      assert.equal(response.status, 400, redirect_uri);
      assert.equal(response.headers.get('location'), null);
      const html = await response.text();
      assert.match(html, /redirect_uri/);
      assert.match(html, /Reference: <code>[\w.:-]+<\/code>/);
    }
  });

  it('requires PKCE with S256 for every client', async () => {
    const base = { client_id: CONFIDENTIAL_CLIENT.client_id, response_type: 'code', scope: 'openid', redirect_uri: CONFIDENTIAL_CLIENT.redirect_uris[0]!, state: 'st' };
    const missing = await authorize(base);
    const plain = await authorize({ ...base, code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
    for (const response of [missing, plain]) {
      assert.equal(response.status, 303);
      const location = new URL(response.headers.get('location')!);
      assert.equal(location.origin + location.pathname, CONFIDENTIAL_CLIENT.redirect_uris[0]);
      assert.equal(location.searchParams.get('error'), 'invalid_request');
      assert.equal(location.searchParams.get('iss'), instance.issuer, 'RFC 9207 iss on error responses too');
    }
  });

  it('answers /healthz and /readyz, and echoes the request id', async () => {
    const health = await fetch(`${instance.issuer}/healthz`, { headers: { 'x-request-id': 'trace-123' } });
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('x-request-id'), 'trace-123');
    const ready = await fetch(`${instance.issuer}/readyz`);
    assert.equal(ready.status, 200);
    assert.ok(instance.logs.some((l) => l.requestId === 'trace-123' && l.url === '/healthz'), 'one log line with the request id');
  });

  it('writes the request line alike whether the request logged through its logger or not', async () => {
    // A token request logs nothing but its line; an edge refusal logs a warning first, through the request's logger.
    const basic = `Basic ${Buffer.from(`${CONFIDENTIAL_CLIENT.client_id}:${CONFIDENTIAL_CLIENT.client_secret}`).toString('base64')}`;
    const post = (id: string, body: string) =>
      fetch(`${instance.issuer}/token`, { method: 'POST', headers: { 'x-request-id': id, authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.equal((await post('line-quiet', 'grant_type=client_credentials')).status, 200);
    assert.equal((await post('line-warned', 'grant_type=client_credentials&grant_type=client_credentials')).status, 400);
    const lines = (id: string) => instance.logs.filter((l) => l.requestId === id);
    assert.deepEqual(lines('line-quiet').map((l) => l.msg), ['request']);
    assert.deepEqual(lines('line-warned').map((l) => l.msg), ['request refused at the edge', 'request']);
    for (const line of [lines('line-quiet')[0]!, lines('line-warned')[1]!]) {
      assert.deepEqual(Object.keys(line), ['level', 'time', 'service', 'requestId', 'method', 'url', 'status', 'ms', 'msg']);
      assert.equal(line.url, '/token');
    }
  });

  it('never writes a secret into the logs', () => {
    const logs = instance.rawLogs();
    assert.ok(logs.length > 0);
    assert.ok(!logs.includes(CONFIDENTIAL_CLIENT.client_secret));
    assert.ok(!logs.includes('wrong-secret-0123456789'));
    assert.doesNotMatch(logs, /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/, 'no JWT in any log line');
  });

  it('does not serve the admin API on the public port', async () => {
    const response = await fetch(`${instance.issuer}/admin/v1/participants`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } });
    assert.equal(response.status, 404);
  });
});
