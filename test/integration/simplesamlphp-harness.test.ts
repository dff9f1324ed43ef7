/**
 * The SimpleSAMLphp harness, proven with a SAML SP nobody here wrote: @node-saml/node-saml as a
 * stand-in SP (AuthnRequest out, Response in, through a real ACS listener), driven by the
 * cookie-jar Browser through SimpleSAMLphp's own login form. What Concord's SAML connector tests
 * will rely on: metadata, SP-initiated login with signed Response and Assertion, encrypted
 * assertions, SHA-1 on request, OID attribute names, persistent/transient/email NameIDs,
 * single sign-on, IdP-initiated responses, signed AuthnRequests when required, and SP-initiated
 * logout (LogoutRequest -> signed LogoutResponse).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { inflateRaw } from 'node:zlib';
import { SAML, ValidateInResponseTo, type Profile, type SamlConfig } from '@node-saml/node-saml';
import { Browser, type BrowserResponse } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { NAMEID_FORMAT, samlPostForm, startSimpleSamlPhp, submitSimpleSamlPhpLogin, type ServiceProviderRegistration, type SimpleSamlPhpIdp } from '../support/simplesamlphp.ts';
import { FORGERIES, forgeResponses, nodeSamlVerdict } from '../support/saml-forge.ts';
import { createTestCertificate, pemBody, type TestKeyPair } from '../support/x509.ts';

const inflate = promisify(inflateRaw);

/** A tiny real ACS: POSTed SAML messages are validated by node-saml; the answer is the outcome as JSON. */
interface Acs {
  base: string;
  /** Each POST's SAMLResponse (base64) in order. */
  received: string[];
  close(): Promise<void>;
}

async function startAcs(validate: (path: string, body: URLSearchParams) => Promise<unknown>): Promise<Acs> {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const samlResponse = body.get('SAMLResponse');
      if (samlResponse) received.push(samlResponse);
      validate(new URL(req.url ?? '/', 'http://x').pathname, body).then(
        (outcome) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: true, outcome }));
        },
        (error: Error) => {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: false, error: error.message }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function decodeRedirectMessage(url: URL, param: 'SAMLRequest' | 'SAMLResponse'): Promise<string> {
  const value = url.searchParams.get(param);
  assert.ok(value, `${param} in ${url.href}`);
  return (await inflate(Buffer.from(value, 'base64'))).toString('utf8');
}

const attr = (xml: string, element: string, name: string) => new RegExp(`<(?:\\w+:)?${element}\\b[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];
const text = (xml: string, element: string) => new RegExp(`<(?:\\w+:)?${element}\\b[^>]*>([^<]*)</`).exec(xml)?.[1];

describe('SimpleSAMLphp harness (node-saml as the SP)', () => {
  let idp: SimpleSamlPhpIdp;
  let spKeys: TestKeyPair;
  let acs: Acs;
  const sps = new Map<string, SAML>();
  const startedMs: number[] = [];

  /** The SP registrations, keyed by a short name; entity IDs and URLs under the ACS listener. */
  const reg = (name: string, extra: Partial<ServiceProviderRegistration> = {}): ServiceProviderRegistration => ({
    entityId: `${acs.base}/sp/${name}`,
    acsUrl: `${acs.base}/sp/${name}/acs`,
    sloUrl: `${acs.base}/sp/${name}/slo`,
    signingCertificate: spKeys.cert,
    ...extra,
  });

  /** node-saml configured as a careful SP would be: IdP certificate pinned, audience, both signatures, InResponseTo always. */
  const samlFor = (r: ServiceProviderRegistration, extra: Partial<SamlConfig> = {}) =>
    new SAML({
      entryPoint: idp.ssoUrl,
      logoutUrl: idp.sloUrl,
      issuer: r.entityId,
      callbackUrl: r.acsUrl,
      ...(r.sloUrl ? { logoutCallbackUrl: r.sloUrl } : {}),
      idpCert: pemBody(idp.certificate),
      idpIssuer: idp.entityId,
      audience: r.entityId,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: r.signResponse ?? true,
      validateInResponseTo: ValidateInResponseTo.always,
      identifierFormat: r.nameIdFormat ?? NAMEID_FORMAT.persistent,
      privateKey: spKeys.key,
      publicCert: spKeys.cert,
      signatureAlgorithm: 'sha256',
      decryptionPvk: spKeys.key,
      acceptedClockSkewMs: 5_000,
      ...extra,
    });

  before(async () => {
    spKeys = await createTestCertificate({ commonName: 'node-saml test SP' });
    acs = await startAcs(async (path, body) => {
      const name = /^\/sp\/([^/]+)\/acs$/.exec(path)?.[1];
      const saml = name ? sps.get(name) : undefined;
      if (!saml) throw new Error(`no SP at ${path}`);
      const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: body.get('SAMLResponse') ?? '' });
      return profile;
    });
    const registrations = {
      default: reg('default'),
      encrypted: reg('encrypted', { encryptAssertion: true }),
      sha1: reg('sha1', { signatureAlgorithm: 'sha1' }),
      oid: reg('oid', { attributeNames: 'oid' }),
      assertiononly: reg('assertiononly', { signResponse: false }),
      signedrequests: reg('signedrequests', { requireSignedAuthnRequest: true }),
      transient: reg('transient', { nameIdFormat: NAMEID_FORMAT.transient }),
      email: reg('email', { nameIdFormat: NAMEID_FORMAT.emailAddress }),
    };
    const t0 = Date.now();
    idp = await startSimpleSamlPhp({ sps: Object.values(registrations) });
    startedMs.push(Date.now() - t0);
    for (const [name, r] of Object.entries(registrations)) sps.set(name, samlFor(r));
  });

  after(async () => {
    if (startedMs.length) console.log(`# simplesamlphp harness start: ${startedMs.join(', ')} ms (informational)`);
    await idp?.close();
    await acs?.close();
  });

  /** SP-initiated login through the login form; returns the ACS outcome and what was POSTed. */
  async function login(name: string, username = 'alice', browser = new Browser(), options: { relayState?: string; expectForm?: boolean } = {}) {
    const saml = sps.get(name)!;
    const authUrl = new URL(await saml.getAuthorizeUrlAsync(options.relayState ?? `rs-${name}`, undefined, {}));
    const request = await decodeRedirectMessage(authUrl, 'SAMLRequest');
    const requestId = attr(request, 'AuthnRequest', 'ID');
    assert.ok(requestId, request);
    const page = await browser.get(authUrl);
    const user = idp.users.find((u) => u.username === username)!;
    const form = options.expectForm === false ? samlPostForm(page) : await submitSimpleSamlPhpLogin(browser, page, user);
    const xml = Buffer.from(form.fields.SAMLResponse ?? '', 'base64').toString('utf8');
    const answer = await browser.post(form.action, form.fields);
    const outcome = JSON.parse(answer.body) as { ok: boolean; outcome?: Profile & { attributes?: Record<string, unknown> }; error?: string };
    return { requestId, form, xml, answer, outcome, browser, page };
  }

  it('serves its metadata: entity ID, SSO and SLO endpoints, the signing certificate', async () => {
    const response = await fetch(idp.metadataUrl);
    assert.equal(response.status, 200);
    const xml = await response.text();
    assert.equal(attr(xml, 'EntityDescriptor', 'entityID'), idp.entityId);
    assert.equal(idp.entityId, idp.metadataUrl);
    assert.match(xml, new RegExp(`<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${idp.ssoUrl}"`));
    assert.match(xml, new RegExp(`<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${idp.sloUrl}"`));
    const signing = /<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</.exec(xml)?.[1];
    assert.equal(signing, pemBody(idp.certificate));
    assert.match(xml, /<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent<\/md:NameIDFormat>/);
  });

  it('SP-initiated login: a signed Response and Assertion that node-saml accepts, with the persistent NameID and the attributes', async () => {
    const { requestId, form, xml, outcome } = await login('default', 'alice');
    const r = reg('default');
    assert.equal(form.action.href, r.acsUrl);
    assert.equal(form.fields.RelayState, 'rs-default');
    // What the IdP sent, as a reviewer would read it.
    assert.equal(attr(xml, 'Response', 'Destination'), r.acsUrl);
    assert.equal(attr(xml, 'Response', 'InResponseTo'), requestId);
    assert.equal(attr(xml, 'SubjectConfirmationData', 'Recipient'), r.acsUrl);
    assert.equal(attr(xml, 'SubjectConfirmationData', 'InResponseTo'), requestId);
    assert.equal(text(xml, 'Audience'), r.entityId);
    assert.equal(text(xml, 'Issuer'), idp.entityId);
    assert.match(xml, /<samlp:Response\b[\s\S]*?<\/saml:Issuer><ds:Signature\b/, 'the Response is signed');
    assert.match(xml, /<saml:Assertion\b[\s\S]*?<\/saml:Issuer><ds:Signature\b/, 'the Assertion is signed');
    assert.match(xml, /SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmldsig-more#rsa-sha256"/);
    // What node-saml made of it.
    assert.equal(outcome.ok, true, outcome.error);
    const profile = outcome.outcome!;
    assert.equal(profile.issuer, idp.entityId);
    assert.equal(profile.inResponseTo, requestId);
    assert.equal(profile.nameIDFormat, NAMEID_FORMAT.persistent);
    assert.equal(profile.nameID, idp.persistentNameId('alice', r.entityId));
    assert.equal(profile.spNameQualifier, r.entityId);
    assert.ok(profile.sessionIndex);
    assert.deepEqual(profile.attributes, {
      uid: 'alice',
      mail: 'alice@partner.example',
      eduPersonPrincipalName: 'alice@partner.example',
      displayName: 'Alice Example',
      givenName: 'Alice',
      sn: 'Example',
      eduPersonAffiliation: ['member', 'staff'],
      isMemberOf: ['staff', 'project-x'],
    });
  });

  it('the persistent NameID is per user and per SP; non-ASCII attributes arrive intact', async () => {
    const bob = await login('default', 'bob');
    assert.equal(bob.outcome.ok, true, bob.outcome.error);
    assert.equal(bob.outcome.outcome!.nameID, idp.persistentNameId('bob', reg('default').entityId));
    assert.notEqual(bob.outcome.outcome!.nameID, idp.persistentNameId('alice', reg('default').entityId));
    assert.notEqual(idp.persistentNameId('bob', reg('default').entityId), idp.persistentNameId('bob', reg('sha1').entityId));
    assert.equal(bob.outcome.outcome!.attributes!.displayName, 'Bøb Ünïcode');
  });

  it('the same Response POSTed twice is refused the second time (node-saml consumed its request ID)', async () => {
    const first = await login('default', 'alice');
    assert.equal(first.outcome.ok, true, first.outcome.error);
    const again = await first.browser.post(first.form.action, first.form.fields);
    assert.equal(again.status, 400);
    assert.match(JSON.parse(again.body).error, /InResponseTo/);
  });

  it('a Response whose signed NameID was altered is refused', async () => {
    const { form, xml } = await login('default', 'alice');
    const nameId = text(xml, 'NameID')!;
    const tampered = xml.replace(`>${nameId}<`, `>${nameId.slice(0, -1)}${nameId.endsWith('0') ? '1' : '0'}<`);
    assert.notEqual(tampered, xml);
    const saml = samlFor(reg('default'), { validateInResponseTo: ValidateInResponseTo.never });
    await assert.rejects(saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(tampered).toString('base64') }), /signature/i);
    assert.ok(form.fields.SAMLResponse);
  });

  it('single sign-on: a second AuthnRequest in the same browser gets a Response without the login form', async () => {
    const browser = new Browser();
    const first = await login('default', 'alice', browser);
    assert.equal(first.outcome.ok, true, first.outcome.error);
    const second = await login('default', 'alice', browser, { expectForm: false });
    assert.equal(second.outcome.ok, true, second.outcome.error);
    assert.equal(second.outcome.outcome!.nameID, first.outcome.outcome!.nameID);
    assert.notEqual(second.requestId, first.requestId);
  });

  it('encrypted assertion: only an EncryptedAssertion travels, node-saml decrypts it with the SP key and checks its signature', async () => {
    const { xml, outcome } = await login('encrypted', 'alice');
    assert.match(xml, /<saml:EncryptedAssertion>/);
    assert.doesNotMatch(xml, /<saml:Assertion\b/);
    assert.doesNotMatch(xml, /alice@partner\.example/, 'no attribute in the clear');
    assert.match(xml, /xmlenc#rsa-oaep-mgf1p/);
    assert.equal(outcome.ok, true, outcome.error);
    assert.equal(outcome.outcome!.nameID, idp.persistentNameId('alice', reg('encrypted').entityId));
    assert.equal(outcome.outcome!.attributes!.mail, 'alice@partner.example');
    // Without the SP's key there is nothing to read.
    const noKey = samlFor(reg('encrypted'), { validateInResponseTo: ValidateInResponseTo.never, decryptionPvk: undefined });
    await assert.rejects(noKey.validatePostResponseAsync({ SAMLResponse: Buffer.from(xml).toString('base64') }), /decryption key/i);
  });

  it('SHA-1 on request: the Response and Assertion are signed with RSA-SHA1 and SHA-1 digests', async () => {
    const { xml, outcome } = await login('sha1', 'alice');
    assert.match(xml, /SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2000\/09\/xmldsig#rsa-sha1"/);
    assert.match(xml, /DigestMethod Algorithm="http:\/\/www\.w3\.org\/2000\/09\/xmldsig#sha1"/);
    assert.doesNotMatch(xml, /rsa-sha256/);
    // node-saml itself accepts SHA-1 (Concord must refuse it unless a participant allows it).
    assert.equal(outcome.ok, true, outcome.error);
  });

  it('OID attribute names (NameFormat uri), as Shibboleth and most federations send them', async () => {
    const { xml, outcome } = await login('oid', 'alice');
    assert.match(xml, /NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"/);
    assert.equal(outcome.ok, true, outcome.error);
    const attributes = outcome.outcome!.attributes!;
    assert.equal(attributes['urn:oid:0.9.2342.19200300.100.1.3'], 'alice@partner.example'); // mail
    assert.equal(attributes['urn:oid:1.3.6.1.4.1.5923.1.1.1.6'], 'alice@partner.example'); // eduPersonPrincipalName
    assert.deepEqual(attributes['urn:oid:1.3.6.1.4.1.5923.1.1.1.1'], ['member', 'staff']); // eduPersonAffiliation
    assert.equal(attributes.mail, undefined);
  });

  it('an SP that wants only the Assertion signed gets an unsigned Response around a signed Assertion', async () => {
    const { xml, outcome } = await login('assertiononly', 'alice');
    assert.doesNotMatch(xml, /<samlp:Response\b[^>]*>\s*<saml:Issuer>[^<]*<\/saml:Issuer>\s*<ds:Signature\b/);
    assert.match(xml, /<saml:Assertion\b[\s\S]*?<\/saml:Issuer><ds:Signature\b/);
    assert.equal(outcome.ok, true, outcome.error);
  });

  it('transient and emailAddress NameIDs when the SP asks for them', async () => {
    const transient = await login('transient', 'alice');
    assert.equal(transient.outcome.ok, true, transient.outcome.error);
    assert.equal(transient.outcome.outcome!.nameIDFormat, NAMEID_FORMAT.transient);
    assert.notEqual(transient.outcome.outcome!.nameID, idp.persistentNameId('alice', reg('transient').entityId));
    const again = await login('transient', 'alice');
    assert.notEqual(again.outcome.outcome!.nameID, transient.outcome.outcome!.nameID, 'a new transient NameID per login');
    const email = await login('email', 'bob');
    assert.equal(email.outcome.ok, true, email.outcome.error);
    assert.equal(email.outcome.outcome!.nameIDFormat, NAMEID_FORMAT.emailAddress);
    assert.equal(email.outcome.outcome!.nameID, 'bob@partner.example');
  });

  it('IdP-initiated SSO: a Response without InResponseTo, refused by an SP that requires it, accepted by one that allows it', async () => {
    const browser = new Browser();
    const page = await browser.get(idp.idpInitiatedUrl(reg('default').entityId, 'unsolicited'));
    const form = await submitSimpleSamlPhpLogin(browser, page, idp.users[0]!);
    const xml = Buffer.from(form.fields.SAMLResponse!, 'base64').toString('utf8');
    assert.equal(attr(xml, 'Response', 'InResponseTo'), undefined);
    assert.equal(form.fields.RelayState, 'unsolicited');
    const refused = await browser.post(form.action, form.fields);
    assert.equal(refused.status, 400);
    assert.match(JSON.parse(refused.body).error, /InResponseTo is missing/);
    const lenient = samlFor(reg('default'), { validateInResponseTo: ValidateInResponseTo.ifPresent });
    const { profile } = await lenient.validatePostResponseAsync({ SAMLResponse: form.fields.SAMLResponse! });
    assert.equal(profile!.nameID, idp.persistentNameId('alice', reg('default').entityId));
  });

  it('an SP registered with requireSignedAuthnRequest: an unsigned AuthnRequest is refused, a signed one logs in', async () => {
    const unsigned = samlFor(reg('signedrequests'), { privateKey: undefined });
    const unsignedUrl = await unsigned.getAuthorizeUrlAsync('x', undefined, {});
    assert.equal(new URL(unsignedUrl).searchParams.get('Signature'), null);
    // SimpleSAMLphp 1.19 answers its error pages with 200: the page is the evidence.
    const refused = await new Browser().get(unsignedUrl);
    assert.doesNotMatch(refused.body, /name="password"/);
    assert.match(refused.body, /no signature found on message/i);
    assert.match(idp.log(200), /no signature found on message/i);
    const signed = await login('signedrequests', 'alice');
    assert.ok(new URL(signed.page.chain[0]!.url).searchParams.get('Signature'));
    assert.equal(signed.outcome.ok, true, signed.outcome.error);
  });

  it('an SP registered after start is served on the next request', async () => {
    const late = reg('late');
    const unknown = await new Browser().get(await samlFor(late).getAuthorizeUrlAsync('x', undefined, {}));
    assert.match(unknown.body, /Metadata not found/);
    assert.doesNotMatch(unknown.body, /name="password"/);
    idp.registerServiceProvider(late);
    sps.set('late', samlFor(late));
    const { outcome } = await login('late', 'carol');
    assert.equal(outcome.ok, true, outcome.error);
    assert.equal(outcome.outcome!.attributes!.mail, 'carol@elsewhere.example');
    idp.removeServiceProvider(late.entityId);
  });

  it('SP-initiated logout: a LogoutRequest ends the IdP session and comes back as a signed LogoutResponse', async () => {
    const r = reg('default');
    const { browser, outcome } = await login('default', 'alice');
    assert.equal(outcome.ok, true, outcome.error);
    const saml = sps.get('default')!;
    const logoutUrl = new URL(await saml.getLogoutUrlAsync(outcome.outcome!, 'after-logout', {}));
    assert.ok(logoutUrl.searchParams.get('Signature'), 'node-saml signs the LogoutRequest');
    const logoutRequest = await decodeRedirectMessage(logoutUrl, 'SAMLRequest');
    const requestId = attr(logoutRequest, 'LogoutRequest', 'ID');
    const back: BrowserResponse = await browser.get(logoutUrl, { stopAt: (url) => url.href.startsWith(r.sloUrl!) });
    assert.ok(back.stoppedAt, `stopped at the SP's SLO URL (${back.status} ${back.url.href})\n${idp.log()}`);
    const query = back.stoppedAt.search.slice(1);
    const params = Object.fromEntries(back.stoppedAt.searchParams);
    assert.ok(params.Signature, 'the LogoutResponse is signed (Redirect binding)');
    assert.equal(params.RelayState, 'after-logout');
    const logoutResponse = await decodeRedirectMessage(back.stoppedAt, 'SAMLResponse');
    assert.equal(attr(logoutResponse, 'LogoutResponse', 'InResponseTo'), requestId);
    assert.equal(attr(logoutResponse, 'LogoutResponse', 'Destination'), r.sloUrl);
    assert.match(logoutResponse, /StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/);
    const result = await saml.validateRedirectAsync(params, query);
    assert.equal(result.loggedOut, true);
    // The IdP session is gone: the next AuthnRequest shows the login form again.
    const again = await browser.get(await saml.getAuthorizeUrlAsync('again', undefined, {}));
    assert.match(again.body, /name="password"/);
  });

  it('IdP-initiated logout: a signed LogoutRequest for the session reaches the SP, its LogoutResponse lets the IdP finish at ReturnTo', async () => {
    const r = reg('default');
    const { browser, outcome } = await login('default', 'alice');
    assert.equal(outcome.ok, true, outcome.error);
    const returnTo = `${acs.base}/logged-out`;
    const atSp = await browser.get(idp.idpInitiatedLogoutUrl(returnTo), { stopAt: (url) => url.href.startsWith(r.sloUrl!) });
    assert.ok(atSp.stoppedAt, `stopped at the SP's SLO URL (${atSp.status} ${atSp.url.href})\n${idp.log()}`);
    const params = Object.fromEntries(atSp.stoppedAt.searchParams);
    assert.ok(params.Signature, 'the LogoutRequest is signed (Redirect binding)');
    const logoutRequest = await decodeRedirectMessage(atSp.stoppedAt, 'SAMLRequest');
    assert.equal(text(logoutRequest, 'NameID'), outcome.outcome!.nameID);
    assert.equal(text(logoutRequest, 'SessionIndex'), outcome.outcome!.sessionIndex);
    assert.equal(attr(logoutRequest, 'LogoutRequest', 'Destination'), r.sloUrl);
    const saml = sps.get('default')!;
    const received = await saml.validateRedirectAsync(params, atSp.stoppedAt.search.slice(1));
    assert.equal(received.profile?.nameID, outcome.outcome!.nameID);
    const answer = await saml.getLogoutResponseUrlAsync(received.profile!, params.RelayState ?? '', {}, true);
    const done = await browser.get(answer, { stopAt: (url) => url.href.startsWith(returnTo) });
    assert.equal(done.stoppedAt?.href, returnTo, `the IdP finished at ReturnTo (${done.status} ${done.url.href})\n${idp.log()}`);
    const again = await browser.get(await saml.getAuthorizeUrlAsync('again', undefined, {}));
    assert.match(again.body, /name="password"/, 'the IdP session is gone');
  });

  it('node-saml accepts a Redirect-binding LogoutResponse with its signature stripped (so Concord must require it)', async () => {
    const r = reg('default');
    const { browser, outcome } = await login('default', 'bob');
    const saml = sps.get('default')!;
    const back = await browser.get(await saml.getLogoutUrlAsync(outcome.outcome!, '', {}), { stopAt: (url) => url.href.startsWith(r.sloUrl!) });
    assert.ok(back.stoppedAt);
    const stripped = new URLSearchParams(back.stoppedAt.search);
    stripped.delete('Signature');
    stripped.delete('SigAlg');
    const result = await saml.validateRedirectAsync(Object.fromEntries(stripped), stripped.toString());
    assert.equal(result.loggedOut, true);
  });

  it("the attack corpus works on SimpleSAMLphp's own Response: node-saml gives every variant the verdict recorded in FORGERIES", async () => {
    const r = reg('default');
    const { xml, requestId, outcome } = await login('default', 'alice');
    assert.equal(outcome.ok, true, outcome.error);
    const attacker = await createTestCertificate({ commonName: 'attacker' });
    const forged = forgeResponses({ response: xml, idp: idp.keyPair, attacker, oversizeBytes: 300_000 });
    assert.deepEqual(forged.map((f) => f.name).sort(), Object.keys(FORGERIES).sort());
    const sp = { idpCert: idp.certificate, idpEntityId: idp.entityId, spEntityId: r.entityId, acsUrl: r.acsUrl, requestId, original: xml };
    const control = await nodeSamlVerdict({ xml, submit: 'once' }, sp);
    assert.ok(control.accepted, control.accepted ? '' : control.error);
    const wrong: string[] = [];
    for (const f of forged) {
      const verdict = await nodeSamlVerdict(f, sp);
      const got = verdict.accepted ? 'accepts' : 'refuses';
      if (got !== f.nodeSaml) wrong.push(`${f.name}: node-saml ${got}${verdict.accepted ? '' : ` (${verdict.error})`}, recorded ${f.nodeSaml}`);
      if (verdict.accepted) for (const value of f.mustNotYield) assert.notEqual(verdict.profile.mail, value, f.name);
    }
    assert.deepEqual(wrong, []);
  });
});
