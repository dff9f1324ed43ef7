import type { OidcLogout } from '../../src/upstream/index.ts';
import type { OidcUpstream } from '../../src/config/index.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { DEMO_PASSWORD, type PartnerIdp } from '../../demo/partner-idp.ts';
import { errorText } from '../../src/pages/index.ts';
import { authorizationRequest, exchange, RP, startFederation, startParticipantIdp, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { startHostileIdp, type HostileIdp, type Quirks } from '../support/hostile-idp.ts';
import { freePort } from '../support/ports.ts';
import { admin, assertErrorPage, assertNoCodeAtRp, atRp } from './broker-helpers.ts';
import { scrape } from './observability-support.ts';

/**
 * Issue 18: any standards-following IdP a partner brings works the first time; one that
 * misbehaves is named precisely. One case (or a few) per bullet of the issue, against real HTTP
 * listeners: the quirky IdP (test/support/hostile-idp.ts, its quirks switched on one at a time)
 * and real oidc-provider partner IdPs (demo/partner-idp.ts) set up the way real IdPs are.
 * Each case asserts the outcome: the login succeeds with the right claims, or ends with the named
 * page, log line, metric or OAuth error at the service.
 */

/** A participant on a quirky IdP (its users are `user-1@{domain}`). */
const quirkyParticipant = (id: string, idp: HostileIdp, domain: string, upstream: Record<string, unknown> = {}) => ({
  id,
  displayName: `Quirky ${id}`,
  domains: [domain],
  upstream: { type: 'oidc', issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, allowInsecureHttp: true, ...upstream },
});

/** A participant on a real oidc-provider partner IdP (startParticipantIdp: client `concord`, secret upstreamSecret(id)). */
const partnerParticipant = (id: string, idp: PartnerIdp, domain: string, upstream: Record<string, unknown> = {}) => ({
  id,
  displayName: `Partner ${id}`,
  domains: [domain],
  upstream: { type: 'oidc', issuer: idp.issuer, clientId: 'concord', clientSecret: `${id}-upstream-secret-0123456789`, allowInsecureHttp: true, ...upstream },
});

const user = (domain: string) => [{ sub: `${domain.split('.')[0]}-user-1`, email: `alice@${domain}`, name: 'Alice Interop', preferred_username: 'alice' }];

describe('interop: standards-following IdPs work the first time, misbehaving ones are named', () => {
  let fed: Federation;
  /** General quirky IdP: its quirks are switched per case. */
  let quirky: HostileIdp;
  /** Quirky IdPs whose discovery must differ from the start. */
  let postOnly: HostileIdp;
  let secretJwt: HostileIdp;
  let noUserinfo: HostileIdp;
  let idn: HostileIdp;
  let rotating: HostileIdp;
  let together: HostileIdp;
  let rogue: HostileIdp;
  let narrow: HostileIdp;
  /** Real oidc-provider IdPs. */
  let lemon: PartnerIdp;
  let pkjwt: PartnerIdp;
  let formPost: PartnerIdp;
  let signedUserinfo: PartnerIdp;

  before(async () => {
    const port = await freePort();
    const concordIssuer = `http://127.0.0.1:${port}`;
    [quirky, postOnly, secretJwt, noUserinfo, idn, rotating, together, rogue, narrow] = await Promise.all([
      startHostileIdp({ domain: 'quirky.example' }),
      // LemonLDAP::NG 2.16: lists client_secret_post only, and reads Basic credentials undecoded.
      startHostileIdp({ domain: 'post-only.example', clientSecret: 'post-only-secret-with-dashes-0123', quirks: { tokenEndpointAuthMethod: 'client_secret_post', rawBasicCredentials: true } }),
      startHostileIdp({ domain: 'secret-jwt.example', quirks: { tokenEndpointAuthMethod: 'client_secret_jwt' } }),
      startHostileIdp({ domain: 'no-userinfo.example', quirks: { claimsOnlyAtUserinfo: true } }),
      startHostileIdp({ domain: 'xn--bcher-kva.example', quirks: { email: 'user-1@Bücher.Example.' } }),
      startHostileIdp({ domain: 'rotating.example' }),
      startHostileIdp({ domain: 'together.example' }),
      startHostileIdp({ domain: 'rogue.example', mode: 'unknown_key' }),
      startHostileIdp({ domain: 'narrow.example' }),
    ]);
    const partner = (id: string, domain: string, extra: Parameters<typeof startParticipantIdp>[0]['client'] = {}, options: Parameters<typeof startParticipantIdp>[0]['partner'] = {}) =>
      startParticipantIdp({ concordIssuer, participantId: id, name: id, domain, users: user(domain), client: extra, partner: options });
    [lemon, pkjwt, formPost, signedUserinfo] = await Promise.all([
      // Claims at userinfo only (oidc-provider's default, as LemonLDAP::NG), client_secret_post only.
      partner('lemon', 'lemon.example', { token_endpoint_auth_method: 'client_secret_post' }, { claimsAtUserinfoOnly: true }),
      // private_key_jwt with Concord's published client keys.
      partner('pkjwt', 'pkjwt.example', { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${concordIssuer}/broker/jwks` }),
      partner('formpost', 'formpost.example'),
      partner('signedui', 'signedui.example', { userinfo_signed_response_alg: 'RS256' }, { claimsAtUserinfoOnly: true }),
    ]);
    fed = await startFederation({
      port,
      // No scheduled probes: the JWKS fetches counted below are the logins' own.
      settings: { upstream: { healthInterval: 0, timeoutMs: 3000 } },
      participants: [
        quirkyParticipant('quirky', quirky, 'quirky.example'),
        quirkyParticipant('post-only', postOnly, 'post-only.example'),
        quirkyParticipant('secret-jwt', secretJwt, 'secret-jwt.example', { tokenEndpointAuthMethod: 'client_secret_jwt' }),
        quirkyParticipant('no-userinfo', noUserinfo, 'no-userinfo.example', { fetchUserinfo: false }),
        // Written in Unicode with a trailing dot: stored canonical.
        quirkyParticipant('idn', idn, 'Bücher.Example.'),
        quirkyParticipant('rotating', rotating, 'rotating.example'),
        quirkyParticipant('together', together, 'together.example'),
        quirkyParticipant('rogue', rogue, 'rogue.example'),
        quirkyParticipant('narrow', narrow, 'narrow.example', { forwardParams: ['login_hint'] }),
        partnerParticipant('lemon', lemon, 'lemon.example', { tokenEndpointAuthMethod: 'client_secret_post' }),
        partnerParticipant('pkjwt', pkjwt, 'pkjwt.example', { tokenEndpointAuthMethod: 'private_key_jwt' }),
        partnerParticipant('formpost', formPost, 'formpost.example', { responseMode: 'form_post' }),
        partnerParticipant('signedui', signedUserinfo, 'signedui.example'),
      ],
    });
  });
  after(async () => {
    await fed.close();
    await Promise.all([quirky, postOnly, secretJwt, noUserinfo, idn, rotating, together, rogue, narrow, lemon, pkjwt, formPost, signedUserinfo].map((idp) => idp.close()));
  });

  /**
   * A login as a user's browser makes it: the service's request (login_hint picks the participant),
   * then through whatever the IdP shows: its password page (real partners), or a form_post page.
   */
  async function login(email: string, params: Record<string, string> = {}, browser = new Browser()) {
    const auth = await authorizationRequest(fed.rp, { login_hint: email, ...params });
    let res = await browser.get(auth.url, { stopAt: atRp });
    for (let step = 0; step < 3 && !res.stoppedAt && res.status === 200 && res.url.origin !== fed.concord.issuer; step++) {
      if (/type="password"/.test(res.body)) {
        const form = parseForm(res.body, '/login');
        res = await browser.post(new URL(form.action, res.url), { ...form.fields, username: email, password: DEMO_PASSWORD }, { stopAt: atRp });
      } else {
        res = await postForm(browser, res);
      }
    }
    return { browser, auth, res };
  }

  /** Submits the (auto-submitting) form_post page an IdP answered with, as a browser would. */
  function postForm(browser: Browser, page: BrowserResponse) {
    const form = parseForm(page.body, '/broker/');
    return browser.post(new URL(form.action, page.url), form.fields, { stopAt: atRp });
  }

  async function signedIn(email: string, params: Record<string, string> = {}, browser = new Browser()) {
    const { auth, res } = await login(email, params, browser);
    assert.ok(res.stoppedAt?.searchParams.has('code'), `no code at the RP: ${res.status} ${res.url.href} ${res.body.slice(0, 400)}`);
    const tokens = await exchange(fed.rp, res.stoppedAt!, auth);
    return { browser, tokens, claims: tokens.claims()! };
  }

  const count = (idp: HostileIdp, request: string) => idp.requests.filter((r) => r === request).length;

  /** The quirky IdP with exactly these quirks, for one case. */
  const withQuirks = (quirks: Quirks) => quirky.setQuirks(quirks);

  describe('1. claims only at userinfo', () => {
    it('reach the service: userinfo is fetched because the IdP publishes it (real oidc-provider, LemonLDAP::NG-style)', async () => {
      const { claims } = await signedIn('alice@lemon.example');
      assert.equal(claims.sub, 'lemon:lemon-user-1');
      assert.equal(claims.email, 'alice@lemon.example');
      assert.equal(claims.email_verified, true);
      assert.equal(claims.name, 'Alice Interop');
    });

    it('reach the service from the quirky IdP too, and fetchUserinfo: false turns the fetch off', async () => {
      withQuirks({ claimsOnlyAtUserinfo: true });
      const calls = count(quirky, 'GET /userinfo');
      const { claims } = await signedIn('user-1@quirky.example');
      assert.equal(claims.email, 'user-1@quirky.example');
      assert.equal(claims.name, 'Hostile User');
      assert.equal(count(quirky, 'GET /userinfo'), calls + 1);

      const off = await signedIn('user-1@no-userinfo.example');
      assert.equal(off.claims.email, undefined, 'fetchUserinfo: false, and the ID token has no email');
      assert.equal(count(noUserinfo, 'GET /userinfo'), 0);
    });

    it('a signed userinfo answer is verified like the ID token (real oidc-provider), one signed by a key the IdP does not publish is refused', async () => {
      const { claims } = await signedIn('alice@signedui.example');
      assert.equal(claims.email, 'alice@signedui.example');

      withQuirks({ claimsOnlyAtUserinfo: true, signedUserinfo: 'current_key' });
      assert.equal((await signedIn('user-1@quirky.example')).claims.email, 'user-1@quirky.example');
      withQuirks({ claimsOnlyAtUserinfo: true, signedUserinfo: 'unknown_key' });
      const { browser, res } = await login('user-1@quirky.example');
      assertErrorPage(fed, res, 'upstream_invalid');
      assertNoCodeAtRp(browser);
    });
  });

  describe('2. client authentication per participant', () => {
    it('client_secret_post, chosen on its own from what the IdP lists, with a secret Basic would mangle', async () => {
      const { claims } = await signedIn('user-1@post-only.example');
      assert.equal(claims.sub, 'post-only:user-1');
      assert.deepEqual(postOnly.clientAuthentications, ['client_secret_post']);
    });

    it('client_secret_post set explicitly, against a real oidc-provider whose client accepts only that', async () => {
      assert.equal((await signedIn('alice@lemon.example')).claims.idp, 'lemon');
    });

    it('client_secret_jwt', async () => {
      const { claims } = await signedIn('user-1@secret-jwt.example');
      assert.equal(claims.idp, 'secret-jwt');
      assert.deepEqual(secretJwt.clientAuthentications, ['client_secret_jwt']);
    });

    it('private_key_jwt with Concord’s own key, published at /broker/jwks (public members only), against a real oidc-provider', async () => {
      const { claims } = await signedIn('alice@pkjwt.example');
      assert.equal(claims.sub, 'pkjwt:pkjwt-user-1');
      const res = await fetch(`${fed.concord.issuer}/broker/jwks`);
      assert.equal(res.status, 200);
      const jwks = (await res.json()) as { keys: Array<Record<string, unknown>> };
      assert.ok(jwks.keys.length >= 1);
      for (const key of jwks.keys) {
        assert.equal(key.kty, 'RSA');
        assert.equal(key.alg, 'RS256');
        assert.ok(typeof key.kid === 'string' && key.kid.length > 0);
        for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(key[secret], undefined, `private member ${secret} published`);
      }
      const { kid } = await fed.concord.concord.clientKeys.signingKey();
      assert.ok(jwks.keys.some((k) => k.kid === kid), 'the signing key is published');
    });

    it('the registration check refuses a method the IdP does not list, naming the setting and what it lists', async () => {
      // Another client of the same IdP (one client per participant and IdP).
      const res = await admin(fed, 'POST', '/participants', quirkyParticipant('basic-wanted', postOnly, 'basic-wanted.example', { clientId: 'concord-2', tokenEndpointAuthMethod: 'client_secret_basic' }));
      assert.equal(res.status, 422);
      const body = (await res.json()) as { error: string; field: string; message: string; reason: string };
      assert.equal(body.field, 'upstream.tokenEndpointAuthMethod');
      assert.equal(body.reason, 'upstream_misconfigured');
      assert.match(body.message, /client_secret_basic is not one the upstream supports \(client_secret_post\)/);
    });
  });

  describe('3. upstream keys follow the IdP', () => {
    it('a login right after the IdP rotated its keys succeeds, with one JWKS fetch', async () => {
      await signedIn('user-1@rotating.example');
      const fetched = count(rotating, 'GET /jwks');
      await rotating.rotateKeys();
      await signedIn('user-1@rotating.example');
      assert.equal(count(rotating, 'GET /jwks'), fetched + 1);
    });

    it('logins at the same moment after a rotation share one fetch', async () => {
      await signedIn('user-1@together.example');
      const fetched = count(together, 'GET /jwks');
      await together.rotateKeys();
      const results = await Promise.all([1, 2, 3, 4].map(() => signedIn('user-1@together.example')));
      for (const { claims } of results) assert.equal(claims.idp, 'together');
      assert.equal(count(together, 'GET /jwks'), fetched + 1);
    });

    it('tokens naming unknown keys refetch at most once per window, then are refused', async () => {
      for (let i = 0; i < 3; i++) {
        const { browser, res } = await login('user-1@rogue.example');
        assertErrorPage(fed, res, 'upstream_invalid');
        assertNoCodeAtRp(browser);
      }
      // One fetch for the first login, one refetch for the unknown kid, none for the next two.
      assert.equal(count(rogue, 'GET /jwks'), 2);
    });
  });

  describe('4. callbacks by redirect or form_post', () => {
    it('form_post: a real oidc-provider posts its answer; Concord carries it to the interaction by a 303', async () => {
      const { browser, res } = await login('alice@formpost.example');
      assert.ok(res.stoppedAt?.searchParams.has('code'), `no code: ${res.status} ${res.url.href}`);
      const asked = browser.history.find((hop) => hop.url.origin === new URL(formPost.issuer).origin && hop.url.pathname === '/auth')?.url;
      assert.equal(asked?.searchParams.get('response_mode'), 'form_post');
      const posted = browser.history.find((hop) => hop.method === 'POST' && hop.url.pathname === '/broker/formpost/callback');
      assert.equal(posted?.status, 303);
      assert.match(posted?.location?.pathname ?? '', /^\/interaction\/[^/]+\/callback$/);
      assert.equal(posted?.location?.searchParams.has('code'), false, 'the code stays out of URLs');
      // Though its state names the interaction (a GET answer's would ride in the redirect), a posted answer is carried.
      assert.equal(asked?.searchParams.get('state')?.split('.')[0], posted?.location?.pathname.split('/')[2]);
      assert.deepEqual([...(posted?.location?.searchParams.keys() ?? [])].sort(), ['check', 'ref', 'state']);
    });

    it('form_post: another browser that submits a victim’s posted answer gets no sign-in, and does not burn it', async () => {
      // The attacker's own login stops at the IdP's auto-submitting page.
      const attacker = new Browser();
      const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@formpost.example' });
      let page = await attacker.get(auth.url, { stopAt: atRp });
      const form = parseForm(page.body, '/login');
      page = await attacker.post(new URL(form.action, page.url), { ...form.fields, username: 'alice@formpost.example', password: DEMO_PASSWORD }, { stopAt: atRp });
      const answer = parseForm(page.body, '/broker/formpost/callback');
      // The victim's browser is made to post it (a cross-site form): no interaction cookie there.
      const victim = new Browser();
      const forced = await victim.post(new URL(answer.action, page.url), answer.fields, { stopAt: atRp });
      assert.equal(forced.stoppedAt, undefined);
      assertErrorPage(fed, forced, 'session_expired');
      assertNoCodeAtRp(victim);
      // The browser that began the login still finishes it.
      const done = await attacker.post(new URL(answer.action, page.url), answer.fields, { stopAt: atRp });
      assert.ok(done.stoppedAt?.searchParams.has('code'));
      assert.equal((await exchange(fed.rp, done.stoppedAt!, auth)).claims()!.idp, 'formpost');
    });

    it('form_post from the quirky IdP', async () => {
      withQuirks({});
      const res = await admin(fed, 'PUT', '/participants/quirky', { ...quirkyParticipant('quirky', quirky, 'quirky.example'), upstream: { ...quirkyParticipant('quirky', quirky, 'quirky.example').upstream, responseMode: 'form_post' } });
      assert.equal(res.status, 200, await res.text());
      await waitFor(() => (fed.concord.concord.registry.participant('quirky')?.config.upstream as OidcUpstream | undefined)?.responseMode === 'form_post');
      try {
        const { claims } = await signedIn('user-1@quirky.example');
        assert.equal(claims.idp, 'quirky');
        assert.equal(quirky.lastAuthorization?.get('response_mode'), 'form_post');
      } finally {
        await admin(fed, 'PUT', '/participants/quirky', quirkyParticipant('quirky', quirky, 'quirky.example'));
        await waitFor(() => (fed.concord.concord.registry.participant('quirky')?.config.upstream as OidcUpstream | undefined)?.responseMode === 'query');
      }
    });

    it('other methods, unknown participants and other paths under /broker/ get Concord’s page, a logged reference and a count', async () => {
      const before = await scrape(fed.concord.adminUrl);
      const put = await new Browser().request('PUT', `${fed.concord.issuer}/broker/quirky/callback`, undefined);
      assert.equal(put.status, 405);
      assert.equal(put.headers.get('allow'), 'GET, POST');
      assert.ok(put.body.includes(errorText('broker_not_found').heading));
      const reference = /Reference: <code>([^<]+)<\/code>/.exec(put.body)?.[1];
      assert.ok(fed.concord.logs.some((l) => l.reference === reference && l.page === 'broker_not_found' && l.method === 'PUT'), 'no log line with the page’s reference');
      const unknown = await new Browser().get(`${fed.concord.issuer}/broker/nobody/callback?state=x&code=y`);
      assertErrorPage(fed, unknown, 'unknown_participant');
      const posted = await new Browser().post(`${fed.concord.issuer}/broker/nobody/callback`, { state: 'x', code: 'y' });
      assertErrorPage(fed, posted, 'unknown_participant');
      const elsewhere = await new Browser().get(`${fed.concord.issuer}/broker/quirky/elsewhere`);
      assertErrorPage(fed, elsewhere, 'broker_not_found');
      const m = await scrape(fed.concord.adminUrl);
      const delta = (outcome: string) => (m.value('concord_login_total', { outcome }) ?? 0) - (before.value('concord_login_total', { outcome }) ?? 0);
      assert.equal(delta('broker_not_found'), 2);
      assert.equal(delta('unknown_participant'), 2);
    });
  });

  describe('5. one normal form for domains', () => {
    /** Posts `email` on Concord's login page; returns where it went. */
    async function typed(email: string) {
      const browser = new Browser();
      const auth = await authorizationRequest(fed.rp);
      const page = await browser.get(auth.url, { stopAt: atRp });
      const form = parseForm(page.body, '/login');
      return browser.post(new URL(form.action, page.url), { ...form.fields, email }, { stopAt: atRp });
    }

    it('home-realm discovery reads a trailing dot, case, Unicode and the ideographic full stop as the one domain', async () => {
      for (const email of ['Alice@ACME.Example.', 'alice@acme。example', 'alice@ａｃｍｅ.example']) {
        const res = await typed(email);
        assert.equal(res.url.origin, new URL(fed.acme.issuer).origin, `${email} went to ${res.url.href}`);
        assert.equal(parseForm(res.body, '/login').fields.username, email, 'the address goes on as the user typed it');
      }
      const idnUser = await typed('user-1@bücher.example');
      assert.ok(idnUser.stoppedAt?.searchParams.has('code'), `bücher.example did not reach its participant: ${idnUser.url.href}`);
    });

    it('login_hint and idp_hint too', async () => {
      const browser = new Browser();
      const hinted = await browser.get((await authorizationRequest(fed.rp, { login_hint: 'alice@Acme.Example.' })).url, { stopAt: atRp });
      assert.equal(hinted.url.origin, new URL(fed.acme.issuer).origin);
      const byDomain = await browser.get((await authorizationRequest(fed.rp, { idp_hint: 'GLOBEX.example.' })).url, { stopAt: atRp });
      assert.equal(byDomain.url.origin, new URL(fed.globex.issuer).origin);
    });

    it('an address with two @ is invalid; an unknown domain is named as typed', async () => {
      const twice = await typed('alice@@acme.example');
      assert.equal(twice.status, 400);
      assert.equal(twice.url.origin, fed.concord.issuer);
      assert.match(twice.body, /Enter a full work email address/);
      assert.match(twice.body, /value="alice@@acme.example"/);
      const unknown = await typed('bob@Nowhere.Example.');
      assertErrorPage(fed, unknown, 'unknown_domain');
      assert.match(unknown.body, /addresses at Nowhere\.Example\./);
    });

    it('the email is released as verified in canonical form; a foreign preferred_username is not released', async () => {
      const { claims } = await signedIn('user-1@xn--bcher-kva.example');
      assert.equal(claims.email, 'user-1@xn--bcher-kva.example');
      assert.equal(claims.email_verified, true);
      assert.equal(fed.concord.concord.registry.participant('idn')?.config.domains[0], 'xn--bcher-kva.example', 'stored canonical');

      withQuirks({ extraClaims: { preferred_username: 'ceo@globex.example' } });
      assert.equal((await signedIn('user-1@quirky.example')).claims.preferred_username, undefined);
      withQuirks({ extraClaims: { preferred_username: 'User-1@QUIRKY.example' } });
      assert.equal((await signedIn('user-1@quirky.example')).claims.preferred_username, 'User-1@quirky.example');
    });

    it('two spellings of one domain conflict at registration', async () => {
      const spelled = await admin(fed, 'POST', '/participants', quirkyParticipant('acme-again', quirky, 'ACME.example.'));
      assert.equal(spelled.status, 409);
      assert.equal(((await spelled.json()) as { error: string }).error, 'domain_conflict');
      const twice = await admin(fed, 'POST', '/participants', { ...quirkyParticipant('twice', quirky, 'twice.example'), domains: ['twice.example', 'TWICE.example.'] });
      assert.equal(twice.status, 422);
      assert.match(((await twice.json()) as { message: string }).message, /listed twice/);
    });
  });

  describe('6. lenient where harmless, strict where it matters', () => {
    it('a token response without token_type, or with expires_in as a string, signs in', async () => {
      for (const quirks of [{ tokenType: null }, { tokenType: 'bearer' }, { expiresInAsString: true }] satisfies Quirks[]) {
        withQuirks(quirks);
        assert.equal((await signedIn('user-1@quirky.example')).claims.idp, 'quirky', JSON.stringify(quirks));
      }
    });

    it('an answer Concord cannot use is "not set up correctly", a failed check is "failed our security checks"', async () => {
      withQuirks({ tokenResponseNotJson: true });
      const unusable = await login('user-1@quirky.example');
      assertErrorPage(fed, unusable.res, 'upstream_misconfigured');
      assert.match(unusable.res.body, /not set up correctly/);
      withQuirks({});
      quirky.setMode('bad_signature');
      try {
        const forged = await login('user-1@quirky.example');
        assertErrorPage(fed, forged.res, 'upstream_invalid');
        assert.match(forged.res.body, /failed our security checks/);
      } finally {
        quirky.setMode('ok');
      }
    });

    it('the log line carries the upstream’s own error and description, never its tokens', async () => {
      withQuirks({ tokenError: 'invalid_client' });
      const { res } = await login('user-1@quirky.example');
      const reference = assertErrorPage(fed, res, 'upstream_misconfigured');
      const line = fed.concord.logs.find((l) => l.reference === reference && l.page === 'upstream_misconfigured');
      assert.equal(line?.upstreamError, 'invalid_client');
      assert.equal(line?.upstreamErrorDescription, 'the quirky IdP answers invalid_client');
      assert.equal(line?.kind, 'misconfigured');
      assert.ok(!fed.concord.rawLogs().includes(quirky.clientSecret), 'the client secret is in the logs');
    });
  });

  describe('7. configuration errors are configuration errors', () => {
    it('the registration check names both issuers, with a hint for a multi-tenant template', async () => {
      const entra = await startHostileIdp({ domain: 'entra.example', quirks: { issuerTemplate: true } });
      try {
        const res = await admin(fed, 'POST', '/participants', { ...quirkyParticipant('entra', entra, 'entra.example'), upstream: { ...quirkyParticipant('entra', entra, 'entra.example').upstream, issuer: `${entra.issuer}/common/v2.0` } });
        assert.equal(res.status, 422);
        const body = (await res.json()) as { field: string; message: string; reason: string };
        assert.equal(body.field, 'upstream.issuer');
        assert.ok(body.message.includes(`${entra.issuer}/common/v2.0`) && body.message.includes(`${entra.issuer}/{tenantid}/v2.0`), body.message);
        assert.match(body.message, /multi-tenant/);
      } finally {
        await entra.close();
      }
    });
  });

  describe('8. errors go back to the service', () => {
    for (const error of ['access_denied', 'login_required', 'consent_required', 'interaction_required', 'temporarily_unavailable']) {
      it(`${error} from the upstream ends the sign-in at the service with ${error}, state and iss`, async () => {
        withQuirks({ authorizationError: error });
        const { browser, auth, res } = await login('user-1@quirky.example');
        assert.ok(res.stoppedAt, `not back at the RP: ${res.status} ${res.url.href}`);
        assert.equal(res.stoppedAt.searchParams.get('error'), error);
        assert.equal(res.stoppedAt.searchParams.get('state'), auth.state);
        assert.equal(res.stoppedAt.searchParams.get('iss'), fed.concord.issuer);
        assertNoCodeAtRp(browser);
      });
    }

    it('an error page of a live sign-in leads back to the service, which hears access_denied', async () => {
      withQuirks({ tokenError: 'unauthorized_client' });
      const { browser, auth, res } = await login('user-1@quirky.example');
      assertErrorPage(fed, res, 'upstream_misconfigured');
      const back = parseForm(res.body, '/abort');
      assert.match(res.body, new RegExp(`Back to ${RP.client_name}`));
      const done = await browser.post(new URL(back.action, res.url), back.fields, { stopAt: atRp });
      assert.equal(done.stoppedAt?.searchParams.get('error'), 'access_denied');
      assert.equal(done.stoppedAt?.searchParams.get('state'), auth.state);
      assert.equal(done.stoppedAt?.searchParams.get('iss'), fed.concord.issuer);
    });
  });

  describe('9. authorization parameters reach the upstream', () => {
    it('prompt, max_age, acr_values, ui_locales and login_hint pass through; auth_time, acr and amr are the upstream’s', async () => {
      withQuirks({ sessionAgeSeconds: 120 });
      const { claims, tokens } = await signedIn('user-1@quirky.example', { prompt: 'login', max_age: '600', acr_values: 'urn:quirky:mfa urn:quirky:pwd', ui_locales: 'de fr' });
      const asked = quirky.lastAuthorization!;
      assert.equal(asked.get('prompt'), 'login');
      assert.equal(asked.get('max_age'), '600');
      assert.equal(asked.get('acr_values'), 'urn:quirky:mfa urn:quirky:pwd');
      assert.equal(asked.get('ui_locales'), 'de fr');
      assert.equal(asked.get('login_hint'), 'user-1@quirky.example');
      assert.equal(claims.acr, 'urn:quirky:mfa');
      assert.deepEqual(claims.amr, ['pwd', 'otp']);
      const { sessions } = fed.concord.concord;
      // This login's own session: the one whose part for the RP has the access token's sid.
      const sid = decodeJwt(tokens.access_token).sid;
      const session = (await sessions.ofAccount(String(claims.sub))).find((s) => s.clients.some((c) => c.sid === sid));
      const upstream = decodeJwt(((await sessions.upstream(session!.id)).logout as OidcLogout).idTokenHint);
      assert.equal(claims.auth_time, upstream.auth_time);
      assert.equal(decodeJwt(tokens.id_token!).auth_time, upstream.auth_time);
    });

    it('a participant passes on only what it forwards', async () => {
      await signedIn('user-1@narrow.example', { prompt: 'login', max_age: '600', acr_values: 'urn:x', ui_locales: 'de' });
      assert.deepEqual([...narrow.lastAuthorization!.keys()].filter((k) => ['prompt', 'max_age', 'acr_values', 'ui_locales', 'login_hint'].includes(k)), ['login_hint']);
    });

    it('max_age the upstream does not honour ends with login_required; one it honours signs in with its fresh auth_time', async () => {
      withQuirks({ sessionAgeSeconds: 3600, ignoreMaxAge: true });
      const stale = await login('user-1@quirky.example', { max_age: '60' });
      assert.equal(stale.res.stoppedAt?.searchParams.get('error'), 'login_required');
      assert.equal(stale.res.stoppedAt?.searchParams.get('state'), stale.auth.state);
      withQuirks({ sessionAgeSeconds: 3600 });
      const { claims } = await signedIn('user-1@quirky.example', { max_age: '60' });
      assert.ok(Math.floor(Date.now() / 1000) - claims.auth_time! <= 60, `auth_time ${claims.auth_time} is older than max_age`);
    });

    it('acr_values the Concord session lacks get a fresh upstream login; ones it has do not', async () => {
      withQuirks({});
      const browser = new Browser();
      const first = await signedIn('user-1@quirky.example', {}, browser);
      assert.equal(first.claims.acr, 'urn:hostile:pwd');
      const before = count(quirky, 'GET /authorize');
      const stepUp = await signedIn('user-1@quirky.example', { acr_values: 'urn:quirky:mfa' }, browser);
      assert.equal(count(quirky, 'GET /authorize'), before + 1, 'the step-up went upstream');
      assert.equal(quirky.lastAuthorization?.get('acr_values'), 'urn:quirky:mfa');
      assert.equal(stepUp.claims.acr, 'urn:quirky:mfa');
      const again = await signedIn('user-1@quirky.example', { acr_values: 'urn:quirky:mfa' }, browser);
      assert.equal(count(quirky, 'GET /authorize'), before + 1, 'the session already satisfies it');
      assert.equal(again.claims.acr, 'urn:quirky:mfa');
    });

    it('prompt=select_account is accepted and passed on', async () => {
      withQuirks({});
      const { claims } = await signedIn('user-1@quirky.example', { prompt: 'select_account' });
      assert.equal(claims.idp, 'quirky');
      assert.equal(quirky.lastAuthorization?.get('prompt'), 'select_account');
    });
  });
});

describe('interop: participants from the configuration files are checked at start-up', () => {
  let fed: Federation;
  let entra: HostileIdp;

  before(async () => {
    entra = await startHostileIdp({ domain: 'entra.example', quirks: { issuerTemplate: true } });
    // A participant from the files that can never work (Entra's /common issuer), beside two that can.
    fed = await startFederation({
      settings: { upstream: { healthInterval: 30, breakerThreshold: 1 } },
      participants: [{ ...quirkyParticipant('entra', entra, 'entra.example'), upstream: { ...quirkyParticipant('entra', entra, 'entra.example').upstream, issuer: `${entra.issuer}/common/v2.0` } }],
    });
    await fed.concord.concord.upstreamWatch.settled();
  });
  after(async () => {
    await fed.close();
    await entra.close();
  });

  it('logs, counts and shows a misconfiguration without blocking the other participants', async () => {
    const line = fed.concord.logs.find((l) => l.participant === 'entra' && l.upstreamState === 'misconfigured');
    assert.equal(line?.level, 'error');
    assert.equal(line?.code, 'discovery_invalid');
    assert.match(String(line?.reason), /multi-tenant/);
    const m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_misconfigured', { participant: 'entra' }), 1);
    assert.equal(m.value('concord_upstream_misconfigured', { participant: 'acme' }), 0);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'entra', state: 'closed' }), 1, 'a misconfiguration does not open the circuit');

    const ready = await fetch(`${fed.concord.issuer}/readyz`);
    assert.equal(ready.status, 200, 'one partner’s IdP never takes the instance out of service');
    assert.deepEqual(((await ready.json()) as { upstreams: Record<string, string> }).upstreams, { acme: 'ok', globex: 'ok', entra: 'misconfigured' });

    const listed = await admin(fed, 'GET', '/participants/entra');
    const status = ((await listed.json()) as { status: { state: string; code: string; reason: string } }).status;
    assert.equal(status.state, 'misconfigured');
    assert.match(status.reason, /\{tenantid\}/);
  });

  it('its users are told it is not set up correctly, not to try again later, and the circuit stays closed', async () => {
    for (let i = 0; i < 2; i++) {
      const browser = new Browser();
      const res = await browser.get((await authorizationRequest(fed.rp, { login_hint: 'user-1@entra.example' })).url, { stopAt: atRp });
      assertErrorPage(fed, res, 'upstream_misconfigured');
      assert.doesNotMatch(res.body, /try again in a few minutes/);
    }
    const m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'entra', state: 'closed' }), 1);
    assert.equal(m.value('concord_login_total', { participant: 'entra', outcome: 'discovery_invalid' }), 2);
    // The others sign in meanwhile.
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'bob@globex.example' });
    const page = await browser.get(auth.url, { stopAt: atRp });
    assert.equal(page.url.origin, new URL(fed.globex.issuer).origin);
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'timed out waiting for the change to apply');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
