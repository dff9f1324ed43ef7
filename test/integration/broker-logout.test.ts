import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { authorizationRequest, exchange, RP, signedIn, startFederation, upstreamLogoutReturn, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { startHostileIdp, type HostileIdp } from '../support/hostile-idp.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.ts';
import { freePort } from '../support/ports.ts';
import { upstreamIdTokenOf } from '../support/sessions.ts';
import { atRp } from './broker-helpers.ts';

/**
 * RP-initiated logout: Concord ends its session, sends the browser to the participant's
 * end_session_endpoint (id_token_hint = this session's upstream ID token), and from there back to the
 * RP's post_logout_redirect_uri with its state. One confirmation, not two: with an id_token_hint of
 * this very session Concord asks nothing (its page submits itself) and the partner asks; without
 * one, Concord asks (OIDC RP-Initiated Logout 1.0 2).
 */

const BYE = RP.post_logout_redirect_uris[0]!;

/** Polls `find` until it returns something (what another server does in its own time); fails after 10 s. */
async function waitUntil<T>(find: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    assert.ok(Date.now() < deadline, 'not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const atBye = (u: URL) => u.href.startsWith(BYE);

describe('logout', () => {
  let fed: Federation;
  let plain: HostileIdp;
  let acmeOrigin: string;
  /** The RP's back-channel logout endpoint: Concord tells it of every logout below. */
  let rpLogouts: LogoutReceiver;

  before(async () => {
    // An upstream without end_session_endpoint (the hostile IdP's discovery has none).
    plain = await startHostileIdp({ mode: 'ok', domain: 'plain.example' });
    const port = await freePort();
    rpLogouts = await startLogoutReceiver({ issuer: `http://127.0.0.1:${port}`, clientId: RP.client_id });
    fed = await startFederation({
      port,
      clients: [{ ...RP, backchannel_logout_uri: rpLogouts.uri, backchannel_logout_session_required: true }],
      // prompt=login at Concord must not reach Acme: throughAcme() probes whether Acme's own session lives.
      acme: { upstream: { forwardParams: ['login_hint'] } },
      participants: [
        {
          id: 'plain',
          displayName: 'Plain',
          domains: ['plain.example'],
          upstream: { type: 'oidc', issuer: plain.issuer, clientId: plain.clientId, clientSecret: plain.clientSecret, allowInsecureHttp: true },
        },
      ],
    });
    acmeOrigin = new URL(fed.acme.issuer).origin;
  });
  after(async () => {
    await fed.close();
    await plain.close();
    await rpLogouts.close();
  });

  /**
   * Opens the RP's logout URL at Concord. `asks`: Concord's question (answered yes, or no with
   * confirm=false); `continues`: no question, a page that submits itself (what a browser's script
   * does is done here), its one inline script allowed by the page's CSP hash and nothing else.
   */
  async function logoutAtConcord(browser: Browser, params: Record<string, string>, expect: 'asks' | 'continues', confirm = true): Promise<BrowserResponse> {
    const page = await browser.get(oidc.buildEndSessionUrl(fed.rp, params), { stopAt: atBye });
    assert.equal(page.url.origin, fed.concord.issuer);
    assert.equal(page.status, 200, page.body.slice(0, 300));
    const form = parseForm(page.body, '/session/end/confirm');
    if (expect === 'asks') {
      assert.match(page.body, /Yes, sign me out/, 'Concord asks');
      return browser.post(new URL(form.action, page.url), { ...form.fields, ...(confirm ? { logout: 'yes' } : {}) }, { stopAt: atBye });
    }
    assert.doesNotMatch(page.body, /Yes, sign me out|No, stay signed in/, 'Concord asks nothing');
    assert.equal(form.fields.logout, 'yes');
    const script = /<script>([^<]+)<\/script>/.exec(page.body)?.[1];
    assert.ok(script?.includes('submit()'), 'the page submits itself');
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, new RegExp(`script-src 'sha256-${createHash('sha256').update(script!).digest('base64').replace(/[+/]/g, (c) => `\\${c}`)}'(;|$)`), csp);
    return browser.post(new URL(form.action, page.url), form.fields, { stopAt: atBye });
  }

  /** Answers the partner IdP's own "Sign out?" page. */
  async function confirmAtPartner(browser: Browser, page: BrowserResponse): Promise<BrowserResponse> {
    assert.equal(page.url.origin, acmeOrigin, `expected Acme's logout page, got ${page.url.href}`);
    assert.equal(page.status, 200);
    const form = parseForm(page.body, '/session/end/confirm');
    return browser.post(new URL(form.action, page.url), { ...form.fields, logout: 'yes' }, { stopAt: atBye });
  }

  /** prompt=none at Concord: a code while the Concord session lives, login_required after. */
  async function silentLogin(browser: Browser) {
    const auth = await authorizationRequest(fed.rp, { prompt: 'none' });
    const res = await browser.get(auth.url, { stopAt: atRp });
    assert.ok(res.stoppedAt, `prompt=none did not answer the RP: ${res.status} ${res.url.href}`);
    return res.stoppedAt;
  }

  /** A new login forced through Acme (prompt=login at Concord, not passed on; idp_hint): where it stops says whether Acme still has a session. */
  async function throughAcme(browser: Browser) {
    const auth = await authorizationRequest(fed.rp, { prompt: 'login', idp_hint: 'acme' });
    return browser.get(auth.url, { stopAt: atRp });
  }

  it('ends the Concord session and the upstream session, and lands on the RP with its state', async () => {
    const { browser, tokens } = await signedIn(fed, 'alice@acme.example');
    assert.ok((await silentLogin(browser)).searchParams.has('code'), 'the Concord session signs in silently before logout');
    const sso = await throughAcme(browser);
    assert.ok(sso.stoppedAt?.searchParams.has('code'), 'Acme signs in silently before logout');

    // One confirmation: the hint is this session's, so Concord asks nothing and the partner asks.
    const toPartner = await logoutAtConcord(browser, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'rp-state-1' }, 'continues');
    // Concord sent the browser to Acme's end_session_endpoint with the upstream ID token as hint.
    const endSession = toPartner.chain.find((hop) => hop.url.origin === acmeOrigin)?.url;
    assert.ok(endSession, `Acme's end_session_endpoint was not visited: ${toPartner.chain.map((h) => h.url.href).join(' > ')}`);
    assert.equal(endSession.pathname, '/session/end');
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), upstreamLogoutReturn(fed.concord.issuer, 'acme'));
    assert.equal(endSession.searchParams.get('client_id'), 'concord');
    const hint = decodeJwt(endSession.searchParams.get('id_token_hint')!);
    assert.equal(hint.iss, fed.acme.issuer);
    assert.equal(`acme:${hint.sub}`, tokens.claims()!.sub);
    const upstreamState = endSession.searchParams.get('state');
    assert.ok(upstreamState && upstreamState !== 'rp-state-1', 'Concord passes its own state upstream, not the RP’s');

    const back = await confirmAtPartner(browser, toPartner);
    assert.ok(back.stoppedAt, `did not land on the RP: ${back.status} ${back.url.href}`);
    assert.equal(back.stoppedAt.href, `${BYE}?state=rp-state-1`);
    assert.ok(back.chain.some((hop) => hop.url.pathname === '/broker/acme/logged-out'));

    // The RP is told by the back channel too: a logout token for this session's sid, signed by Concord.
    const sid = tokens.claims()!.sid;
    const told = await waitUntil(() => rpLogouts.received.find((r) => r.payload.sid === sid));
    assert.equal(told.payload.sub, tokens.claims()!.sub);

    // The Concord session is over: no silent login, and its cookie is gone.
    assert.equal((await silentLogin(browser)).searchParams.get('error'), 'login_required');
    assert.equal(browser.cookies(fed.concord.issuer).concord_session, undefined);
    // The Acme session is over: a login through Acme shows its password page again.
    const again = await throughAcme(browser);
    assert.equal(again.stoppedAt, undefined, 'Acme still signed alice in silently');
    assert.equal(again.url.origin, acmeOrigin);
    assert.match(again.body, /type="password"/);

    // The return leg works once: replayed, it shows the signed-out page and goes nowhere.
    const replay = await browser.get(new URL(`${upstreamLogoutReturn(fed.concord.issuer, 'acme')}?state=${upstreamState}`), { noFollow: true });
    assert.equal(replay.status, 200);
    assert.match(replay.body, /signed out/i);
  });

  it('another participant’s return path cannot use up the logout’s way back to the RP', async () => {
    const { browser, tokens } = await signedIn(fed, 'carol@acme.example');
    const toPartner = await logoutAtConcord(browser, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'rp-state-5' }, 'continues');
    const upstreamState = toPartner.chain.find((hop) => hop.url.origin === acmeOrigin)?.url.searchParams.get('state');
    assert.ok(upstreamState);
    // The same state at Globex's return path: the signed-out page, no redirect, and the record stays.
    const wrong = await new Browser().get(`${upstreamLogoutReturn(fed.concord.issuer, 'globex')}?state=${upstreamState}`, { noFollow: true });
    assert.equal(wrong.status, 200);
    assert.equal(wrong.location, undefined);
    const back = await confirmAtPartner(browser, toPartner);
    assert.equal(back.stoppedAt?.href, `${BYE}?state=rp-state-5`, 'Acme’s own return still leads to the RP');
  });

  it('works with client_id instead of id_token_hint (Concord asks, as it must without a hint)', async () => {
    const { browser } = await signedIn(fed, 'carol@acme.example');
    const toPartner = await logoutAtConcord(browser, { client_id: RP.client_id, post_logout_redirect_uri: BYE, state: 'rp-state-2' }, 'asks');
    const back = await confirmAtPartner(browser, toPartner);
    assert.equal(back.stoppedAt?.href, `${BYE}?state=rp-state-2`);
    assert.equal((await silentLogin(browser)).searchParams.get('error'), 'login_required');
  });

  it('without a post_logout_redirect_uri, ends on Concord’s signed-out page after the upstream', async () => {
    const { browser, tokens } = await signedIn(fed, 'alice@acme.example');
    const toPartner = await logoutAtConcord(browser, { id_token_hint: tokens.id_token! }, 'continues');
    const done = await confirmAtPartner(browser, toPartner);
    assert.equal(done.url.origin, fed.concord.issuer);
    assert.equal(done.status, 200);
    assert.match(done.body, /You are signed out/);
    assert.equal((await silentLogin(browser)).searchParams.get('error'), 'login_required');
  });

  it('“No, stay signed in” keeps the sessions and does not visit the upstream', async () => {
    const { browser } = await signedIn(fed, 'alice@acme.example');
    const res = await logoutAtConcord(browser, { client_id: RP.client_id, post_logout_redirect_uri: BYE, state: 'rp-state-3' }, 'asks', false);
    assert.equal(res.stoppedAt?.href, `${BYE}?state=rp-state-3`);
    assert.equal(res.chain.some((hop) => hop.url.origin === acmeOrigin), false, 'Acme was visited');
    const silent = await authorizationRequest(fed.rp, { prompt: 'none' });
    const again = await browser.get(silent.url, { stopAt: atRp });
    assert.ok(again.stoppedAt?.searchParams.has('code'), 'the Concord session ended');
    assert.equal((await exchange(fed.rp, again.stoppedAt!, silent)).claims()!.idp, 'acme');
  });

  it('a participant without end_session_endpoint: straight back to the RP', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'user-1@plain.example' });
    const res = await browser.get(auth.url, { stopAt: atRp });
    assert.ok(res.stoppedAt, `no code: ${res.status} ${res.body.slice(0, 200)}`);
    const tokens = await exchange(fed.rp, res.stoppedAt, auth);
    // Health probes may fetch discovery and the JWKS meanwhile; nothing else may reach the upstream.
    const browserCalls = () => plain.requests.filter((r) => !r.endsWith('/openid-configuration') && r !== 'GET /jwks').length;
    const before = browserCalls();
    const back = await logoutAtConcord(browser, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'rp-state-4' }, 'continues');
    assert.equal(back.stoppedAt?.href, `${BYE}?state=rp-state-4`);
    assert.equal(back.chain.some((hop) => hop.url.origin === new URL(plain.issuer).origin), false);
    assert.equal(browserCalls(), before, 'the upstream was called');
    assert.equal((await silentLogin(browser)).searchParams.get('error'), 'login_required');
  });

  it('an id_token_hint of another session of the same user: Concord asks, and the upstream gets this session’s own hint', async () => {
    const deviceA = await signedIn(fed, 'alice@acme.example');
    const deviceB = await signedIn(fed, 'alice@acme.example');
    // The RP asked for sid (backchannel_logout_session_required): each device's ID token names its own session.
    assert.ok(deviceA.tokens.claims()!.sid && deviceA.tokens.claims()!.sid !== deviceB.tokens.claims()!.sid);
    // Device B's browser, with device A's ID token as hint: not this session's, so Concord must ask.
    const toPartner = await logoutAtConcord(deviceB.browser, { id_token_hint: deviceA.tokens.id_token!, post_logout_redirect_uri: BYE, state: 'rp-state-6' }, 'asks');
    const endSession = toPartner.chain.find((hop) => hop.url.origin === acmeOrigin)?.url;
    assert.ok(endSession);
    // The hint sent upstream is device B's upstream ID token (its own login), not device A's.
    const { sessions } = fed.concord.concord;
    const hint = endSession.searchParams.get('id_token_hint');
    const sub = String(deviceB.tokens.claims()!.sub);
    const remaining = await sessions.ofAccount(sub);
    assert.ok(remaining.length >= 1, 'device A’s session is untouched');
    for (const session of remaining) assert.notEqual(await upstreamIdTokenOf(fed, session.id), hint, 'the hint of another session was sent');
    assert.ok(hint && decodeJwt(hint).sub && `acme:${decodeJwt(hint).sub}` === sub);
  });

  it('the upstream’s return URL with an unknown state shows the signed-out page and redirects nowhere', async () => {
    const res = await new Browser().get(`${upstreamLogoutReturn(fed.concord.issuer, 'acme')}?state=forged`, { noFollow: true });
    assert.equal(res.status, 200);
    assert.equal(res.location, undefined);
    assert.match(res.body, /You are signed out/);
  });
});
