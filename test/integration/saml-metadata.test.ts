/**
 * SAML metadata (issue 14 item 4): the IdP's metadata fetched through the public-address guard and
 * checked by the admin API's onboarding check (422 with the reason); a certificate rollover at the
 * IdP followed; Concord's SP keys rolled over with both certificates in its SP metadata.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { METADATA_REFETCH_FLOOR_MS } from '../../src/upstream/index.ts';
import { samlParticipant, samlSignedIn, startSamlFederation, type SamlFederation } from '../support/saml-federation.ts';
import { startSimpleSamlPhp, type ServiceProviderRegistration, type SimpleSamlPhpIdp } from '../support/simplesamlphp.ts';
import { createTestCertificate } from '../support/x509.ts';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe('SAML metadata', () => {
  let idp: SimpleSamlPhpIdp;
  let fed: SamlFederation;
  let registration: ServiceProviderRegistration;

  const adminPost = (body: unknown) =>
    fetch(`${fed.concord.adminUrl}/admin/v1/participants`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    idp = await startSimpleSamlPhp({ domain: 'partner.example' });
    // No health probes: metadata is fetched by logins only, so the rollover below takes the refetch path.
    fed = await startSamlFederation(idp, [samlParticipant('uni', idp, 'partner.example')], { settings: { upstream: { healthInterval: 0 } } });
    registration = await fed.register('uni');
  });
  after(async () => {
    await fed?.close();
    await idp?.close();
  });

  it('onboarding: a SAML IdP is registered when its metadata is good; refused with 422 and the reason when not', async () => {
    const good = await adminPost(samlParticipant('newuni', idp, 'newuni.example'));
    assert.equal(good.status, 201, await good.clone().text());
    const view = (await good.json()) as { upstream: Record<string, unknown> };
    assert.equal(view.upstream.type, 'saml');
    assert.equal(view.upstream.clientSecretSet, undefined);

    // The guard: a metadata URL at a loopback address is not fetched without allowPrivateNetwork.
    const privateUrl = await adminPost({ ...samlParticipant('sneaky', idp, 'sneaky.example', { idpMetadataUrl: 'https://127.0.0.1:1/metadata.xml', allowInsecureHttp: false }) });
    assert.equal(privateUrl.status, 422);
    const refusal = (await privateUrl.json()) as { field: string; reason: string; message: string };
    assert.equal(refusal.field, 'upstream.idpMetadataUrl');
    assert.equal(refusal.reason, 'discovery_invalid');
    assert.match(refusal.message, /not a public address/);

    const inline = (xml: string) => adminPost(samlParticipant('inline', idp, 'inline.example', { idpMetadataUrl: undefined, idpMetadataXml: xml, allowInsecureHttp: true }));
    const doctype = await inline(`<!DOCTYPE x [<!ENTITY e "x">]>${idp.metadataXml.replace(/^<\?xml[^>]*>/, '')}`);
    assert.equal(doctype.status, 422);
    assert.match(((await doctype.json()) as { message: string }).message, /DOCTYPE/);
    const noCert = await inline(idp.metadataXml.replace(/<md:KeyDescriptor[\s\S]*?<\/md:KeyDescriptor>/g, ''));
    assert.equal(noCert.status, 422);
    assert.match(((await noCert.json()) as { message: string }).message, /no usable signing certificate/);
    const expired = await inline(idp.metadataXml.replace('<md:EntityDescriptor ', '<md:EntityDescriptor validUntil="2001-01-01T00:00:00Z" '));
    assert.equal(expired.status, 422);
    assert.match(((await expired.json()) as { message: string }).message, /expired/);
    const ok = await inline(idp.metadataXml);
    assert.equal(ok.status, 201, 'the same metadata pasted in is fine');
  });

  it('JSON Schema: upstream is one of oidc and saml, by type', async () => {
    const { jsonSchemas } = await import('../../src/config/index.ts');
    const text = JSON.stringify(jsonSchemas().participant);
    for (const field of ['idpMetadataUrl', 'idpMetadataXml', 'spEntityId', 'nameIdFormat', 'wantAssertionsEncrypted', 'allowSha1', 'allowIdpInitiated', 'attributeAliases', 'subjectAttribute']) assert.ok(text.includes(`"${field}"`), field);
    assert.match(text, /"const":"saml"/);
  });

  it("Concord's SP key rollover: the next certificate is in the SP metadata before it signs, the old one until it retires", async () => {
    const before = fed.concord.concord.samlKeys.published().map((k) => k.certificateBase64);
    await fed.concord.concord.samlKeyRing.rotate();
    const xml = await fed.spMetadata('uni');
    const listed = [...xml.matchAll(/<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</g)].map((m) => m[1]);
    assert.equal(listed.length, 2);
    assert.ok(listed.includes(before[0]!), 'the current certificate is listed');
    const next = fed.concord.concord.samlKeys.published().find((k) => k.state === 'next');
    assert.ok(next && listed.includes(next.certificateBase64), 'the next certificate is listed');
    assert.equal(fed.concord.concord.samlKeys.current().certificateBase64, before[0], 'the current key still signs');
    // Logins go on with the current key (SimpleSAMLphp was registered with it and checks AuthnRequest signatures).
    const { claims } = await samlSignedIn(fed, 'uni', 'alice');
    assert.ok(claims.sub);
  });

  it('a certificate rollover at the IdP is followed: a signature by a key the cached metadata lacks fetches it again', async () => {
    const port = Number(new URL(idp.baseUrl).port);
    const first = await samlSignedIn(fed, 'uni', 'alice');
    const fetchedAt = Date.now();
    await idp.close();
    // The same IdP (entity ID, port) with a new key pair, as after a rollover.
    idp = await startSimpleSamlPhp({ domain: 'partner.example', port, keyPair: await createTestCertificate({ commonName: 'simplesamlphp-idp-2' }), sps: [registration] });
    fed.idp = idp;
    // The connector refetches at most once per METADATA_REFETCH_FLOOR_MS after its last fetch.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, fetchedAt + METADATA_REFETCH_FLOOR_MS + 200 - Date.now())));
    const second = await samlSignedIn(fed, 'uni', 'alice');
    // (SimpleSAMLphp's persistent NameIDs are salted per instance: the restarted IdP gives alice another.)
    assert.equal(second.claims.sub, `uni:${idp.persistentNameId('alice', `${fed.concord.issuer}/saml/uni`)}`);
    assert.ok(first.claims.sub);
    assert.ok(fed.concord.logs.some((l) => l.endpoint === 'discovery' && l.participant === 'uni' && Date.parse(String(l.time)) > fetchedAt + METADATA_REFETCH_FLOOR_MS), 'the metadata was fetched again');
  });
});
