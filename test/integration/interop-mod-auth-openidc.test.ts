import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { apacheOpenidcMissing, apacheRedirectUri, startApacheRp, type ApacheRp } from '../support/apache-openidc.ts';
import { startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { admin } from './broker-helpers.ts';

/**
 * A relying party nobody here wrote: Apache httpd with mod_auth_openidc (Debian's packages) protecting
 * a location, run privately (test/support/apache-openidc.ts). A browser asks for the protected page,
 * mod_auth_openidc sends it to Concord, the user signs in through Acme, and the page answers with the
 * claims mod_auth_openidc verified and handed the application. Logging out goes both ways: through
 * mod_auth_openidc to Concord's end_session_endpoint, and from Concord to mod_auth_openidc's
 * back-channel logout endpoint when the session ends at Concord.
 */

const CLIENT_ID = 'apache-rp';
const CLIENT_SECRET = 'apache-rp-secret-0123456789abcdef';

describe('interop: Apache mod_auth_openidc as the relying party', { skip: apacheOpenidcMissing() ?? false }, () => {
  let fed: Federation;
  let apache: ApacheRp | undefined;

  before(async () => {
    const apachePort = await freePort();
    const redirectUri = apacheRedirectUri(apachePort);
    fed = await startFederation({
      port: await freePort(),
      clients: [
        {
          client_id: CLIENT_ID,
          client_name: 'Apache RP',
          client_secret: CLIENT_SECRET,
          redirect_uris: [redirectUri],
          post_logout_redirect_uris: [`http://127.0.0.1:${apachePort}/bye`],
          // mod_auth_openidc's back-channel logout endpoint is its redirect URI with logout=backchannel.
          backchannel_logout_uri: `${redirectUri}?logout=backchannel`,
          backchannel_logout_session_required: true,
          grant_types: ['authorization_code'],
          skip_consent: true,
        },
      ],
    });
    apache = await startApacheRp({ port: apachePort, issuer: fed.concord.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, extra: ['OIDCClaimPrefix OIDC-CLAIM-'] });
  });
  after(async () => {
    await apache?.close();
    await fed?.close();
  });

  /** The brokered login a browser goes through for the protected page (Concord's page, Acme's password page). */
  async function signIn(browser: Browser, first: BrowserResponse): Promise<BrowserResponse> {
    const emailForm = parseForm(first.body, '/login');
    const page = await browser.post(new URL(emailForm.action, first.url), { ...emailForm.fields, email: 'alice@acme.example' });
    assert.equal(page.url.origin, fed.acme.issuer, 'on to Acme');
    const passwordForm = parseForm(page.body, '/login');
    return browser.post(new URL(passwordForm.action, page.url), { ...passwordForm.fields, username: 'alice@acme.example', password: DEMO_PASSWORD });
  }

  /** Whether the protected page answers in this browser without a new login (mod_auth_openidc's session lives). */
  async function servedWithoutLogin(browser: Browser): Promise<boolean> {
    const page = await browser.get(apache!.protectedUrl, { noFollow: true });
    if (page.status === 200) return true;
    assert.equal(page.location?.origin, fed.concord.issuer, `neither the page nor a login: ${page.status}`);
    return false;
  }

  it('lets alice reach the protected page after a brokered login, with her claims in the environment and headers', async () => {
    const rp = apache!;
    const browser = new Browser();
    let page = await browser.get(rp.protectedUrl);
    // mod_auth_openidc sent the browser to Concord with PKCE S256.
    const auth = page.chain.find((hop) => hop.url.origin === fed.concord.issuer && hop.url.pathname === '/auth')?.url;
    assert.ok(auth, `mod_auth_openidc did not send the browser to Concord: ${page.chain.map((h) => `${h.status} ${h.url.href}`).join(' > ')}\n${rp.errorLog()}`);
    assert.equal(auth.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(auth.searchParams.get('nonce'));

    page = await signIn(browser, page);

    // Back through mod_auth_openidc's redirect URI (it exchanged the code and checked the ID token) to the page.
    assert.ok(page.chain.some((hop) => hop.url.href.startsWith(rp.redirectUri) && hop.url.searchParams.has('code')), 'the code went to mod_auth_openidc');
    assert.equal(page.url.href, rp.protectedUrl, `ended at ${page.url.href} (${page.status}): ${page.body.slice(0, 300)}\n${rp.errorLog()}`);
    assert.equal(page.status, 200, `${page.body.slice(0, 300)}\n${rp.errorLog()}`);
    const env = Object.fromEntries(
      page.body
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const alice = fed.acme.users.find((u) => u.email === 'alice@acme.example')!;
    const sub = `acme:${alice.sub}`;
    assert.equal(env.OIDC_CLAIM_sub, sub, page.body);
    assert.equal(env.OIDC_CLAIM_email, 'alice@acme.example');
    assert.equal(env.OIDC_CLAIM_name, alice.name);
    assert.equal(env.OIDC_CLAIM_idp, 'acme');
    // As request headers too (OIDCPassClaimsAs both). Apache hands a CGI no header with '_' in its
    // name, so the prefix here is OIDC-CLAIM- (the environment gets it as OIDC_CLAIM_).
    assert.equal(env.HTTP_OIDC_CLAIM_EMAIL, 'alice@acme.example', 'the claims as headers too');
    assert.equal(env.REMOTE_USER, `${sub}@${fed.concord.issuer}`, 'REMOTE_USER is sub@issuer (mod_auth_openidc’s default)');

    // The session is mod_auth_openidc's now: the page answers again without Concord.
    const again = await browser.get(rp.protectedUrl);
    assert.equal(again.status, 200);
    assert.deepEqual(again.chain.map((hop) => hop.url.origin), [rp.origin]);
  });

  it('signs out through mod_auth_openidc: Concord ends its session (and Acme\'s), back to the RP', async () => {
    const rp = apache!;
    const browser = new Browser();
    const done = await signIn(browser, await browser.get(rp.protectedUrl));
    assert.equal(done.status, 200);
    // mod_auth_openidc's logout: to Concord's end_session_endpoint with its id_token_hint.
    const bye = `${rp.origin}/bye`;
    const atBye = (u: URL) => u.href.startsWith(bye);
    let page = await browser.get(`${rp.redirectUri}?logout=${encodeURIComponent(bye)}`, { stopAt: atBye });
    const endSession = page.chain.find((hop) => hop.url.origin === fed.concord.issuer && hop.url.pathname === '/session/end')?.url;
    assert.ok(endSession?.searchParams.get('id_token_hint'), `mod_auth_openidc did not go to Concord's end_session_endpoint: ${page.chain.map((h) => h.url.href).join(' > ')}`);
    // The hint is this session's: Concord's page submits itself; Acme asks; yes.
    for (let i = 0; i < 3 && !page.stoppedAt; i++) {
      const form = parseForm(page.body, '/session/end/confirm');
      page = await browser.post(new URL(form.action, page.url), { ...form.fields, logout: 'yes' }, { stopAt: atBye });
    }
    assert.ok(page.stoppedAt, `not back at the RP: ${page.status} ${page.url.href}`);
    assert.equal(await servedWithoutLogin(browser), false, 'the protected page asks for a login again');
  });

  it('ends mod_auth_openidc\'s session when Concord\'s ends: the logout token is accepted at its back-channel endpoint', async () => {
    const rp = apache!;
    const browser = new Browser();
    const done = await signIn(browser, await browser.get(rp.protectedUrl));
    assert.equal(done.status, 200);
    assert.equal(await servedWithoutLogin(browser), true);
    const sub = /^OIDC_CLAIM_sub=(.+)$/m.exec(done.body)?.[1];
    assert.ok(sub, done.body);
    // The operator ends alice's sessions at Concord (offboarding): Concord sends mod_auth_openidc a logout token.
    const revoked = await admin(fed, 'POST', `/users/${encodeURIComponent(sub)}/revoke-sessions`);
    assert.equal(revoked.status, 200, await revoked.text());
    const deadline = Date.now() + 10_000;
    while (await servedWithoutLogin(browser)) {
      assert.ok(Date.now() < deadline, `mod_auth_openidc still serves the page: ${rp.errorLog().split('\n').filter((l) => /logout/i.test(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
