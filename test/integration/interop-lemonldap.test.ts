import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { startConcord, type TestConcord } from '../support/concord.ts';
import { authorizationRequest, exchange, RP, upstreamLogoutReturn, type Authorization } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { LLNG_DEMO_DOMAIN, LLNG_DEMO_USERS, startLemonLdap, type LemonLdap } from '../support/lemonldap.ts';
import { freePort } from '../support/ports.ts';

/**
 * Interoperability with an IdP nobody here wrote: LemonLDAP::NG 2.16 from Debian, its portal run
 * privately (test/support/lemonldap.ts), as the OpenID Connect provider of participant `badwolf`.
 * A user signs in to an RP through Concord with LLNG's own login form, and signs out again
 * through LLNG's end_session endpoint.
 *
 * What LLNG does that an oidc-provider partner does not: the email and profile claims come only
 * from its userinfo endpoint (OIDC Core 5.4), there is no RFC 9207 `iss` on its redirects, its
 * issuer ends with a slash, its login form carries a CSRF token, and its logout asks for
 * confirmation.
 */

const PARTICIPANT = 'badwolf';
/** A second LLNG whose RP keeps the Manager's default ID token algorithm, HS512. */
const HS512_PARTICIPANT = 'badwolf-hs512';
// A `-` in both: LLNG 2.16 reads form-encoded Basic credentials wrong (`%2D`), which client_secret_post avoids.
const UPSTREAM_CLIENT_ID = 'concord-rp';
const UPSTREAM_CLIENT_SECRET = 'llng-upstream-secret-0123456789';
const BYE = RP.post_logout_redirect_uris[0]!;
const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
const atBye = (u: URL) => u.href.startsWith(BYE);
/**
 * What a browser sends when it navigates. The test Browser's default also names application/json,
 * which LLNG takes for an API client (Lemonldap::NG::Common::PSGI::Request::wantJSON): a JSON 401
 * instead of its login page.
 */
const NAVIGATION = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
const stopAtRp = { stopAt: atRp, headers: NAVIGATION };
const stopAtBye = { stopAt: atBye, headers: NAVIGATION };

describe('LemonLDAP::NG 2.16 as a participant IdP', () => {
  let llng: LemonLdap;
  let llngHs512: LemonLdap;
  let concord: TestConcord;
  let rp: oidc.Configuration;

  before(async () => {
    const port = await freePort();
    const concordIssuer = `http://127.0.0.1:${port}`;
    [llng, llngHs512] = await Promise.all([
      startLemonLdap({ concordIssuer, participantId: PARTICIPANT, clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET }),
      startLemonLdap({ concordIssuer, participantId: HS512_PARTICIPANT, clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET, idTokenSignAlg: 'HS512' }),
    ]);
    try {
      concord = await startConcord({
        port,
        participants: [
          {
            id: PARTICIPANT,
            displayName: 'Bad Wolf',
            domains: [LLNG_DEMO_DOMAIN],
            upstream: {
              type: 'oidc',
              issuer: llng.issuer,
              clientId: UPSTREAM_CLIENT_ID,
              clientSecret: UPSTREAM_CLIENT_SECRET,
              // `groups` is a scope of this LLNG's own (oidcRPMetaDataOptionsExtraClaims).
              scopes: ['openid', 'email', 'profile', 'groups'],
              // What docs/participants/lemonldap-ng.md says works with LLNG 2.16 (its Basic parsing is off).
              tokenEndpointAuthMethod: 'client_secret_post',
              // No fetchUserinfo: LLNG publishes a userinfo endpoint, so Concord fetches it by default (issue 18 item 1).
              allowInsecureHttp: true,
            },
            // LLNG sends no email_verified: the directory's addresses are the partner's own, so Concord
            // says so (only for addresses at the participant's domains). Its groups as they are, and a
            // role derived from one of them.
            mapping: {
              rules: [
                { claim: 'email_verified', value: true },
                { claim: 'roles', from: 'groups', lookup: { timelords: 'admin' } },
              ],
            },
          },
          {
            id: HS512_PARTICIPANT,
            displayName: 'Bad Wolf (HS512)',
            domains: ['hs512.badwolf.example'],
            upstream: { type: 'oidc', issuer: llngHs512.issuer, clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET, tokenEndpointAuthMethod: 'client_secret_post', allowInsecureHttp: true },
          },
        ],
        clients: [RP],
      });
    } catch (err) {
      await Promise.all([llng.close(), llngHs512.close()]);
      throw err;
    }
    rp = await oidc.discovery(new URL(concord.issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await concord?.close();
    await Promise.all([llng?.close(), llngHs512?.close()]);
  });

  /** Failure messages carry where the browser went, what Concord warned about and what LLNG logged. */
  const trail = (res: BrowserResponse) =>
    `${res.status} at ${res.url.href}\nchain: ${res.chain.map((h) => `${h.status} ${h.url.href}`).join(' > ')}\n` +
    `Concord warnings:\n${concord.logs.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => JSON.stringify(l)).slice(-5).join('\n')}\nLLNG log:\n${llng.log(30)}`;

  /** Concord's login page: the user types an email address; home-realm discovery sends the browser on. */
  async function startLogin(browser: Browser, auth: Authorization, email: string): Promise<BrowserResponse> {
    const page = await browser.get(auth.url, stopAtRp);
    assert.equal(page.url.origin, concord.issuer, trail(page));
    assert.equal(page.status, 200, trail(page));
    const form = parseForm(page.body, '/login');
    return browser.post(new URL(form.action, page.url), { ...form.fields, email }, stopAtRp);
  }

  /** LLNG's login form, filled in as a browser would: its hidden fields (CSRF token, url, skin) and the user's credentials. */
  async function loginAtLlng(browser: Browser, page: BrowserResponse, user: string, password: string, portal = llng): Promise<BrowserResponse> {
    assert.equal(page.url.origin, portal.origin, `expected LLNG's login page: ${trail(page)}`);
    assert.equal(page.status, 200, trail(page));
    const form = parseForm(page.body);
    assert.ok(form.fields.token, 'LLNG’s login form carries a CSRF token');
    assert.ok('password' in form.fields && 'user' in form.fields, `not LLNG's login form: ${JSON.stringify(form.fields)}`);
    return browser.post(new URL(form.action, page.url), { ...form.fields, user, password }, stopAtRp);
  }

  async function signIn(browser: Browser, login: keyof typeof LLNG_DEMO_USERS) {
    const user = LLNG_DEMO_USERS[login];
    const auth = await authorizationRequest(rp, { scope: 'openid email profile groups roles' });
    const atLlng = await startLogin(browser, auth, user.mail);
    const done = await loginAtLlng(browser, atLlng, login, user.password);
    assert.ok(done.stoppedAt, `the login did not come back to the RP: ${trail(done)}`);
    return { auth, tokens: await exchange(rp, done.stoppedAt, auth) };
  }

  /** A login forced through LLNG (prompt=login at Concord, idp_hint): where it stops says whether LLNG still has a session. */
  async function throughLlng(browser: Browser) {
    const auth = await authorizationRequest(rp, { prompt: 'login', idp_hint: PARTICIPANT });
    return browser.get(auth.url, stopAtRp);
  }

  it('signs dwho in: sub and idp of badwolf, email, name and groups from LLNG’s userinfo, mapped', async () => {
    const browser = new Browser();
    const { tokens } = await signIn(browser, 'dwho');
    const claims = tokens.claims()!;
    assert.equal(claims.sub, `${PARTICIPANT}:dwho`);
    assert.equal(claims.idp, PARTICIPANT);
    assert.equal(claims.email, LLNG_DEMO_USERS.dwho.mail);
    assert.equal(claims.email_verified, true);
    assert.equal(claims.name, LLNG_DEMO_USERS.dwho.cn);
    assert.deepEqual([...(claims.groups as string[])].sort(), LLNG_DEMO_USERS.dwho.groups);
    assert.deepEqual(claims.roles, ['admin']);
    const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, `${PARTICIPANT}:dwho`);
    assert.equal(userinfo.email, LLNG_DEMO_USERS.dwho.mail);
    assert.equal(userinfo.name, LLNG_DEMO_USERS.dwho.cn);
    assert.equal(userinfo.preferred_username, 'dwho');
    assert.deepEqual([...(userinfo.groups as string[])].sort(), LLNG_DEMO_USERS.dwho.groups);
    // Concord authenticated at LLNG's token endpoint and read its userinfo endpoint.
    const log = llng.log(400);
    assert.match(log, /"POST \/oauth2\/token HTTP\/1\.1" 200/);
    assert.match(log, /"GET \/oauth2\/userinfo HTTP\/1\.1" 200/);
  });

  it('signs a second user in with LLNG’s form, and each gets their own claims', async () => {
    const { tokens } = await signIn(new Browser(), 'rtyler');
    const claims = tokens.claims()!;
    assert.equal(claims.sub, `${PARTICIPANT}:rtyler`);
    assert.equal(claims.email, LLNG_DEMO_USERS.rtyler.mail);
    assert.equal(claims.name, LLNG_DEMO_USERS.rtyler.cn);
    assert.deepEqual([...(claims.groups as string[])].sort(), LLNG_DEMO_USERS.rtyler.groups);
    assert.deepEqual(claims.roles ?? [], [], 'no group of rtyler maps to a role');
  });

  it('a wrong password stays on LLNG’s form: no code reaches the RP', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(rp);
    const atLlng = await startLogin(browser, auth, LLNG_DEMO_USERS.msmith.mail);
    const res = await loginAtLlng(browser, atLlng, 'msmith', 'not-the-password');
    assert.equal(res.stoppedAt, undefined, trail(res));
    assert.equal(res.url.origin, llng.origin);
    assert.match(res.body, /name="password"/);
    assert.ok(!browser.history.some((hop) => hop.location && atRp(hop.location)), 'the RP was reached');
  });

  it('an ID token signed HS512 (the Manager’s default for a new RP) is refused: Concord’s error page, and a log line about the ID token’s alg', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(rp, { idp_hint: HS512_PARTICIPANT });
    const atLlng = await browser.get(auth.url, stopAtRp);
    assert.equal(atLlng.url.origin, llngHs512.origin, trail(atLlng));
    const res = await loginAtLlng(browser, atLlng, 'dwho', LLNG_DEMO_USERS.dwho.password, llngHs512);
    assert.equal(res.stoppedAt, undefined, trail(res));
    assert.ok(!browser.history.some((hop) => hop.location && atRp(hop.location)), 'the RP was reached');
    assert.equal(res.url.origin, concord.issuer, trail(res));
    assert.ok(res.status >= 400, trail(res));
    const reference = /Reference: <code>([^<]+)<\/code>/.exec(res.body)?.[1];
    assert.ok(reference, 'the error page shows a reference');
    // The log line names the participant and says the ID token's alg is the problem.
    const logged = concord.logs.filter((line) => line.reference === reference && line.participant === HS512_PARTICIPANT);
    assert.ok(logged.some((line) => /\balg\b/.test(String((line.err as { message?: unknown } | undefined)?.message))), `the log line of ${reference} does not name the algorithm: ${JSON.stringify(logged)}`);
  });

  it('signs out through LLNG’s end_session endpoint and lands on the RP with its state', async () => {
    const browser = new Browser();
    const { tokens } = await signIn(browser, 'dwho');
    const sso = await throughLlng(browser);
    assert.ok(sso.stoppedAt?.searchParams.has('code'), `LLNG signs dwho in silently before logout: ${trail(sso)}`);

    // Concord's own "Sign out?" page, answered.
    const confirmAtConcord = await browser.get(oidc.buildEndSessionUrl(rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'rp-state-llng' }), stopAtBye);
    assert.equal(confirmAtConcord.url.origin, concord.issuer, trail(confirmAtConcord));
    const concordForm = parseForm(confirmAtConcord.body, '/session/end/confirm');
    const toLlng = await browser.post(new URL(concordForm.action, confirmAtConcord.url), { ...concordForm.fields, logout: 'yes' }, stopAtBye);

    // Concord sent the browser to LLNG's end_session_endpoint with LLNG's own ID token as the hint.
    const endSession = toLlng.chain.find((hop) => hop.url.origin === llng.origin)?.url;
    assert.ok(endSession, `LLNG's end_session_endpoint was not visited: ${trail(toLlng)}`);
    assert.equal(endSession.pathname, '/oauth2/logout');
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), upstreamLogoutReturn(concord.issuer, PARTICIPANT));
    const hint = decodeJwt(endSession.searchParams.get('id_token_hint')!);
    assert.equal(hint.iss, llng.issuer);
    assert.equal(hint.sub, 'dwho');
    // LLNG's ID token carries no email: the email Concord released came from userinfo.
    assert.equal(hint.email, undefined);

    // LLNG's "Do you want to logout?" page, accepted.
    assert.equal(toLlng.url.origin, llng.origin, trail(toLlng));
    assert.equal(toLlng.status, 200, trail(toLlng));
    assert.match(toLlng.body, /logout/i);
    const llngForm = parseForm(toLlng.body);
    const back = await browser.post(new URL(llngForm.action, toLlng.url), llngForm.fields, stopAtBye);
    assert.equal(back.stoppedAt?.href, `${BYE}?state=rp-state-llng`, trail(back));
    assert.ok(back.chain.some((hop) => hop.url.pathname === `/broker/${PARTICIPANT}/logged-out`));

    // Both sessions are over: Concord's (no silent login) and LLNG's (its login form again).
    const silent = await authorizationRequest(rp, { prompt: 'none' });
    const none = await browser.get(silent.url, stopAtRp);
    assert.equal(none.stoppedAt?.searchParams.get('error'), 'login_required', trail(none));
    const again = await throughLlng(browser);
    assert.equal(again.stoppedAt, undefined, `LLNG still signed dwho in silently: ${trail(again)}`);
    assert.equal(again.url.origin, llng.origin);
    assert.match(again.body, /name="password"/);
  });
});
