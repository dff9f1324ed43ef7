import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { startConcord, type TestConcord } from './concord.ts';
import { authorizationRequest, exchange, RP, type Authorization } from './federation.ts';
import { Browser, type BrowserResponse } from './http-client.ts';
import type { ForgeryName } from './saml-forge.ts';
import { samlPostForm, submitSimpleSamlPhpLogin, type SamlPostForm, type ServiceProviderRegistration, type SimpleSamlPhpIdp } from './simplesamlphp.ts';

/**
 * Concord with SAML participants brokering to a real SimpleSAMLphp IdP, and the RP client of the
 * broker tests. Each participant's SP is registered at the IdP from Concord's own SP metadata
 * (GET {issuer}/saml/{id}/metadata): its ACS, SLO and signing certificate, as a partner would.
 */

/** The login outcome Concord refuses each saml-forge variant with: the one check that catches it first. */
export const REFUSAL_OUTCOMES: Record<ForgeryName, string> = {
  xsw1: 'saml_assertion_count',
  xsw2: 'saml_assertion_count',
  xsw3: 'saml_assertion_count',
  xsw4: 'saml_assertion_count',
  xsw5: 'saml_assertion_count',
  xsw6: 'saml_assertion_count',
  xsw7: 'saml_assertion_count',
  xsw8: 'saml_assertion_count',
  'comment-injection-nameid': 'saml_comment',
  'unsigned-assertion-beside-signed': 'saml_assertion_count',
  'two-assertions': 'saml_assertion_count',
  unsigned: 'saml_signature',
  'assertion-signature-stripped': 'saml_signature',
  'response-signature-broken': 'saml_signature',
  'signature-other-key': 'saml_signature',
  'keyinfo-attacker-certificate': 'saml_signature',
  'hmac-signature': 'saml_algorithm',
  'sha1-signature': 'saml_algorithm',
  // The same Response for another login: it answers another AuthnRequest (the replay cache is below).
  replay: 'saml_in_response_to',
  unsolicited: 'saml_in_response_to',
  'wrong-in-response-to': 'saml_in_response_to',
  'wrong-audience': 'saml_audience',
  'wrong-recipient': 'saml_recipient',
  'wrong-destination': 'saml_destination',
  'wrong-issuer': 'saml_issuer',
  expired: 'saml_time',
  'not-yet-valid': 'saml_time',
  'status-not-success': 'saml_status',
  'dtd-billion-laughs': 'saml_doctype',
  'dtd-external-entity': 'saml_doctype',
  'dtd-declared': 'saml_doctype',
  oversized: 'saml_body_too_large',
};

export interface SamlFederation {
  concord: TestConcord;
  idp: SimpleSamlPhpIdp;
  rp: oidc.Configuration;
  /** Concord's SP metadata for a participant, as served. */
  spMetadata(participantId: string): Promise<string>;
  /** Registers participant `id`'s SP at the IdP from that metadata (`extra`: how the IdP treats it). */
  register(participantId: string, extra?: Partial<ServiceProviderRegistration>): Promise<ServiceProviderRegistration>;
  close(): Promise<void>;
}

export const samlParticipant = (id: string, idp: SimpleSamlPhpIdp, domain: string, upstream: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  id,
  displayName: `University ${id}`,
  domains: [domain],
  upstream: { type: 'saml', idpMetadataUrl: idp.metadataUrl, allowInsecureHttp: true, ...upstream },
  mapping: {
    rules: [
      { claim: 'email', from: ['mail', 'eduPersonPrincipalName'] },
      { claim: 'email_verified', value: true },
      { claim: 'name', from: 'displayName' },
      { claim: 'groups', from: 'isMemberOf' },
      { claim: 'affiliation', from: 'eduPersonAffiliation' },
    ],
  },
  ...extra,
});

export async function startSamlFederation(idp: SimpleSamlPhpIdp, participants: unknown[], options: { settings?: Record<string, unknown> } = {}): Promise<SamlFederation> {
  const concord = await startConcord({ participants, clients: [RP], ...(options.settings ? { settings: options.settings } : {}) });
  const rp = await oidc.discovery(new URL(concord.issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const spMetadata = async (id: string) => {
    const res = await fetch(`${concord.issuer}/saml/${id}/metadata`);
    assert.equal(res.status, 200, `SP metadata of ${id}`);
    return res.text();
  };
  return {
    concord,
    idp,
    rp,
    spMetadata,
    async register(id, extra = {}) {
      const xml = await spMetadata(id);
      const entityId = /entityID="([^"]+)"/.exec(xml)![1]!;
      const signing = /<md:KeyDescriptor use="signing">[\s\S]*?<ds:X509Certificate>([^<]+)</.exec(xml)![1]!;
      const acsUrl = /<md:AssertionConsumerService [^>]*Location="([^"]+)"/.exec(xml)![1]!;
      const sloUrl = /<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="([^"]+)"/.exec(xml)![1]!;
      const registration: ServiceProviderRegistration = { entityId, acsUrl, sloUrl, signingCertificate: signing, requireSignedAuthnRequest: true, ...extra };
      idp.registerServiceProvider(registration);
      return registration;
    },
    close: () => concord.close(),
  };
}

export const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);

export interface SamlLoginStart {
  browser: Browser;
  auth: Authorization;
  /** The IdP's answer: the form a browser would POST to Concord's ACS. */
  form: SamlPostForm;
  /** The SAML Response, XML. */
  xml: string;
}

/**
 * Starts a login at the RP (idp_hint selects the participant) and signs in at SimpleSAMLphp (its
 * form, or single sign-on when `browser` has a session there); stops before the IdP's answer is
 * POSTed to Concord's ACS.
 */
export async function samlLoginUntilAcs(fed: SamlFederation, participantId: string, username: string, browser = new Browser()): Promise<SamlLoginStart> {
  const auth = await authorizationRequest(fed.rp, { idp_hint: participantId });
  const page = await browser.get(auth.url, { stopAt: atRp });
  assert.equal(new URL(page.url).origin, new URL(fed.idp.baseUrl).origin, `expected the IdP, got ${page.status} ${page.url.href}: ${page.body.slice(0, 300)}`);
  const user = fed.idp.users.find((u) => u.username === username)!;
  const form = page.body.includes('name="password"') ? await submitSimpleSamlPhpLogin(browser, page, user) : samlPostForm(page);
  const xml = Buffer.from(form.fields.SAMLResponse ?? '', 'base64').toString('utf8');
  return { browser, auth, form, xml };
}

/** POSTs `samlResponse` (XML) with the login's RelayState to Concord's ACS, as the browser would; follows to the RP or a page. */
export function postToAcs(start: SamlLoginStart, samlResponseXml: string = start.xml): Promise<BrowserResponse> {
  return start.browser.post(start.form.action, { SAMLResponse: Buffer.from(samlResponseXml, 'utf8').toString('base64'), ...(start.form.fields.RelayState !== undefined ? { RelayState: start.form.fields.RelayState } : {}) }, { stopAt: atRp });
}

/** A whole SAML-brokered login and the code exchange. */
export async function samlSignedIn(fed: SamlFederation, participantId: string, username: string, browser = new Browser()) {
  const start = await samlLoginUntilAcs(fed, participantId, username, browser);
  const done = await postToAcs(start);
  assert.ok(done.stoppedAt, `no code at the RP: ${done.status} ${done.url.href}: ${done.body.slice(0, 500)}`);
  const tokens = await exchange(fed.rp, done.stoppedAt, start.auth);
  return { ...start, tokens, claims: tokens.claims()! };
}
