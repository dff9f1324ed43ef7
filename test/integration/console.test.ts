/**
 * The console over plain HTTP (the browser journey is test/e2e/console.test.ts): the same refusals as
 * the admin API for the same input, CSRF tokens bound to their session, the sign-in's same-site
 * step, the break-glass token's rate limit, and no console on the public port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { adminApi } from './admin-fixtures.ts';

const TOKEN = 'test-admin-token-0123456789';

describe('admin console over HTTP', () => {
  let fed: Federation;
  let consoleUrl: string;
  let api: ReturnType<typeof adminApi>;

  /** A browser signed in to the console with the admin token; its CSRF token read from a page. */
  async function signedIn(): Promise<{ browser: Browser; csrf: string }> {
    const browser = new Browser();
    const login = await browser.get(`${consoleUrl}login`);
    const form = parseForm(login.body, '/console/login/token');
    const done = await browser.post(new URL(form.action, login.url), { ...form.fields, token: TOKEN });
    assert.equal(done.url.pathname, '/console/', done.body.slice(0, 300));
    const csrf = parseForm(done.body, '/console/logout').fields._csrf!;
    return { browser, csrf };
  }

  before(async () => {
    fed = await startFederation({ settings: { console: { allow: 'claims.idp == "acme"' }, upstream: { healthInterval: 0 }, rateLimits: { credentialFailures: { max: 5 } } } });
    consoleUrl = `${fed.concord.adminUrl}/console/`;
    api = adminApi(fed.concord.adminUrl);
  });
  after(() => fed?.close());

  it('answers 404 on the public port, for every console path', async () => {
    for (const p of ['/console', '/console/', '/console/login', '/console/assets/console.css']) {
      assert.equal((await fetch(`${fed.concord.issuer}${p}`, { redirect: 'manual' })).status, 404, p);
    }
  });

  it('refuses an invalid mapping exactly as the API does, pointing at the rule', async () => {
    const { browser, csrf } = await signedIn();
    const bad = { rules: [{ claim: 'department', value: 'x' }, { claim: 'team', from: 'groups', regex: { pattern: '(' } }] };
    const fromApi = await api.post('/admin/v1/participants/acme/mapping/dry-run', { claims: { sub: 'a' }, mapping: bad });
    assert.equal(fromApi.status, 422);
    const page = await browser.post(`${consoleUrl}participants/acme/mapping`, { _csrf: csrf, action: 'dry-run', mapping: JSON.stringify(bad), claims: '{"sub": "a"}' });
    assert.equal(page.status, 422);
    assert.match(page.body, /rule 2/);
    const message = (fromApi.body.issues as Array<{ message: string }>)[0]!.message;
    assert.ok(page.body.includes(message.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/`/g, '&#96;')), `the API's message "${message}" on the page`);
    // Saving it is refused too, and nothing changed.
    const save = await browser.post(`${consoleUrl}participants/acme/mapping`, { _csrf: csrf, action: 'save', mapping: JSON.stringify(bad), claims: '' });
    assert.equal(save.status, 422);
    assert.equal((await api.get('/admin/v1/participants/acme')).body.mapping, undefined);
  });

  it('the built-in client id is refused by the API, and by the console, alike', async () => {
    const client = { client_id: 'concord-console', client_secret: 'x'.repeat(20), redirect_uris: ['https://evil.example/cb'] };
    const fromApi = await api.post('/admin/v1/clients', client);
    assert.equal(fromApi.status, 409);
    assert.equal(fromApi.body.error, 'reserved_client_id');
    const { browser, csrf } = await signedIn();
    const page = await browser.post(`${consoleUrl}clients`, { _csrf: csrf, document: JSON.stringify(client) });
    assert.equal(page.status, 422);
    assert.match(page.body, /Concord’s own|Concord&#39;s own|Concord's own/);
    assert.deepEqual(fed.concord.concord.registry.client('concord-console')?.redirect_uris, [`${fed.concord.adminUrl}/console/callback`]);
  });

  it('a CSRF token works only in its own session', async () => {
    const one = await signedIn();
    const two = await signedIn();
    const refused = await two.browser.post(`${consoleUrl}participants/globex/revoke-sessions`, { _csrf: one.csrf });
    assert.equal(refused.status, 403);
    const accepted = await two.browser.post(`${consoleUrl}participants/globex/revoke-sessions`, { _csrf: two.csrf }, { noFollow: true });
    assert.equal(accepted.status, 303);
    // Signed out, the old token is worth nothing.
    await two.browser.post(`${consoleUrl}logout`, { _csrf: two.csrf });
    const after = await two.browser.post(`${consoleUrl}participants/globex/revoke-sessions`, { _csrf: two.csrf });
    assert.equal(after.status, 403);
  });

  it('the sign-in callback without the session cookie takes one same-site step (meta refresh) instead of starting a new session', async () => {
    const res = await fetch(`${consoleUrl}callback?code=abc&state=xyz`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('set-cookie'), null, 'no cookie that would replace the one holding the sign-in');
    assert.match(await res.text(), /http-equiv="refresh" content="0;url=\/console\/callback\?code=abc&amp;state=xyz&amp;again=1"/);
  });

  it('wrong break-glass tokens count against the admin API’s limit', async () => {
    const browser = new Browser();
    let status = 0;
    for (let i = 0; i < 10 && status !== 429; i++) {
      const login = await browser.get(`${consoleUrl}login`);
      const form = parseForm(login.body, '/console/login/token');
      status = (await browser.post(new URL(form.action, login.url), { ...form.fields, token: `wrong-${i}-0123456789abcdef` })).status;
      assert.ok(status === 401 || status === 429, String(status));
    }
    assert.equal(status, 429);
    // The lock holds on the API too: one source, one budget.
    assert.equal((await fetch(`${fed.concord.adminUrl}/admin/v1/participants`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 429);
  });
});
