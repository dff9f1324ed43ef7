/**
 * The SAML connector's own checks (src/upstream/saml/checks.ts) and its reading of identity, on
 * Responses built and signed here (test/support/saml-forge.ts) for an IdP whose metadata is given
 * inline: no network, no SimpleSAMLphp. The end-to-end tests are test/integration/saml-*.test.ts.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { before, describe, it } from 'node:test';
import { selfSignedCertificate } from '../../src/keys/certificate.ts';
import { outcomeLabel } from '../../src/observability/labels.ts';
import { parseIdpMetadata, MetadataInvalid } from '../../src/upstream/saml/metadata.ts';
import { checkAlgorithms, checkBearerRecipient, checkOneAssertion, decodeBase64 } from '../../src/upstream/saml/checks.ts';
import { parseXml, type XElement } from '../../src/upstream/saml/xml.ts';
import { createSamlConnector, SAML_CHECKS, UpstreamError, type CallbackInput, type Connector, type PendingSamlLogin, type SamlConnectorOptions } from '../../src/upstream/index.ts';
import { buildResponse, buildSignedResponse, FORGERIES, forgeResponse, forgeResponses, signResponse } from '../support/saml-forge.ts';
import { REFUSAL_OUTCOMES } from '../support/saml-federation.ts';
import { createTestCertificate, pemBody, type TestKeyPair } from '../support/x509.ts';

const IDP = 'https://idp.partner.example/idp';
const SP = 'https://concord.example/saml/uni';
const ACS = `${SP}/acs`;
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
const EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

function idpMetadata(cert: string, extra: { sso?: string; validUntil?: string } = {}): string {
  return (
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${IDP}"${extra.validUntil ? ` validUntil="${extra.validUntil}"` : ''}>` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${pemBody(cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.partner.example/slo"/>` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${extra.sso ?? 'https://idp.partner.example/sso'}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

describe('SAML connector', () => {
  let idp: TestKeyPair;
  let sp: TestKeyPair;
  let attacker: TestKeyPair;
  const seen = new Map<string, number>();

  before(async () => {
    [idp, sp, attacker] = await Promise.all([createTestCertificate({ commonName: 'idp' }), createTestCertificate({ commonName: 'sp' }), createTestCertificate({ commonName: 'attacker' })]);
  });

  function connector(extra: Partial<SamlConnectorOptions> = {}): Connector {
    return createSamlConnector({
      participantId: 'uni',
      metadataXml: idpMetadata(idp.cert),
      spEntityId: SP,
      acsUrl: ACS,
      sloUrl: `${SP}/slo`,
      nameIdFormat: PERSISTENT,
      wantAssertionsEncrypted: false,
      allowSha1: false,
      allowIdpInitiated: false,
      attributeAliases: {},
      keys: { published: () => [{ kid: 'sp', privateKeyPem: sp.key, certificateBase64: sp.certBase64 }] },
      replay: {
        firstUse: async (key) => {
          if (seen.has(key)) return false;
          seen.set(key, 1);
          return true;
        },
      },
      ...extra,
    });
  }

  const post = (xml: string, relayState: string): CallbackInput => ({
    method: 'POST',
    query: new URLSearchParams(),
    body: new URLSearchParams({ SAMLResponse: Buffer.from(xml).toString('base64'), RelayState: relayState }),
  });

  async function begin(c: Connector): Promise<PendingSamlLogin> {
    const { url, pending } = await c.beginLogin({ redirectUri: 'unused' });
    assert.equal(pending.protocol, 'saml');
    const request = inflateRawSync(Buffer.from(new URL(url).searchParams.get('SAMLRequest')!, 'base64')).toString();
    assert.ok(request.includes(`ID="${(pending as PendingSamlLogin).requestId}"`));
    return pending as PendingSamlLogin;
  }

  const response = (pending: PendingSamlLogin, o: Partial<Parameters<typeof buildResponse>[0]> = {}) =>
    buildSignedResponse({
      issuer: IDP,
      audience: SP,
      acsUrl: ACS,
      inResponseTo: pending.requestId,
      nameId: 'alice-persistent-id',
      attributes: { 'urn:oid:0.9.2342.19200300.100.1.3': ['alice@partner.example'], isMemberOf: ['staff', 'project-x'], displayName: ['Alice'] },
      idp,
      ...o,
    });

  async function refusal(c: Connector, pending: PendingSamlLogin, xml: string): Promise<UpstreamError> {
    const error = await c.completeLogin(post(xml, pending.state), pending).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UpstreamError, String(error));
    return error;
  }

  it('the AuthnRequest: signed (Redirect binding), RelayState a random reference, no RequestedAuthnContext unless acr_values, ForceAuthn for prompt=login', async () => {
    const c = connector();
    const { url, pending } = await c.beginLogin({ redirectUri: 'unused', params: { prompt: ['login'], acr_values: ['https://refeds.org/profile/mfa'] } });
    const u = new URL(url);
    assert.equal(u.origin + u.pathname, 'https://idp.partner.example/sso');
    assert.equal(u.searchParams.get('RelayState'), pending.state);
    assert.equal(u.searchParams.get('SigAlg'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    assert.ok(u.searchParams.get('Signature'));
    const request = inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest')!, 'base64')).toString();
    assert.match(request, /ForceAuthn="true"/);
    assert.match(request, /https:\/\/refeds\.org\/profile\/mfa/);
    assert.match(request, new RegExp(`AssertionConsumerServiceURL="${ACS}"`));
    const plain = inflateRawSync(Buffer.from(new URL((await c.beginLogin({ redirectUri: 'unused' })).url).searchParams.get('SAMLRequest')!, 'base64')).toString();
    assert.doesNotMatch(plain, /RequestedAuthnContext|ForceAuthn/);
  });

  it('a valid Response: the identity from the signed Assertion, attributes under names and aliases', async () => {
    const c = connector({ attributeAliases: { displayName: 'name' } });
    const pending = await begin(c);
    const identity = await c.completeLogin(post(response(pending), pending.state), pending);
    assert.equal(identity.subject, 'alice-persistent-id');
    assert.equal(identity.issuer, IDP);
    assert.equal(identity.claims['urn:oid:0.9.2342.19200300.100.1.3'], 'alice@partner.example');
    assert.equal(identity.claims.mail, 'alice@partner.example', 'built-in alias');
    assert.equal(identity.claims.name, 'Alice', 'configured alias');
    assert.deepEqual(identity.claims.isMemberOf, ['staff', 'project-x']);
    assert.deepEqual(identity.amr, ['pwd']);
    assert.equal(identity.logout?.protocol, 'saml');
  });

  it('the subject: never a transient NameID; an emailAddress one only when asked for; or the configured attribute', async () => {
    let c = connector();
    let pending = await begin(c);
    assert.equal((await refusal(c, pending, response(pending, { nameIdFormat: TRANSIENT }))).check, 'saml_subject');
    pending = await begin(c);
    assert.equal((await refusal(c, pending, response(pending, { nameIdFormat: EMAIL, nameId: 'alice@partner.example' }))).check, 'saml_subject');
    c = connector({ nameIdFormat: EMAIL });
    pending = await begin(c);
    assert.equal((await c.completeLogin(post(response(pending, { nameIdFormat: EMAIL, nameId: 'alice@partner.example' }), pending.state), pending)).subject, 'alice@partner.example');
    c = connector({ subjectAttribute: 'mail' });
    pending = await begin(c);
    assert.equal((await c.completeLogin(post(response(pending, { nameIdFormat: TRANSIENT, nameId: 'random' }), pending.state), pending)).subject, 'alice@partner.example');
    pending = await begin(c);
    assert.equal((await refusal(c, pending, response(pending, { attributes: { mail: ['a@x.example', 'b@x.example'] } }))).check, 'saml_subject', 'a multi-valued subject attribute');
  });

  it('a non-Success status without an Assertion is the IdP declining: access_denied for the service', async () => {
    const c = connector();
    const pending = await begin(c);
    const xml =
      `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${ACS}" InResponseTo="${pending.requestId}">` +
      `<saml:Issuer>${IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode></samlp:Status></samlp:Response>`;
    const error = await refusal(c, pending, xml);
    assert.equal(error.code, 'upstream_error');
    assert.equal(error.upstreamError, 'access_denied');
    // The same for another login's request is a refusal, not an answer.
    const other = await begin(c);
    assert.equal((await refusal(c, other, xml)).check, 'saml_in_response_to');
  });

  it('wantAssertionsEncrypted refuses a plain Assertion; allowIdpInitiated accepts one without InResponseTo, once', async () => {
    let c = connector({ wantAssertionsEncrypted: true });
    let pending = await begin(c);
    assert.equal((await refusal(c, pending, response(pending))).check, 'saml_not_encrypted');
    c = connector({ allowIdpInitiated: true });
    pending = await begin(c);
    const unsolicited = buildSignedResponse({ issuer: IDP, audience: SP, acsUrl: ACS, nameId: 'alice-persistent-id', idp });
    assert.equal((await c.completeLogin(post(unsolicited, pending.state), pending)).subject, 'alice-persistent-id');
    const again = await begin(c);
    assert.equal((await refusal(c, again, unsolicited)).check, 'saml_replay');
    const strict = connector();
    const p = await begin(strict);
    assert.equal((await refusal(strict, p, buildSignedResponse({ issuer: IDP, audience: SP, acsUrl: ACS, nameId: 'x', idp }))).check, 'saml_in_response_to');
  });

  it('RelayState must be the pending login’s; SAML parameters in the query beside a posted Response are refused', async () => {
    const c = connector();
    const pending = await begin(c);
    const xml = response(pending);
    const wrong = await c.completeLogin(post(xml, 'another'), pending).catch((e: UpstreamError) => e);
    assert.equal((wrong as UpstreamError).code, 'state_mismatch');
    const smuggled = { ...post(xml, pending.state), query: new URLSearchParams({ SAMLResponse: 'x' }) };
    assert.equal(((await c.completeLogin(smuggled, pending).catch((e: UpstreamError) => e)) as UpstreamError).check, 'saml_malformed');
  });

  it('refuses every variant of the attack corpus built here, with the outcome the integration test expects', async () => {
    const c = connector();
    const sample = await begin(c);
    const names = forgeResponses({ response: response(sample, { attributes: { mail: ['alice@partner.example'] } }), idp, attacker, oversizeBytes: 300_000 }).map((f) => f.name);
    assert.deepEqual(names.sort(), Object.keys(FORGERIES).sort());
    for (const name of names) {
      const pending = await begin(c);
      const xml = name === 'replay' ? response(sample) : forgeResponse(name, { response: response(pending, { attributes: { mail: ['alice@partner.example'] } }), idp, attacker, oversizeBytes: 300_000 })!.xml;
      const error = await refusal(c, pending, xml);
      assert.equal(error.code, 'assertion_invalid', name);
      assert.equal(error.check, REFUSAL_OUTCOMES[name], name);
    }
  });

  it('algorithms: SHA-1 only where allowed, never HMAC, never RSA 1.5 key transport', () => {
    const signed = (algorithm: 'sha256' | 'sha1' | 'hmac-sha1') => parseXml(signResponse(buildResponse({ issuer: IDP, audience: SP, acsUrl: ACS, nameId: 'x' }), { key: algorithm === 'hmac-sha1' ? idp.cert : idp.key, algorithm })).documentElement!;
    assert.doesNotThrow(() => checkAlgorithms(signed('sha256'), false, 'uni'));
    assert.throws(() => checkAlgorithms(signed('sha1'), false, 'uni'), (e: UpstreamError) => e.check === 'saml_algorithm');
    assert.doesNotThrow(() => checkAlgorithms(signed('sha1'), true, 'uni'));
    assert.throws(() => checkAlgorithms(signed('hmac-sha1'), true, 'uni'), (e: UpstreamError) => e.check === 'saml_algorithm');
    const rsa15 = parseXml(`<x xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-1_5"/></x>`).documentElement!;
    assert.throws(() => checkAlgorithms(rsa15, true, 'uni'), (e: UpstreamError) => e.check === 'saml_algorithm');
  });

  it('structure: an Assertion hidden anywhere counts; a bearer confirmation must name the ACS', () => {
    const doc = (inner: string) => parseXml(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${inner}</samlp:Response>`).documentElement!;
    assert.throws(() => checkOneAssertion(doc('<saml:Assertion/><samlp:Extensions><saml:Assertion/></samlp:Extensions>'), 'uni'), (e: UpstreamError) => e.check === 'saml_assertion_count');
    assert.throws(() => checkOneAssertion(doc(''), 'uni'), (e: UpstreamError) => e.check === 'saml_assertion_count');
    const assertion = (method: string, recipient: string, notOnOrAfter = '2999-01-01T00:00:00Z') =>
      parseXml(`<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject><saml:SubjectConfirmation Method="${method}"><saml:SubjectConfirmationData Recipient="${recipient}" NotOnOrAfter="${notOnOrAfter}"/></saml:SubjectConfirmation></saml:Subject></saml:Assertion>`).documentElement as XElement;
    assert.equal(checkBearerRecipient(assertion('urn:oasis:names:tc:SAML:2.0:cm:bearer', ACS), ACS, 'uni'), Date.parse('2999-01-01T00:00:00Z'));
    assert.throws(() => checkBearerRecipient(assertion('urn:oasis:names:tc:SAML:2.0:cm:holder-of-key', ACS), ACS, 'uni'), (e: UpstreamError) => e.check === 'saml_recipient');
    assert.throws(() => checkBearerRecipient(assertion('urn:oasis:names:tc:SAML:2.0:cm:bearer', 'https://other.example/acs'), ACS, 'uni'), (e: UpstreamError) => e.check === 'saml_recipient');
    assert.throws(() => decodeBase64('not base64!', 'uni'), (e: UpstreamError) => e.check === 'saml_malformed');
  });

  it('IdP metadata: one IdP, a usable certificate, an HTTP-Redirect SSO endpoint, https, not expired', () => {
    assert.equal(parseIdpMetadata(idpMetadata(idp.cert), { insecure: false }).entityId, IDP);
    assert.throws(() => parseIdpMetadata(idpMetadata(idp.cert, { sso: 'http://idp.partner.example/sso' }), { insecure: false }), MetadataInvalid);
    assert.doesNotThrow(() => parseIdpMetadata(idpMetadata(idp.cert, { sso: 'http://127.0.0.1/sso' }), { insecure: true }));
    assert.throws(() => parseIdpMetadata(idpMetadata(idp.cert, { validUntil: '2000-01-01T00:00:00Z' }), { insecure: false }), /expired/);
    const two = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${idpMetadata(idp.cert)}${idpMetadata(idp.cert).replace(IDP, 'https://other.example/idp')}</md:EntitiesDescriptor>`;
    assert.throws(() => parseIdpMetadata(two, { insecure: false }), /aggregate with 2 IdPs/);
    assert.throws(() => parseIdpMetadata(idpMetadata('MIIBnotacert'), { insecure: false }), /no usable signing certificate/);
  });

  it('every check is a bounded outcome label', () => {
    for (const check of SAML_CHECKS) assert.equal(outcomeLabel(check), check);
  });

  it('SP certificates: the same key and options give the same certificate, valid and signed by the key', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const make = () => selfSignedCertificate({ privateKey, publicKey, commonName: 'Concord SAML SP', serialSeed: 'kid-1', notBefore: new Date(1_800_000_000_000), notAfter: new Date(1_900_000_000_000) });
    const der = make();
    assert.ok(der.equals(make()));
    const cert = new X509Certificate(der);
    assert.ok(cert.verify(publicKey));
    assert.ok(cert.checkPrivateKey(privateKey));
    assert.equal(cert.subject, 'CN=Concord SAML SP');
    assert.ok(cert.publicKey.equals(publicKey));
    assert.notDeepEqual(selfSignedCertificate({ privateKey, publicKey, commonName: 'x', serialSeed: 'kid-2', notBefore: new Date(0), notAfter: new Date(1) }), der);
  });

  it('SP certificates: every serial is a minimal DER INTEGER, so OpenSSL reads every certificate', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    // The first two hash to serials starting 00 04 and 80 5b (0x80 masked to 00): a non-minimal INTEGER
    // before the fix; then a sweep, in which about one seed in 256 would have failed.
    const seeds = ['4b819fe9fe34b435439b282732ce8491', '1d552c33ebcc50970bdff2ea7d1cb9d5', ...Array.from({ length: 1024 }, (_, i) => `kid-${i}`)];
    for (const serialSeed of seeds) {
      const der = selfSignedCertificate({ privateKey, publicKey, commonName: 'Concord SAML SP', serialSeed, notBefore: new Date(1_800_000_000_000), notAfter: new Date(1_900_000_000_000) });
      const cert = new X509Certificate(der);
      assert.ok(cert.publicKey.equals(publicKey), serialSeed);
      assert.doesNotMatch(cert.serialNumber, /^00[0-7]/, serialSeed);
    }
  });
});
