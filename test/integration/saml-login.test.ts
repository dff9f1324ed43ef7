/**
 * SAML 2.0 partners, end to end (issue 14): a real SimpleSAMLphp IdP, Concord's SAML connector and
 * an OIDC RP. Logins with signed and encrypted assertions, multi-valued attributes, the persistent
 * NameID as sub, the email policy; the whole saml-forge corpus refused, each with its own outcome
 * and no code at the RP; replays; the SP metadata as SimpleSAMLphp reads it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestCertificate, type TestKeyPair } from '../support/x509.ts';
import { FORGERIES, forgeResponse, forgeResponses, type ForgeryName } from '../support/saml-forge.ts';
import { startSimpleSamlPhp, type SimpleSamlPhpIdp } from '../support/simplesamlphp.ts';
import { postToAcs, REFUSAL_OUTCOMES, samlLoginUntilAcs, samlParticipant, samlSignedIn, startSamlFederation, type SamlFederation } from '../support/saml-federation.ts';
import { assertNoCodeAtRp } from './broker-helpers.ts';
import { Browser, type BrowserResponse } from '../support/http-client.ts';

describe('SAML login through SimpleSAMLphp', () => {
  let idp: SimpleSamlPhpIdp;
  let fed: SamlFederation;
  let attacker: TestKeyPair;

  before(async () => {
    attacker = await createTestCertificate({ commonName: 'attacker' });
    idp = await startSimpleSamlPhp({ domain: 'partner.example' });
    fed = await startSamlFederation(idp, [
      samlParticipant('uni', idp, 'partner.example'),
      samlParticipant('sealed', idp, 'sealed.example', { wantAssertionsEncrypted: true }),
      samlParticipant('assertiononly', idp, 'assertiononly.example'),
      samlParticipant('open', idp, 'open.example', { allowIdpInitiated: true }),
      samlParticipant('legacy', idp, 'legacy.example', { allowSha1: true }),
    ]);
    await fed.register('uni');
    await fed.register('sealed', { encryptAssertion: true });
    await fed.register('assertiononly', { signResponse: false });
    await fed.register('open');
    await fed.register('legacy', { signatureAlgorithm: 'sha1' });
  });
  after(async () => {
    await fed?.close();
    await idp?.close();
  });

  /** The outcome logged with the error page this browser was shown. */
  function outcomeOf(res: BrowserResponse): unknown {
    const reference = /Reference: <code>([^<]+)<\/code>/.exec(res.body)?.[1];
    assert.ok(reference, `no error page: ${res.status} ${res.url.href} ${res.body.slice(0, 300)}`);
    return fed.concord.logs.find((l) => l.reference === reference && l.outcome !== undefined)?.outcome;
  }

  it('serves SP metadata SimpleSAMLphp registers: entity ID, ACS, SLO, the signing and encryption certificate', async () => {
    const xml = await fed.spMetadata('uni');
    const base = `${fed.concord.issuer}/saml/uni`;
    assert.match(xml, new RegExp(`entityID="${base}"`));
    assert.match(xml, new RegExp(`<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${base}/acs"`));
    assert.match(xml, new RegExp(`<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${base}/slo"`));
    assert.match(xml, /AuthnRequestsSigned="true" WantAssertionsSigned="true"/);
    const signing = /<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</.exec(xml)?.[1];
    const encryption = /<md:KeyDescriptor use="encryption">[\s\S]*?<ds:X509Certificate>([^<]+)</.exec(xml)?.[1];
    assert.equal(signing, fed.concord.concord.samlKeys.current().certificateBase64);
    assert.equal(encryption, signing);
    // Registered from this metadata with requireSignedAuthnRequest: every login below proves the
    // AuthnRequest signature verifies with the published certificate.
    const other = await fetch(`${fed.concord.issuer}/saml/nobody/metadata`);
    assert.equal(other.status, 404);
  });

  it('signs alice in: sub from the persistent NameID, multi-valued attributes as arrays, acr/amr from the AuthnContext', async () => {
    const { claims } = await samlSignedIn(fed, 'uni', 'alice');
    assert.equal(claims.sub, `uni:${idp.persistentNameId('alice', `${fed.concord.issuer}/saml/uni`)}`);
    assert.equal(claims.email, 'alice@partner.example');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.name, 'Alice Example');
    assert.equal(claims.acr, 'urn:oasis:names:tc:SAML:2.0:ac:classes:Password');
    assert.deepEqual(claims.amr, ['pwd']);
    const account = await fed.concord.concord.accounts.find(String(claims.sub));
    assert.equal(account?.upstreamIssuer, idp.entityId);
    // The login's session keeps its mapped claims and what its SAML logout needs, and is named by its SessionIndex (the IdP's LogoutRequests end it by that).
    const { sessions } = fed.concord.concord;
    const [session] = await sessions.ofAccount(String(claims.sub));
    assert.deepEqual(session?.claims.groups, ['staff', 'project-x']);
    assert.deepEqual(session?.claims.affiliation, ['member', 'staff']);
    assert.equal((await sessions.upstream(session!.id)).logout?.protocol, 'saml');
    assert.equal(session!.upstreamSession, true);
  });

  it('bob: one group is a string, his non-ASCII name intact, his own sub', async () => {
    const { claims } = await samlSignedIn(fed, 'uni', 'bob');
    assert.equal(claims.sub, `uni:${idp.persistentNameId('bob', `${fed.concord.issuer}/saml/uni`)}`);
    assert.equal(claims.name, 'Bøb Ünïcode');
    const [session] = await fed.concord.concord.sessions.ofAccount(String(claims.sub));
    assert.equal(session?.claims.groups, 'students');
  });

  it('the email policy applies unchanged: carol’s address at another domain is not released', async () => {
    const { claims } = await samlSignedIn(fed, 'uni', 'carol');
    assert.equal(claims.email, undefined);
    assert.equal(claims.email_verified, undefined);
    assert.equal(claims.name, 'Carol Elsewhere');
  });

  it('an encrypted assertion is decrypted with Concord’s SP key and checked like a plain one', async () => {
    const start = await samlLoginUntilAcs(fed, 'sealed', 'alice');
    assert.match(start.xml, /<saml:EncryptedAssertion>/);
    assert.doesNotMatch(start.xml, /alice@partner\.example/, 'nothing in the clear');
    const done = await postToAcs(start);
    assert.ok(done.stoppedAt, done.body.slice(0, 400));
    const [account] = await fed.concord.concord.sessions.ofAccount(`sealed:${idp.persistentNameId('alice', `${fed.concord.issuer}/saml/sealed`)}`);
    assert.equal(account?.claims.email, undefined, 'partner.example is not a domain of this participant (sealed.example)');
    assert.deepEqual(account?.claims.groups, ['staff', 'project-x']);
  });

  it('an IdP that signs only the Assertion is accepted; SHA-1 only where allowSha1 is set', async () => {
    const signedAssertion = await samlSignedIn(fed, 'assertiononly', 'alice');
    assert.ok(signedAssertion.claims.sub);
    const legacy = await samlSignedIn(fed, 'legacy', 'alice');
    assert.match(legacy.xml, /xmldsig#rsa-sha1/);
    assert.ok(legacy.claims.sub);
  });

  it("refuses every variant of the attack corpus on SimpleSAMLphp's own Response, each with its own outcome, none with a code at the RP", async () => {
    const browser = new Browser();
    const original = await samlLoginUntilAcs(fed, 'uni', 'alice', browser);
    const forged = forgeResponses({ response: original.xml, idp: idp.keyPair, attacker, oversizeBytes: 300_000 });
    assert.deepEqual(forged.map((f) => f.name).sort(), Object.keys(FORGERIES).sort());
    const got: Record<string, unknown> = {};
    for (const name of Object.keys(FORGERIES) as ForgeryName[]) {
      // Each variant answers a login of its own: SimpleSAMLphp's single sign-on gives a fresh, genuine
      // Response to tamper with, so exactly one check can refuse it.
      const start = await samlLoginUntilAcs(fed, 'uni', 'alice', browser);
      const variant = name === 'replay' ? { xml: original.xml } : forgeResponse(name, { response: start.xml, idp: idp.keyPair, attacker, oversizeBytes: 300_000 });
      assert.ok(variant, name);
      const res = await postToAcs(start, variant.xml);
      assert.equal(res.stoppedAt, undefined, `${name}: reached the RP`);
      assert.equal(res.url.origin, fed.concord.issuer, `${name}: ended at ${res.url.href}`);
      got[name] = outcomeOf(res);
    }
    assertNoCodeAtRp(browser);
    assert.deepEqual(got, REFUSAL_OUTCOMES);
    // The genuine Response, kept back, still signs alice in: no variant used up anything but its own login.
    const done = await postToAcs(original);
    assert.ok(done.stoppedAt, `the original is accepted: ${done.status} ${done.body.slice(0, 300)}`);
  });

  it('replay: an Assertion is used once, even where unsolicited Responses are allowed', async () => {
    const start = await samlLoginUntilAcs(fed, 'open', 'alice');
    const unsolicited = forgeResponse('unsolicited', { response: start.xml, idp: idp.keyPair, attacker })!;
    const first = await postToAcs(start, unsolicited.xml);
    assert.ok(first.stoppedAt, `accepted where allowIdpInitiated: ${first.body.slice(0, 300)}`);
    const again = await samlLoginUntilAcs(fed, 'open', 'alice');
    const second = await postToAcs(again, unsolicited.xml);
    assert.equal(second.stoppedAt, undefined);
    assert.equal(outcomeOf(second), 'saml_replay');
  });

  it('an oversized body is refused at the edge before anything reads it', async () => {
    const start = await samlLoginUntilAcs(fed, 'uni', 'alice');
    const huge = forgeResponse('oversized', { response: start.xml, idp: idp.keyPair, attacker, oversizeBytes: 1024 * 1024 })!;
    const res = await postToAcs(start, huge.xml);
    assert.equal(res.status, 413);
    assertNoCodeAtRp(start.browser);
  });
});
