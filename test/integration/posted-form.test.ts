import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { RP, startFederation, type Federation } from '../support/federation.ts';

/*
 * OIDC Core 1.0 §3.1.2.1 and RP-Initiated Logout 1.0 §2: the authorization and end-session
 * endpoints take POST as well as GET. Concord answers a posted form with 303 to the same endpoint's
 * GET (src/http/posted-form.ts), after the edge checks and limits read the form; the full login
 * through a POST is the conformance module oidcc-ensure-post-request-succeeds.
 */

describe('a form POSTed to the authorization and end-session endpoints', () => {
  let fed: Federation;

  before(async () => {
    fed = await startFederation({ clients: [RP], settings: { upstream: { healthInterval: 0 } } });
  });
  after(() => fed.close());

  async function post(path: string, body: string, contentType = 'application/x-www-form-urlencoded') {
    return fetch(`${fed.concord.issuer}${path}`, { method: 'POST', body, headers: { 'content-type': contentType, accept: 'text/html' }, redirect: 'manual' });
  }

  function authorizationForm(extra: Record<string, string> = {}): URLSearchParams {
    return new URLSearchParams({
      client_id: RP.client_id,
      redirect_uri: RP.redirect_uris[0]!,
      response_type: 'code',
      scope: 'openid email',
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      ...extra,
    });
  }

  it('answers POST /auth with 303 to GET /auth carrying the same parameters, in every spelling of the path', async () => {
    for (const path of ['/auth', '/AUTH', '/auth/']) {
      const form = authorizationForm({ login_hint: 'alice@acme.example' });
      const response = await post(path, form.toString());
      assert.equal(response.status, 303, path);
      const location = new URL(response.headers.get('location')!, fed.concord.issuer);
      assert.equal(location.origin, fed.concord.issuer);
      assert.deepEqual(Object.fromEntries(location.searchParams), Object.fromEntries(form), path);
      // The GET it leads to is an ordinary authorization request: on to Concord's sign-in.
      const next = await fetch(location, { redirect: 'manual' });
      assert.equal(next.status, 303, `${path}: the GET goes on to the interaction`);
      assert.match(next.headers.get('location') ?? '', /\/interaction\//);
    }
  });

  it('checks the posted form at the edge first: an oversized login_hint never becomes a redirect to /auth', async () => {
    const response = await post('/auth', authorizationForm({ login_hint: `${'a'.repeat(3000)}@acme.example` }).toString());
    const location = response.headers.get('location') ?? '';
    assert.ok(!location.includes('/auth?'), `refused, not passed on: ${response.status} ${location}`);
    // The error goes back to the registered redirect URI (the request's client is known), as for a GET.
    assert.ok(response.status === 400 || location.startsWith(RP.redirect_uris[0]!), `${response.status} ${location}`);
  });

  it('refuses a POST to /auth that is not a form, with a page that says so', async () => {
    const response = await post('/auth', JSON.stringify({ client_id: RP.client_id }), 'application/json');
    assert.equal(response.status, 400);
    assert.match(response.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(response.headers.get('location'), null);
  });

  it('answers POST /session/end with 303 to GET /session/end, which shows the sign-out page', async () => {
    const form = new URLSearchParams({ client_id: RP.client_id, post_logout_redirect_uri: RP.post_logout_redirect_uris[0]!, state: 'xyz' });
    const response = await post('/session/end', form.toString());
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location')!, fed.concord.issuer);
    assert.equal(location.pathname, '/session/end');
    assert.deepEqual(Object.fromEntries(location.searchParams), Object.fromEntries(form));
    const page = await fetch(location, { redirect: 'manual' });
    assert.ok(page.status === 200 || page.status === 303, `GET /session/end: ${page.status}`);
  });
});
