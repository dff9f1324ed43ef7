import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { createSecretBox } from '../../src/secrets/index.ts';
import { createStore } from '../../src/store/index.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startFederation, type Federation } from '../support/federation.ts';
import { startConcord } from '../support/concord.ts';
import { Browser } from '../support/http-client.ts';

const REDIS = 'redis://127.0.0.1:6379';
const ALICE = 'alice@acme.example';

/** Two pairwise clients: one on the RP's host (sector 127.0.0.1), one on another host (sector localhost). */
const PAIRWISE = { ...RP, client_id: 'rp-pairwise', client_secret: 'rp-pairwise-secret-0123456789', subject_type: 'pairwise' };
const PAIRWISE_ELSEWHERE = {
  ...PAIRWISE,
  client_id: 'rp-pairwise-elsewhere',
  client_secret: 'rp-pairwise-elsewhere-secret-0123456789',
  redirect_uris: ['http://localhost:9999/cb'],
  post_logout_redirect_uris: ['http://localhost:9999/bye'],
};

const configFor = (fed: Federation, client: typeof PAIRWISE) =>
  oidc.discovery(new URL(fed.concord.issuer), client.client_id, client.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });

/** A login through Acme for the pairwise client; returns its tokens and the browser (with its Concord session). */
async function pairwiseLogin(fed: Federation) {
  const rp = await configFor(fed, PAIRWISE);
  const browser = new Browser();
  const auth = await authorizationRequest(rp);
  const tokens = await exchange(rp, await brokeredLogin(browser, auth, { email: ALICE }), auth);
  return { rp, browser, tokens };
}

/**
 * Pairwise subject identifiers (OIDC Core 8.1): one per sector, never the account id, the same on
 * every instance and after a restart, whatever happens to the cookie keys.
 */
describe('pairwise subjects', () => {
  const prefix = `test-pairwise-${randomBytes(4).toString('hex')}:`;
  const settings = { store: REDIS, storePrefix: prefix };
  let fed: Federation;
  before(async () => {
    fed = await startFederation({ settings, clients: [RP, PAIRWISE, PAIRWISE_ELSEWHERE] });
  });
  after(async () => {
    // fed.concord may be the restarted instance: close what runs now, then the partner IdPs.
    if (fed) {
      await fed.concord.close();
      await Promise.all([fed.acme.close(), fed.globex.close()]);
    }
    await dropRedisPrefix(prefix);
  });

  it('gives a pairwise client a sub that is not the account id, the same at each login, also in userinfo', async () => {
    const publicLogin = await exchange(fed.rp, ...(await (async () => {
      const auth = await authorizationRequest(fed.rp);
      return [await brokeredLogin(new Browser(), auth, { email: ALICE }), auth] as const;
    })()));
    const accountId = publicLogin.claims()!.sub;
    assert.match(accountId, /^acme:/);

    const first = await pairwiseLogin(fed);
    const sub = first.tokens.claims()!.sub;
    assert.notEqual(sub, accountId);
    assert.ok(!sub.includes(accountId) && !sub.includes('acme'), 'the pairwise sub reveals neither account nor participant');
    assert.equal(first.tokens.claims()!.email, ALICE, 'the claims are still released');

    const second = await pairwiseLogin(fed);
    assert.equal(second.tokens.claims()!.sub, sub, 'the same sub at the next login');

    const userinfo = await oidc.fetchUserInfo(first.rp, first.tokens.access_token, sub);
    assert.equal(userinfo.sub, sub);
    assert.equal(userinfo.email, ALICE);
  });

  it('gives a client of another sector another sub for the same person', async () => {
    const { browser, tokens } = await pairwiseLogin(fed);
    const elsewhere = await configFor(fed, PAIRWISE_ELSEWHERE);
    const auth = await authorizationRequest(elsewhere, { redirect_uri: PAIRWISE_ELSEWHERE.redirect_uris[0]! });
    // The Concord session from the first login answers at once: no second upstream login.
    const page = await browser.get(auth.url, { stopAt: (u) => u.href.startsWith(PAIRWISE_ELSEWHERE.redirect_uris[0]!) });
    assert.ok(page.stoppedAt, `no redirect back to the other client: ${page.status} at ${page.url.href}`);
    const other = await oidc.authorizationCodeGrant(elsewhere, page.stoppedAt, {
      expectedState: auth.state,
      expectedNonce: auth.nonce,
      pkceCodeVerifier: auth.codeVerifier,
      idTokenExpected: true,
    });
    assert.notEqual(other.claims()!.sub, tokens.claims()!.sub);
  });

  it('keeps the sub after a restart on the same store, and after the cookie keys changed', async () => {
    const before = (await pairwiseLogin(fed)).tokens.claims()!.sub;
    const box = createSecretBox(fed.concord.concord.settings.secretsKey);
    const port = Number(new URL(fed.concord.issuer).port);
    await fed.concord.close();
    // The cookie keys are replaced (as an operator rotating them would); the pairwise salt is not theirs.
    const store = await createStore({ url: REDIS, prefix });
    const cookieKeys = await store.getRecord<string[]>('cookie-keys', 'current');
    assert.ok(cookieKeys?.length, 'cookie keys are kept in the store');
    await store.putRecord('cookie-keys', 'current', [box.seal(randomBytes(32).toString('base64url'), 'cookie-keys')]);
    await store.close();

    // Same issuer, same store: participants and clients come from the store, not from files.
    fed.concord = await startConcord({ port, settings });
    const after = (await pairwiseLogin(fed)).tokens.claims()!.sub;
    assert.equal(after, before);
  });
});
