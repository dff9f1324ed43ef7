import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ClientSchema, ConfigError, loadConfig, type ClientConfig } from '../../src/config/index.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';

/*
 * Issue 19 item 6: client metadata cannot point anywhere dangerous. Redirect and post-logout URIs
 * are https (http to loopback, or anywhere when the deployment allows it), or for native clients a
 * private-use scheme (RFC 8252); javascript:, data:, file: and the like are refused by the admin API
 * (422) and by the config loader; Concord's own error redirect never goes to an unsafe URI, even one
 * that is registered.
 */

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const DANGEROUS = ['javascript', 'data', 'file', 'vbscript', 'blob', 'about', 'filesystem', 'view-source', 'jar', 'ftp'];

/** A dangerous scheme in any letter case, with a payload after it. */
const dangerousUri = fc
  .tuple(fc.constantFrom(...DANGEROUS), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), fc.constantFrom('alert(1)', '//evil.example/%0aalert(1)', 'text/html,<script>alert(1)</script>', '///etc/passwd', '//host/cb'))
  .map(([scheme, upper, rest]) => `${[...scheme].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('')}:${rest}`);

describe('redirect URIs at the admin API', () => {
  let concord: TestConcord;

  before(async () => {
    concord = await startConcord({ clients: [CONFIDENTIAL_CLIENT] });
  });
  after(() => concord.close());

  let n = 0;
  const register = async (client: Record<string, unknown>) => {
    const res = await fetch(`${concord.adminUrl}/admin/v1/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: `c${++n}`, client_secret: 'client-secret-0123456789', ...client }),
    });
    return { status: res.status, body: (await res.json()) as { field?: string; message?: string } };
  };

  it('refuses dangerous schemes with 422, as redirect and as post-logout URIs, for web and native clients', async () => {
    await fc.assert(
      fc.asyncProperty(dangerousUri, fc.constantFrom('redirect_uris', 'post_logout_redirect_uris'), fc.constantFrom('web', 'native'), async (uri, field, applicationType) => {
        const client = { application_type: applicationType, redirect_uris: ['https://rp.example/cb'], [field]: [uri] };
        const { status, body } = await register(client);
        assert.equal(status, 422, `${uri} as ${field} (${applicationType}): ${JSON.stringify(body)}`);
        assert.equal(body.field, `${field}.0`);
      }),
      { numRuns: 80 },
    );
  });

  it('accepts https anywhere, http only to loopback for web clients', async () => {
    await fc.assert(
      fc.asyncProperty(fc.webUrl({ validSchemes: ['https'], withFragments: false, withQueryParameters: true }), async (uri) => {
        fc.pre(!uri.includes('#') && !/@/.test(new URL(uri).host));
        assert.equal((await register({ redirect_uris: [uri] })).status, 201, uri);
      }),
      { numRuns: 30 },
    );
    for (const uri of ['http://127.0.0.1:8080/cb', 'http://[::1]/cb', 'http://localhost:3000/cb', 'http://127.1.2.3/cb']) assert.equal((await register({ redirect_uris: [uri] })).status, 201, uri);
    for (const uri of ['http://rp.example/cb', 'http://10.0.0.1/cb', 'http://localhost.evil.example/cb', 'http://127.0.0.1.evil.example/cb']) {
      const { status, body } = await register({ redirect_uris: [uri] });
      assert.equal(status, 422, uri);
      assert.match(body.message ?? '', /loopback/);
    }
    assert.equal((await register({ redirect_uris: ['https://user:pass@rp.example/cb'] })).status, 422, 'no credentials in a redirect URI');
    assert.equal((await register({ redirect_uris: ['https://rp.example/cb#frag'] })).status, 422, 'no fragment');
  });

  it('accepts private-use schemes (reverse domain) for native clients only, and refuses loopback https for them', async () => {
    assert.equal((await register({ application_type: 'native', redirect_uris: ['com.example.app:/oauth2redirect'], token_endpoint_auth_method: 'none', client_secret: undefined })).status, 201);
    assert.equal((await register({ application_type: 'native', redirect_uris: ['http://127.0.0.1:51004/cb'], token_endpoint_auth_method: 'none', client_secret: undefined })).status, 201);
    assert.equal((await register({ redirect_uris: ['com.example.app:/oauth2redirect'] })).status, 422, 'a web client has no private-use scheme');
    assert.equal((await register({ application_type: 'native', redirect_uris: ['myapp:/cb'] })).status, 422, 'a private-use scheme is a reversed domain name');
    assert.equal((await register({ application_type: 'native', redirect_uris: ['https://127.0.0.1/cb'] })).status, 422);
    assert.equal((await register({ application_type: 'native', redirect_uris: ['http://rp.example/cb'] })).status, 422);
  });

  it("never sends a browser to an unsafe URI on Concord's own error path, even a registered one", async () => {
    // A client as it might sit in a store written before these rules (the schema would refuse it now).
    const unsafe = { ...ClientSchema.parse({ client_id: 'legacy', client_secret: 'legacy-secret-0123456789', redirect_uris: ['https://rp.example/cb'] }), redirect_uris: ['javascript:alert(document.domain)//'] } as ClientConfig;
    concord.concord.registry.setClient(unsafe);
    const url = `${concord.issuer}/auth?${new URLSearchParams({ client_id: 'legacy', redirect_uri: 'javascript:alert(document.domain)//', response_type: 'code', scope: 'openid', login_hint: 'x'.repeat(3000) })}`;
    const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(res.status, 400, 'the error page, not a redirect');
    assert.equal(res.headers.get('location'), null);
    assert.match(await res.text(), /login_hint is longer than 512/);
  });
});

describe('redirect URIs at the config loader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-redirects-'));
    await mkdir(path.join(dir, 'clients'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const client = (id: string, uri: string) => `client_id: ${id}\nclient_secret: ${id}-secret-0123456789\nredirect_uris: ['${uri}']\n`;

  it('refuses a dangerous or non-loopback http redirect URI, naming the file and field; http is allowed when the deployment says so', async () => {
    await writeFile(path.join(dir, 'clients', 'bad.yaml'), client('bad', 'javascript:alert(1)'));
    await assert.rejects(loadConfig({ dir, env: {} }), (err) => err instanceof ConfigError && err.issues.some((i) => i.field === 'redirect_uris.0' && /javascript/.test(i.message)));
    await rm(path.join(dir, 'clients', 'bad.yaml'));

    await writeFile(path.join(dir, 'clients', 'lan.yaml'), client('lan', 'http://app.internal:8080/cb'));
    await assert.rejects(loadConfig({ dir, env: {} }), (err) => err instanceof ConfigError && err.issues.some((i) => i.field === 'redirect_uris.0' && /loopback/.test(i.message)));
    await writeFile(path.join(dir, 'concord.yaml'), 'clients:\n  allowHttpRedirectUris: true\n');
    const loaded = await loadConfig({ dir, env: {} });
    assert.deepEqual(loaded.clients[0]!.redirect_uris, ['http://app.internal:8080/cb']);
  });
});
