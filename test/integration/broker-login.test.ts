import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { assertErrorPage, assertNoCodeAtRp, atRp, hopTo } from './broker-helpers.ts';

/**
 * Whole brokered logins over HTTP with a cookie jar: Concord, two real partner IdPs (oidc-provider)
 * and, for the failure cases, a participant whose IdP is down. Every refusal must end on Concord's
 * error page with a reference that is in the logs, and never with a code at the RP.
 */

const RESTRICTED = {
  client_id: 'rp-globex-only',
  client_name: 'Globex-only RP',
  client_secret: 'rp-globex-only-secret-0123456789',
  redirect_uris: RP.redirect_uris,
  grant_types: ['authorization_code'],
  skip_consent: true,
  participants: ['globex'],
};

describe('brokered login over HTTP', () => {
  let fed: Federation;
  let restricted: oidc.Configuration;
  let acmeOrigin: string;
  let globexOrigin: string;

  before(async () => {
    const deadPort = await freePort();
    fed = await startFederation({
      clients: [RP, RESTRICTED],
      settings: { upstream: { timeoutMs: 2000 } },
      participants: [
        {
          id: 'initech',
          displayName: 'Initech',
          domains: ['initech.example'],
          upstream: { type: 'oidc', issuer: `http://127.0.0.1:${deadPort}`, clientId: 'concord', clientSecret: 'initech-upstream-secret-0123456789', allowInsecureHttp: true },
        },
      ],
    });
    restricted = await oidc.discovery(new URL(fed.concord.issuer), RESTRICTED.client_id, RESTRICTED.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
    acmeOrigin = new URL(fed.acme.issuer).origin;
    globexOrigin = new URL(fed.globex.issuer).origin;
  });
  after(() => fed.close());

  /** Starts a login and posts `email` on Concord's login page. */
  async function submitEmail(email: string, rp = fed.rp, params: Record<string, string> = {}) {
    const browser = new Browser();
    const auth = await authorizationRequest(rp, params);
    const page = await browser.get(auth.url, { stopAt: atRp });
    assert.equal(page.status, 200, page.body.slice(0, 300));
    assert.equal(new URL(page.url).origin, fed.concord.issuer);
    const form = parseForm(page.body, '/login');
    const res = await browser.post(new URL(form.action, page.url), { ...form.fields, email }, { stopAt: atRp });
    return { browser, auth, res };
  }

  /** Concord answered every hop of this chain with a redirect: it never showed a page of its own. */
  function onlyRedirectsAtConcord(res: BrowserResponse) {
    const pages = res.chain.filter((hop) => hop.url.origin === fed.concord.issuer && hop.status < 300);
    assert.deepEqual(pages.map((h) => h.url.pathname), [], 'Concord showed a page');
  }

  const visited = (browser: Browser, origin: string) => browser.history.some((hop) => hop.url.origin === origin);

  it('signs alice in through Acme: prefixed sub, idp, and acr/amr/auth_time of the partner login', async () => {
    const { browser, tokens } = await signedIn(fed, 'alice@acme.example');
    assert.ok(visited(browser, acmeOrigin) && !visited(browser, globexOrigin), 'the login went through Acme only');
    const claims = tokens.claims()!;
    const alice = fed.acme.users.find((u) => u.email === 'alice@acme.example')!;
    assert.equal(claims.sub, `acme:${alice.sub}`);
    assert.equal(claims.idp, 'acme');
    assert.equal(claims.email, 'alice@acme.example');
    assert.equal(claims.email_verified, true);

    // acr and amr are the partner's, from its own ID token, not constants of Concord.
    const { sessions } = fed.concord.concord;
    const [session] = await sessions.ofAccount(claims.sub);
    const logout = session && (await sessions.upstream(session.id)).logout;
    assert.equal(logout?.protocol, 'oidc', 'the session keeps what the upstream logout needs');
    const upstream = decodeJwt(logout.idTokenHint);
    assert.ok(upstream.acr && Array.isArray(upstream.amr), 'the partner sent acr and amr');
    assert.equal(claims.acr, upstream.acr);
    assert.deepEqual(claims.amr, upstream.amr);
    assert.deepEqual(claims.amr, ['pwd']);
    // auth_time too: when alice authenticated at Acme, not when Concord heard of it.
    assert.equal(typeof upstream.auth_time, 'number');
    assert.equal(claims.auth_time, upstream.auth_time);

    const jwks = createRemoteJWKSet(new URL(`${fed.concord.issuer}/jwks`));
    const at = await jwtVerify(tokens.access_token, jwks, { issuer: fed.concord.issuer, typ: 'at+jwt' });
    assert.equal(at.payload.sub, claims.sub);
    assert.equal(at.payload.idp, 'acme');
    assert.equal(at.payload.client_id, RP.client_id);
  });

  it('a login followed by the consent page (prompt=consent) keeps its session: /me answers, the sessions list it', async () => {
    // oidc-provider replaces the resumed interaction with the consent one: the login must still be bound.
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { prompt: 'consent' });
    const login = await brokeredLogin(browser, auth, { email: 'alice@acme.example' }).catch((error: { page?: BrowserResponse }) => error.page);
    assert.ok(!(login instanceof URL), 'prompt=consent asks for consent');
    assert.ok(login && /action="[^"]*\/consent"/.test(login.body), `the consent page: ${login?.body.slice(0, 300)}`);
    const form = parseForm(login.body, '/consent');
    assert.equal(form.fields.decision, 'allow');
    const done = await browser.post(new URL(form.action, login.url), form.fields, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no redirect to the RP: ${done.status}`);
    const tokens = await exchange(fed.rp, done.stoppedAt, auth);
    const sub = tokens.claims()!.sub;
    const { sid } = decodeJwt(tokens.access_token);
    const sessions = await fed.concord.concord.sessions.ofAccount(sub);
    assert.ok(
      sid && sessions.some((s) => s.clients.some((c) => c.clientId === RP.client_id && c.sid === sid)),
      'the session records the RP with its sid',
    );
    const me = await oidc.fetchUserInfo(fed.rp, tokens.access_token, sub);
    assert.equal(me.sub, sub);
  });

  it('signs bob in through Globex', async () => {
    const { browser, tokens } = await signedIn(fed, 'bob@globex.example');
    assert.ok(visited(browser, globexOrigin) && !visited(browser, acmeOrigin), 'the login went through Globex only');
    const claims = tokens.claims()!;
    assert.equal(claims.sub, 'globex:f4e1b9c0-0b6d-4c55-9c3a-globex000001');
    assert.equal(claims.idp, 'globex');
    assert.equal(claims.email, 'bob@globex.example');
    assert.equal(claims.acr, 'urn:concord:demo:password');
    assert.deepEqual(claims.amr, ['pwd']);
  });

  it('login_hint=user@domain skips the login page and goes straight to the partner', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@acme.example' });
    const page = await browser.get(auth.url, { stopAt: atRp });
    onlyRedirectsAtConcord(page);
    assert.equal(page.url.origin, acmeOrigin, `ended at ${page.url.href}`);
    assert.equal(page.status, 200);
    // The hint travels on to the partner, which prefills its form.
    assert.equal(parseForm(page.body, '/login').fields.username, 'alice@acme.example');
    const callback = await brokeredLogin(browser, auth, { email: 'alice@acme.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    assert.equal(tokens.claims()!.idp, 'acme');
  });

  it('idp_hint={participantId} selects the participant directly', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { idp_hint: 'globex' });
    const page = await browser.get(auth.url, { stopAt: atRp });
    onlyRedirectsAtConcord(page);
    assert.equal(page.url.origin, globexOrigin, `ended at ${page.url.href}`);
    const callback = await brokeredLogin(browser, auth, { email: 'bob@globex.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    assert.equal(tokens.claims()!.sub, 'globex:f4e1b9c0-0b6d-4c55-9c3a-globex000001');
  });

  it('an unknown idp_hint gets the unknown organisation page', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { idp_hint: 'nobody' });
    const page = await browser.get(auth.url, { stopAt: atRp });
    assertErrorPage(fed, page, 'unknown_participant');
    assertNoCodeAtRp(browser);
  });

  it('matches the email domain case-insensitively', async () => {
    const { browser, auth, res } = await submitEmail('Alice@ACME.Example');
    assert.equal(res.url.origin, acmeOrigin, `ended at ${res.url.href}`);
    const form = parseForm(res.body, '/login');
    const done = await browser.post(new URL(form.action, res.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt: atRp });
    assert.ok(done.stoppedAt, 'the login reached the RP');
    const tokens = await exchange(fed.rp, done.stoppedAt, auth);
    assert.equal(tokens.claims()!.idp, 'acme');
  });

  it('matches the email domain exactly, never as a suffix or prefix', async () => {
    for (const email of ['eve@evil-acme.example', 'eve@sub.acme.example', 'eve@acme.example.evil', 'eve@xacme.example', 'eve@globex.example.acme.example']) {
      const { browser, res } = await submitEmail(email);
      assertErrorPage(fed, res, 'unknown_domain');
      assert.ok(res.body.includes(email.split('@')[1]!), 'the page names the domain it does not know');
      assert.ok(!visited(browser, acmeOrigin) && !visited(browser, globexOrigin), `${email} was sent to a partner`);
      assertNoCodeAtRp(browser);
    }
    // The same through login_hint.
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'eve@evil-acme.example' });
    const page = await browser.get(auth.url, { stopAt: atRp });
    assertErrorPage(fed, page, 'unknown_domain');
    assert.ok(!visited(browser, acmeOrigin));
  });

  it('an address without a domain shows the form again with an error', async () => {
    const { browser, res } = await submitEmail('alice');
    assert.equal(res.status, 400);
    assert.equal(res.url.origin, fed.concord.issuer);
    assert.match(res.body, /id="email-error"/);
    assert.equal(parseForm(res.body, '/login').fields.email, 'alice');
    assertNoCodeAtRp(browser);
  });

  it('a client restricted to Globex cannot be entered through Acme', async () => {
    const byEmail = await submitEmail('alice@acme.example', restricted);
    assertErrorPage(fed, byEmail.res, 'participant_not_allowed');
    assert.ok(!visited(byEmail.browser, acmeOrigin), 'Acme was asked to sign the user in');
    assertNoCodeAtRp(byEmail.browser);

    const byHint = new Browser();
    const hinted = await authorizationRequest(restricted, { idp_hint: 'acme' });
    assertErrorPage(fed, await byHint.get(hinted.url, { stopAt: atRp }), 'participant_not_allowed');
    assertNoCodeAtRp(byHint);

    // Its own participant works.
    const browser = new Browser();
    const auth = await authorizationRequest(restricted);
    const callback = await brokeredLogin(browser, auth, { email: 'bob@globex.example' });
    const tokens = await exchange(restricted, callback, auth);
    assert.equal(tokens.claims()!.idp, 'globex');
  });

  it('a participant whose IdP cannot be reached gets the unavailable page', async () => {
    const { browser, res } = await submitEmail('eve@initech.example');
    assertErrorPage(fed, res, 'upstream_unavailable');
    assertNoCodeAtRp(browser);
  });

  it('Cancel at the partner IdP ends the sign-in at the RP with access_denied (state, iss), and no code', async () => {
    const { browser, auth, res } = await submitEmail('alice@acme.example');
    assert.equal(res.url.origin, acmeOrigin);
    const cancel = parseForm(res.body, '/abort');
    const page = await browser.post(new URL(cancel.action, res.url), cancel.fields, { stopAt: atRp });
    assert.ok(page.chain.some((hop) => hop.url.pathname === '/broker/acme/callback' && hop.url.searchParams.get('error') === 'access_denied'), 'Acme answered access_denied');
    assert.ok(page.stoppedAt, `the RP got no answer: ${page.status} ${page.url.href}`);
    assert.equal(page.stoppedAt.searchParams.get('error'), 'access_denied');
    assert.equal(page.stoppedAt.searchParams.get('state'), auth.state);
    assert.equal(page.stoppedAt.searchParams.get('iss'), fed.concord.issuer);
    assertNoCodeAtRp(browser);
    const logged = fed.concord.logs.find((l) => l.msg === 'the upstream answered an error: returned to the service' && l.participant === 'acme');
    assert.equal(logged?.upstreamError, 'access_denied', 'the log line names the upstream’s own error');
  });

  it('a replayed upstream callback (Back after signing in) says the sign-in is finished, and gives no second code', async () => {
    const { browser } = await signedIn(fed, 'alice@acme.example');
    const brokerCallback = hopTo(browser, '/broker/acme/callback');
    const interactionCallback = browser.history.find((hop) => /^\/interaction\/[^/]+\/callback$/.test(hop.url.pathname))?.url;
    assert.ok(brokerCallback && interactionCallback);
    const codesBefore = browser.history.filter((hop) => hop.location && atRp(hop.location)).length;
    // The taken pending login leaves the mark of its interaction in its place (no key of its own):
    // "" when the state names the interaction (`{uid}.{random}`), as here.
    const state = brokerCallback.searchParams.get('state')!;
    const uid = interactionCallback.pathname.split('/')[2];
    assert.equal(state.split('.')[0], uid);
    assert.deepEqual(await fed.concord.concord.store.getTemp(`upstream-login:${state}`), { taken: '' });
    assert.equal(await fed.concord.concord.store.getTemp(`interaction-trail-state:${state}`), undefined);
    for (const url of [brokerCallback, interactionCallback]) {
      const replay = await browser.get(url, { stopAt: atRp });
      assert.equal(replay.stoppedAt, undefined, `replay of ${url.pathname} reached the RP`);
      assert.equal(replay.status, 200, replay.body.slice(0, 400));
      assert.match(replay.body, /This sign-in is finished/);
      assert.match(replay.body, /You are signed in to /);
      assert.doesNotMatch(replay.body, /expired/i);
    }
    assert.equal(browser.history.filter((hop) => hop.location && atRp(hop.location)).length, codesBefore, 'a replay produced another redirect to the RP');
  });

  it('refuses the upstream callback in a browser that did not start the login', async () => {
    const victim = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const start = await victim.get(auth.url);
    const emailForm = parseForm(start.body, '/login');
    const partnerPage = await victim.post(new URL(emailForm.action, start.url), { ...emailForm.fields, email: 'alice@acme.example' });
    const form = parseForm(partnerPage.body, '/login');
    // The victim's browser is about to come back to Concord; the callback URL leaks to another browser.
    const toConcord = await victim.post(new URL(form.action, partnerPage.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, {
      stopAt: (u) => u.pathname === '/broker/acme/callback',
    });
    assert.ok(toConcord.stoppedAt, 'Acme redirected back to Concord');

    const attacker = new Browser();
    const stolen = await attacker.get(toConcord.stoppedAt, { stopAt: atRp });
    assert.equal(stolen.stoppedAt, undefined, 'the other browser got a code');
    assertErrorPage(fed, stolen, 'session_expired');
    assertNoCodeAtRp(attacker);

    // The refused attempt did not burn the real login: the browser that began it finishes.
    const done = await victim.get(toConcord.stoppedAt, { stopAt: atRp });
    assert.ok(done.stoppedAt, `the victim's login did not finish: ${done.status} ${done.body.slice(0, 200)}`);
    const tokens = await exchange(fed.rp, done.stoppedAt, auth);
    assert.equal(tokens.claims()!.idp, 'acme');
  });

  /**
   * A login up to the upstream's redirect to Concord's broker callback (not followed), then Concord's
   * redirect from there to the interaction's callback (not followed). `earlierState`: the pending
   * login is moved first to a state of an earlier version's form (random, naming no interaction), as
   * one begun by such an instance would be, and the upstream's answer carries that state instead.
   */
  async function upToInteractionCallback(email: string, options: { earlierState?: boolean } = {}) {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const start = await browser.get(auth.url);
    const emailForm = parseForm(start.body, '/login');
    const partnerPage = await browser.post(new URL(emailForm.action, start.url), { ...emailForm.fields, email });
    const form = parseForm(partnerPage.body, '/login');
    const toBroker = await browser.post(new URL(form.action, partnerPage.url), { ...form.fields, username: email, password: DEMO_PASSWORD }, {
      stopAt: (u) => u.pathname === '/broker/acme/callback',
    });
    assert.ok(toBroker.stoppedAt, `Acme did not answer at the broker callback: ${toBroker.status} ${toBroker.url.href}`);
    const answer = new URL(toBroker.stoppedAt);
    const begun = answer.searchParams.get('state')!;
    if (options.earlierState) {
      const { store } = fed.concord.concord;
      const state = answer.searchParams.get('state')!;
      const earlier = randomBytes(32).toString('base64url');
      const record = await store.getTemp<{ pending: { state: string }; interactionUid?: string }>(`upstream-login:${state}`);
      assert.ok(record, 'the pending login is kept under its state');
      // As an earlier version kept it: whole (its state, and the interaction, which such a state does not name).
      record.pending.state = earlier;
      record.interactionUid = state.split('.')[0]!;
      await store.setTemp(`upstream-login:${earlier}`, record, 600);
      await store.deleteTemp(`upstream-login:${state}`);
      answer.searchParams.set('state', earlier);
    }
    const toConcord = await browser.get(answer, { stopAt: (u) => /^\/interaction\/[^/]+\/callback$/.test(u.pathname) });
    assert.ok(toConcord.stoppedAt, `Concord sent the callback on: ${toConcord.status} ${toConcord.url.href}`);
    return { browser, auth, answer, begun, redirect: toConcord.stoppedAt };
  }

  /** The store calls Concord made while answering `url` (its request line and the calls share a request id). */
  function storeCalls(url: URL): string[] {
    const request = fed.concord.logs.findLast((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.split('?')[0] === url.pathname);
    assert.ok(request, `no request line for ${url.pathname}`);
    return fed.concord.logs.filter((l) => l.msg === 'store call' && l.requestId === request.requestId).map((l) => `${String(l.op)} ${String(l.target ?? '')}`);
  }

  /** The interaction uid in an /interaction/{uid}/... path. */
  const uidOf = (url: URL) => url.pathname.split('/')[2]!;

  it('a GET answer rides in the redirect to the interaction’s callback: no store call at the broker callback, no carried-callback key', async () => {
    const { browser, auth, answer, redirect } = await upToInteractionCallback('alice@acme.example');
    // The upstream's state names the interaction (and 32 random bytes): the broker callback needs no read.
    const state = answer.searchParams.get('state')!;
    assert.match(state, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    assert.equal(state.split('.')[0], uidOf(redirect));
    // The redirect carries the upstream's answer as it came, and Concord's participant and check: nothing else.
    assert.deepEqual([...redirect.searchParams.keys()].sort(), [...answer.searchParams.keys(), 'concord_check', 'concord_participant'].sort());
    for (const [name, value] of answer.searchParams) assert.equal(redirect.searchParams.get(name), value, name);
    assert.equal(redirect.searchParams.get('concord_participant'), 'acme');
    assert.deepEqual(storeCalls(answer), [], 'the broker callback makes no store call');
    const done = await browser.get(redirect, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no code: ${done.status} ${done.body.slice(0, 200)}`);
    const calls = storeCalls(redirect);
    assert.ok(calls.includes('swapTemp upstream-login'), calls.join(', '));
    assert.deepEqual(calls.filter((c) => c.includes('upstream-callback') || c.startsWith('getTemp upstream-')), [], 'no carried callback, nothing read before it is taken');
    assert.equal((await exchange(fed.rp, done.stoppedAt, auth)).claims()!.idp, 'acme');
  });

  it('a redirect with any parameter of the answer, the participant, the check or the interaction changed is refused, and takes nothing', async () => {
    const { browser, auth, redirect } = await upToInteractionCallback('alice@acme.example');
    const other = await upToInteractionCallback('carol@acme.example');
    const changed = (edit: (url: URL) => void) => {
      const url = new URL(redirect);
      edit(url);
      return url;
    };
    const forgeries: Record<string, URL> = {
      code: changed((u) => u.searchParams.set('code', other.redirect.searchParams.get('code')!)),
      'code (one character)': changed((u) => u.searchParams.set('code', `${u.searchParams.get('code')!.slice(0, -1)}x`)),
      state: changed((u) => u.searchParams.set('state', other.redirect.searchParams.get('state')!)),
      iss: changed((u) => u.searchParams.set('iss', fed.globex.issuer)),
      'iss removed': changed((u) => u.searchParams.delete('iss')),
      'error added': changed((u) => u.searchParams.set('error', 'access_denied')),
      participant: changed((u) => u.searchParams.set('concord_participant', 'globex')),
      check: changed((u) => u.searchParams.set('concord_check', other.redirect.searchParams.get('concord_check')!)),
      'check removed': changed((u) => u.searchParams.delete('concord_check')),
      'another interaction': changed((u) => (u.pathname = `/interaction/${uidOf(other.redirect)}/callback`)),
      'the other login’s answer with this check': changed((u) => {
        u.search = other.redirect.search;
        u.searchParams.set('concord_check', redirect.searchParams.get('concord_check')!);
      }),
    };
    for (const [what, url] of Object.entries(forgeries)) {
      const res = await browser.get(url, { stopAt: atRp });
      assert.equal(res.stoppedAt, undefined, `${what}: a code`);
      assert.equal(res.status, 400, `${what}: ${res.status} ${res.body.slice(0, 300)}`);
    }
    assertNoCodeAtRp(browser);
    // Nothing was taken: both logins still finish, each in its own browser.
    for (const login of [{ browser, auth, redirect, email: 'alice@acme.example' }, { ...other, email: 'carol@acme.example' }]) {
      const done = await login.browser.get(login.redirect, { stopAt: atRp });
      assert.ok(done.stoppedAt, `${login.email}: ${done.status} ${done.body.slice(0, 200)}`);
      assert.equal((await exchange(fed.rp, done.stoppedAt, login.auth)).claims()!.email, login.email);
    }
  });

  it('the answer again (Back to the upstream) after its callback, before the resume: back to the interaction, and the login still finishes', async () => {
    const { browser, auth, answer, redirect } = await upToInteractionCallback('alice@acme.example');
    const uid = uidOf(redirect);
    const toResume = await browser.get(redirect, { stopAt: (u) => u.origin === fed.concord.issuer && !u.pathname.startsWith('/interaction/') });
    assert.ok(toResume.stoppedAt, `the callback did not send the browser on to the resume: ${toResume.status} ${toResume.body.slice(0, 200)}`);
    // The pending login is taken; its mark sends the answer's replay to its interaction, not to an error.
    const again = await browser.get(answer, { stopAt: (u) => u.pathname === `/interaction/${uid}` });
    assert.ok(again.stoppedAt, `the replay: ${again.status} ${again.body.slice(0, 300)}`);
    const done = await browser.get(toResume.stoppedAt, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no code: ${done.status} ${done.body.slice(0, 200)}`);
    assert.equal((await exchange(fed.rp, done.stoppedAt, auth)).claims()!.idp, 'acme');
  });

  it('a GET answer too long to ride in a redirect within the URL limit is carried, and finishes', async () => {
    const { browser, auth, answer } = await upToInteractionCallback('alice@acme.example');
    // The broker callback took nothing: the same answer, with parameters of the upstream's own that
    // grow threefold once encoded again (~ as %7E), within the limit here but not after.
    const long = new URL(answer);
    for (const name of ['x1', 'x2', 'x3']) long.search += `&${name}=${'~'.repeat(1000)}`;
    assert.ok(long.pathname.length + long.search.length < 8 * 1024);
    const toConcord = await browser.get(long, { stopAt: (u) => /^\/interaction\/[^/]+\/callback$/.test(u.pathname) });
    assert.ok(toConcord.stoppedAt, `${toConcord.status} ${toConcord.body.slice(0, 200)}`);
    assert.deepEqual([...toConcord.stoppedAt.searchParams.keys()].sort(), ['check', 'ref', 'state']);
    const done = await browser.get(toConcord.stoppedAt, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no code: ${done.status} ${done.body.slice(0, 200)}`);
    assert.equal((await exchange(fed.rp, done.stoppedAt, auth)).claims()!.idp, 'acme');
  });

  it('a GET answer of a login begun by an earlier version (a state naming no interaction) is carried, and finishes', async () => {
    const { browser, auth, begun, redirect } = await upToInteractionCallback('alice@acme.example', { earlierState: true });
    // This version's state names the interaction; an earlier version's, random alone, is carried as it was.
    assert.equal(begun.split('.')[0], uidOf(redirect));
    assert.deepEqual([...redirect.searchParams.keys()].sort(), ['check', 'ref', 'state']);
    const done = await browser.get(redirect, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no code: ${done.status} ${done.body.slice(0, 200)}`);
    const calls = storeCalls(redirect);
    assert.ok(calls.includes('takeTemp upstream-callback') && calls.includes('swapTemp upstream-login'), calls.join(', '));
    assert.deepEqual(calls.filter((c) => c.startsWith('getTemp upstream-')), [], 'nothing read before it is taken');
    assert.equal((await exchange(fed.rp, done.stoppedAt, auth)).claims()!.idp, 'acme');
  });

  it('a carried redirect whose check does not bind its state to the interaction takes nothing of another login: that login still finishes', async () => {
    const victim = await upToInteractionCallback('alice@acme.example', { earlierState: true });
    const attacker = await upToInteractionCallback('carol@acme.example', { earlierState: true });
    // The attacker's own redirect, with the victim's state (leaked) in place of its own.
    const forged = new URL(attacker.redirect);
    forged.searchParams.set('state', victim.redirect.searchParams.get('state')!);
    const own = await attacker.browser.get(forged, { stopAt: atRp });
    // Not bound: the callback is read, and the attacker's own login goes on by its carried state.
    assert.ok(own.stoppedAt, `the attacker's own login: ${own.status} ${own.body.slice(0, 200)}`);
    assert.equal((await exchange(fed.rp, own.stoppedAt, attacker.auth)).claims()!.email, 'carol@acme.example');
    const done = await victim.browser.get(victim.redirect, { stopAt: atRp });
    assert.ok(done.stoppedAt, `the victim's login did not finish: ${done.status} ${done.body.slice(0, 200)}`);
    assert.equal((await exchange(fed.rp, done.stoppedAt, victim.auth)).claims()!.email, 'alice@acme.example');
  });

  it('a carried redirect without a check (an earlier version’s broker callback) still finishes the login', async () => {
    const { browser, auth, redirect } = await upToInteractionCallback('alice@acme.example', { earlierState: true });
    const plain = new URL(redirect);
    plain.search = new URLSearchParams({ ref: redirect.searchParams.get('ref')! }).toString();
    const done = await browser.get(plain, { stopAt: atRp });
    assert.ok(done.stoppedAt, `no code: ${done.status} ${done.body.slice(0, 200)}`);
    assert.ok(storeCalls(plain).includes('getTemp upstream-login'), 'the pending login is read before it is taken');
    assert.equal((await exchange(fed.rp, done.stoppedAt, auth)).claims()!.idp, 'acme');
  });
});
