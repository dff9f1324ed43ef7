/**
 * SAML single logout (issue 14 item 6) with SimpleSAMLphp: RP-initiated logout at Concord sends a
 * signed LogoutRequest to the IdP and, its signed LogoutResponse validated, returns to the service;
 * an IdP-initiated, signed LogoutRequest ends the user's Concord sessions; unsigned or foreign logout
 * messages are refused.
 */
import assert from 'node:assert/strict';
import { createSign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { RP } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { samlParticipant, samlSignedIn, startSamlFederation, type SamlFederation } from '../support/saml-federation.ts';
import { startSimpleSamlPhp, type SimpleSamlPhpIdp } from '../support/simplesamlphp.ts';
import { createTestCertificate } from '../support/x509.ts';

const BYE = RP.post_logout_redirect_uris[0]!;

describe('SAML single logout through SimpleSAMLphp', () => {
  let idp: SimpleSamlPhpIdp;
  let fed: SamlFederation;

  before(async () => {
    idp = await startSimpleSamlPhp({ domain: 'partner.example' });
    fed = await startSamlFederation(idp, [samlParticipant('uni', idp, 'partner.example')]);
    await fed.register('uni');
  });
  after(async () => {
    await fed?.close();
    await idp?.close();
  });

  /** Whether this browser still has a session at the IdP: a new AuthnRequest shows its login form or not. */
  async function idpSessionAlive(browser: Browser): Promise<boolean> {
    // An unsolicited SSO at the IdP (not posted on): its login form without a session, a Response form with one.
    const page = await browser.get(idp.idpInitiatedUrl(`${fed.concord.issuer}/saml/uni`));
    assert.equal(page.status, 200);
    return page.body.includes('SAMLResponse') && !page.body.includes('name="password"');
  }

  it('RP-initiated: a signed LogoutRequest ends the IdP session, its LogoutResponse brings the browser back to the service', async () => {
    const { browser, tokens } = await samlSignedIn(fed, 'uni', 'alice');
    assert.equal(await idpSessionAlive(browser), true);
    const logout = oidc.buildEndSessionUrl(fed.rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE, state: 'bye-state' });
    const confirm = await browser.get(logout, { stopAt: (u) => u.href.startsWith(BYE) });
    const form = parseForm(confirm.body, '/session/end/confirm');
    const done = await browser.post(new URL(form.action, confirm.url), { ...form.fields, logout: 'yes' }, { stopAt: (u) => u.href.startsWith(BYE) });
    assert.equal(done.stoppedAt?.searchParams.get('state'), 'bye-state', `back at the service: ${done.status} ${done.url.href} ${done.body.slice(0, 300)}`);
    const hops = browser.history.map((h) => h.url);
    const toIdp = hops.find((u) => u.href.startsWith(idp.sloUrl));
    assert.ok(toIdp?.searchParams.get('Signature'), 'the LogoutRequest was signed (Redirect binding)');
    const back = hops.find((u) => u.pathname === '/saml/uni/slo');
    assert.ok(back?.searchParams.get('SAMLResponse') && back.searchParams.get('Signature'), 'the IdP answered with a signed LogoutResponse at Concord’s SLO endpoint');
    assert.equal(await idpSessionAlive(browser), false, 'the IdP session is gone');
  });

  it('IdP-initiated: a signed LogoutRequest ends the Concord sessions of its SessionIndex and their refresh tokens, and is answered', async () => {
    const { browser, tokens, claims } = await samlSignedIn(fed, 'uni', 'bob');
    const returnTo = `${fed.concord.issuer}/healthz?after-idp-logout`;
    const done = await browser.get(idp.idpInitiatedLogoutUrl(returnTo), { stopAt: (u) => u.href === returnTo });
    assert.equal(done.stoppedAt?.href, returnTo, `the IdP finished at ReturnTo (${done.status} ${done.url.href})\n${idp.log()}`);
    const atConcord = browser.history.map((h) => h.url).find((u) => u.pathname === '/saml/uni/slo');
    assert.ok(atConcord?.searchParams.get('SAMLRequest') && atConcord.searchParams.get('Signature'));
    const line = fed.concord.logs.find((l) => l.msg === 'the IdP ended its session: the Concord sessions ended');
    assert.ok(line && Number(line.sessions) >= 1, JSON.stringify(line));
    assert.equal(line.by, 'SessionIndex', 'ended by the SessionIndex of the login');
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant');
    assert.ok(claims.sub);
  });

  it('refuses an unsigned LogoutRequest and one signed by another key: nothing ends', async () => {
    const { tokens } = await samlSignedIn(fed, 'uni', 'alice');
    const nameId = idp.persistentNameId('alice', `${fed.concord.issuer}/saml/uni`);
    const request =
      `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil1" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${fed.concord.issuer}/saml/uni/slo">` +
      `<saml:Issuer>${idp.entityId}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${nameId}</saml:NameID></samlp:LogoutRequest>`;
    const unsigned = new URLSearchParams({ SAMLRequest: deflateRawSync(Buffer.from(request)).toString('base64') });
    const res = await fetch(`${fed.concord.issuer}/saml/uni/slo?${unsigned}`, { redirect: 'manual' });
    assert.equal(res.status, 502, await res.text());
    assert.equal(fed.concord.logs.findLast((l) => l.logout === true)?.outcome, 'saml_signature');
    // Signed as the Redirect binding says (SAML bindings 3.4.4.1), by a key the IdP's metadata does not hold.
    const attacker = await createTestCertificate({ commonName: 'attacker' });
    const signedPart = new URLSearchParams({ SAMLRequest: unsigned.get('SAMLRequest')!, SigAlg: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256' }).toString();
    const signature = createSign('RSA-SHA256').update(signedPart).sign(attacker.key, 'base64');
    const foreign = await fetch(`${fed.concord.issuer}/saml/uni/slo?${signedPart}&Signature=${encodeURIComponent(signature)}`, { redirect: 'manual' });
    assert.equal(foreign.status, 502);
    assert.equal(fed.concord.logs.findLast((l) => l.logout === true)?.outcome, 'saml_signature');
    // alice's refresh token still works: nothing was ended.
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
  });
});
