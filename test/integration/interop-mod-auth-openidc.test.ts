import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { apacheOpenidcMissing, apacheRedirectUri, startApacheRp, type ApacheRp } from '../support/apache-openidc.ts';
import { startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';

/**
 * A relying party nobody here wrote: Apache httpd with mod_auth_openidc (Debian's packages) protecting
 * a location, run privately (test/support/apache-openidc.ts). A browser asks for the protected page,
 * mod_auth_openidc sends it to Concord, the user signs in through Acme, and the page answers with the
 * claims mod_auth_openidc verified and handed the application.
 */

const CLIENT_ID = 'apache-rp';
const CLIENT_SECRET = 'apache-rp-secret-0123456789abcdef';

describe('interop: Apache mod_auth_openidc as the relying party', { skip: apacheOpenidcMissing() ?? false }, () => {
  let fed: Federation;
  let apache: ApacheRp | undefined;

  before(async () => {
    const apachePort = await freePort();
    fed = await startFederation({
      port: await freePort(),
      clients: [{ client_id: CLIENT_ID, client_name: 'Apache RP', client_secret: CLIENT_SECRET, redirect_uris: [apacheRedirectUri(apachePort)], grant_types: ['authorization_code'], skip_consent: true }],
    });
    apache = await startApacheRp({ port: apachePort, issuer: fed.concord.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, extra: ['OIDCClaimPrefix OIDC-CLAIM-'] });
  });
  after(async () => {
    await apache?.close();
    await fed?.close();
  });

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

    const emailForm = parseForm(page.body, '/login');
    page = await browser.post(new URL(emailForm.action, page.url), { ...emailForm.fields, email: 'alice@acme.example' });
    assert.equal(page.url.origin, fed.acme.issuer, 'on to Acme');
    const passwordForm = parseForm(page.body, '/login');
    page = await browser.post(new URL(passwordForm.action, page.url), { ...passwordForm.fields, username: 'alice@acme.example', password: DEMO_PASSWORD });

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
});
