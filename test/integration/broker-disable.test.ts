import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { authorizationRequest, exchange, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { assertErrorPage, assertNoCodeAtRp, atRp, setEnabled } from './broker-helpers.ts';

/**
 * Disabling a participant (admin API) stops its users at once: the sessions they hold at Concord,
 * their refresh and access tokens, and every new login through it. Other participants go on.
 */
describe('a disabled participant', () => {
  let fed: Federation;
  before(async () => {
    fed = await startFederation();
  });
  after(() => fed.close());

  const userinfo = (accessToken: string) => fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });

  async function refreshError(refreshToken: string): Promise<string | undefined> {
    try {
      await oidc.refreshTokenGrant(fed.rp, refreshToken);
      return undefined;
    } catch (error) {
      return (error as { error?: string }).error ?? String(error);
    }
  }

  it('stops existing sessions, refresh tokens and access tokens, and every new login through it', async () => {
    const alice = await signedIn(fed, 'alice@acme.example');
    const bob = await signedIn(fed, 'bob@globex.example');
    // Before: alice's refresh token and access token work (refresh rotates the token).
    const refreshed = await oidc.refreshTokenGrant(fed.rp, alice.tokens.refresh_token!);
    assert.equal(refreshed.claims()!.sub, alice.tokens.claims()!.sub);
    assert.equal((await userinfo(refreshed.access_token)).status, 200);

    await setEnabled(fed, 'acme', false);

    assert.equal(await refreshError(refreshed.refresh_token!), 'invalid_grant');
    assert.equal((await userinfo(refreshed.access_token)).status, 401);

    // Her Concord session no longer signs her in silently...
    const silent = await authorizationRequest(fed.rp, { prompt: 'none' });
    const none = await alice.browser.get(silent.url, { stopAt: atRp });
    assert.ok(none.stoppedAt, `prompt=none did not answer the RP: ${none.status}`);
    assert.equal(none.stoppedAt.searchParams.get('error'), 'login_required');
    assert.equal(none.stoppedAt.searchParams.has('code'), false);

    // ...nor with a prompt: she gets the login page, and her email the disabled page.
    const auth = await authorizationRequest(fed.rp);
    const page = await alice.browser.get(auth.url, { stopAt: atRp });
    assert.equal(page.stoppedAt, undefined, 'the existing session produced a code');
    assert.equal(page.status, 200);
    assert.equal(page.url.origin, fed.concord.issuer);
    const form = parseForm(page.body, '/login');
    const refused = await alice.browser.post(new URL(form.action, page.url), { ...form.fields, email: 'alice@acme.example' }, { stopAt: atRp });
    assertErrorPage(fed, refused, 'participant_disabled');

    // Through login_hint and idp_hint in a fresh browser too.
    for (const params of [{ login_hint: 'carol@acme.example' }, { idp_hint: 'acme' }] as Array<Record<string, string>>) {
      const browser = new Browser();
      const hinted = await authorizationRequest(fed.rp, params);
      assertErrorPage(fed, await browser.get(hinted.url, { stopAt: atRp }), 'participant_disabled');
      assertNoCodeAtRp(browser);
    }
    // No hop of alice's browser since the disable reached the RP with a code.
    assert.equal(refused.chain.some((hop) => hop.location && atRp(hop.location)), false);

    // Globex's users are not touched.
    assert.equal(await refreshError(bob.tokens.refresh_token!), undefined);
    const bobSilent = await authorizationRequest(fed.rp, { prompt: 'none' });
    const bobNone = await bob.browser.get(bobSilent.url, { stopAt: atRp });
    assert.ok(bobNone.stoppedAt?.searchParams.has('code'), 'bob lost his session');
    assert.equal((await exchange(fed.rp, bobNone.stoppedAt!, bobSilent)).claims()!.idp, 'globex');
  });

  it('a login in progress when the participant is disabled does not finish', async () => {
    await setEnabled(fed, 'acme', true);
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@acme.example' });
    const partnerPage = await browser.get(auth.url, { stopAt: atRp });
    assert.equal(partnerPage.url.origin, new URL(fed.acme.issuer).origin);
    await setEnabled(fed, 'acme', false);
    const form = parseForm(partnerPage.body, '/login');
    const done = await browser.post(new URL(form.action, partnerPage.url), { ...form.fields, password: 'demo' }, { stopAt: atRp });
    assertErrorPage(fed, done, 'participant_disabled');
    assertNoCodeAtRp(browser);
  });

  it('signs in again once enabled', async () => {
    await setEnabled(fed, 'acme', true);
    const alice = await signedIn(fed, 'alice@acme.example');
    assert.equal(alice.tokens.claims()!.idp, 'acme');
  });
});
