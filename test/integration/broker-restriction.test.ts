import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { Browser } from '../support/http-client.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startFederation, type Federation } from '../support/federation.ts';

const GLOBEX_ONLY = { ...RP, client_id: 'rp-globex-only', client_secret: 'rp-globex-only-secret-0123456789', participants: ['globex'] };

/** A client restricted to some participants: no way in for another participant's users. */
describe('client restricted to participants', () => {
  let fed: Federation;
  let restricted: oidc.Configuration;
  before(async () => {
    fed = await startFederation({ clients: [RP, GLOBEX_ONLY] });
    restricted = await oidc.discovery(new URL(fed.concord.issuer), GLOBEX_ONLY.client_id, GLOBEX_ONLY.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(() => fed.close());

  const reachesRp = (browser: Browser) => browser.history.some((hop) => hop.location?.href.startsWith(RP.redirect_uris[0]!) && hop.location.searchParams.has('code'));

  it('does not let a session made through Acme for another client into a Globex-only client', async () => {
    const browser = new Browser();
    const first = await authorizationRequest(fed.rp);
    await exchange(fed.rp, await brokeredLogin(browser, first, { email: 'alice@acme.example' }), first);
    browser.history.length = 0;

    for (const params of [{}, { prompt: 'none' }, { idp_hint: 'globex' }] as Array<Record<string, string>>) {
      const auth = await authorizationRequest(restricted, params);
      const page = await browser.get(auth.url, { stopAt: (u) => u.href.startsWith(RP.redirect_uris[0]!) });
      if (page.stoppedAt) {
        assert.equal(page.stoppedAt.searchParams.get('code'), null, `no code for ${JSON.stringify(params)}`);
        assert.equal(page.stoppedAt.searchParams.get('error'), 'login_required');
      } else {
        assert.ok(!page.url.href.startsWith(fed.acme.issuer) || !page.body.includes('signed in'), 'asked to sign in again');
      }
    }
    assert.equal(reachesRp(browser), false);
  });

  it('lets a Globex user in, through the same browser after the refusal', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(restricted, { login_hint: 'bob@globex.example' });
    const tokens = await exchange(restricted, await brokeredLogin(browser, auth, { email: 'bob@globex.example' }), auth);
    assert.equal(tokens.claims()!.idp, 'globex');
  });

  it('stops refresh tokens when a restriction excludes the participant later', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const tokens = await exchange(fed.rp, await brokeredLogin(browser, auth, { email: 'alice@acme.example' }), auth);
    const admin = { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' };
    const current = (await (await fetch(`${fed.concord.adminUrl}/admin/v1/clients/${RP.client_id}`, { headers: admin })).json()) as Record<string, unknown>;
    const { client_secret_set: _ignored, ...editable } = (current.client ?? current) as Record<string, unknown>;
    const put = await fetch(`${fed.concord.adminUrl}/admin/v1/clients/${RP.client_id}`, { method: 'PUT', headers: admin, body: JSON.stringify({ ...editable, participants: ['globex'] }) });
    assert.equal(put.status, 200, await put.clone().text());
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), (err: oidc.ResponseBodyError) => err.error === 'invalid_grant');
  });
});
