import { X509Certificate } from 'node:crypto';
import { childElements, descendants, NS, parseXml, textOf, XmlRefused, type XElement } from './xml.ts';

/** SAML 2.0 bindings (SAML bindings 3.4, 3.5). */
export const BINDING = {
  redirect: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
  post: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
} as const;

/** What Concord uses of an IdP's metadata (SAML metadata 2.4.3 IDPSSODescriptor). */
export interface IdpMetadata {
  /** The IdP's entity ID: every Response and Assertion Issuer must equal it. */
  entityId: string;
  /** Signing certificates, base64 DER: the only keys whose signatures Concord accepts (never a message's KeyInfo). */
  certificates: string[];
  /** SingleSignOnService, HTTP-Redirect binding: where AuthnRequests go. */
  ssoUrl: string;
  /** SingleLogoutService, HTTP-Redirect binding, when it has one: where LogoutRequests and LogoutResponses go. */
  sloUrl?: string;
  /** Its ResponseLocation, when different (SAML metadata 2.2.2). */
  sloResponseUrl?: string;
  /** NameID formats it lists. */
  nameIdFormats: string[];
}

export class MetadataInvalid extends Error {}

const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';

/**
 * Reads an IdP's metadata: one EntityDescriptor (an aggregate of several entities is refused: give
 * the IdP's own metadata URL), its IDPSSODescriptor for SAML 2.0, at least one usable signing
 * certificate, an HTTP-Redirect SingleSignOnService, not past its validUntil. Endpoints must be
 * https unless `insecure` (loopback development).
 * @throws MetadataInvalid with what is wrong (for admins: it names the element).
 */
export function parseIdpMetadata(xml: string, options: { insecure: boolean; now?: number }): IdpMetadata {
  let root: XElement;
  try {
    root = parseXml(xml).documentElement!;
  } catch (error) {
    throw new MetadataInvalid(error instanceof XmlRefused && error.reason === 'doctype' ? 'the metadata carries a DOCTYPE (refused)' : `the metadata is not well-formed XML: ${(error as Error).message}`);
  }
  let entity = root;
  if (root.namespaceURI === NS.metadata && root.localName === 'EntitiesDescriptor') {
    const entities = descendants(root, NS.metadata, 'EntityDescriptor').filter((e) => childElements(e, NS.metadata, 'IDPSSODescriptor').length > 0);
    if (entities.length !== 1) throw new MetadataInvalid(`the metadata is an aggregate with ${entities.length} IdPs: use the IdP's own metadata (one EntityDescriptor)`);
    entity = entities[0]!;
  }
  if (entity.namespaceURI !== NS.metadata || entity.localName !== 'EntityDescriptor') throw new MetadataInvalid('the metadata root is not an md:EntityDescriptor');
  const entityId = entity.getAttribute('entityID');
  if (!entityId) throw new MetadataInvalid('the EntityDescriptor has no entityID');
  checkValidUntil(entity, options.now ?? Date.now());

  const idp = childElements(entity, NS.metadata, 'IDPSSODescriptor').find((d) => (d.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL));
  if (!idp) throw new MetadataInvalid(`entity ${entityId} has no IDPSSODescriptor for SAML 2.0`);
  checkValidUntil(idp, options.now ?? Date.now());

  const certificates = childElements(idp, NS.metadata, 'KeyDescriptor')
    .filter((k) => {
      const use = k.getAttribute('use');
      return use === null || use === '' || use === 'signing';
    })
    .flatMap((k) => descendants(k, NS.dsig, 'X509Certificate'))
    .map((c) => (textOf(c) ?? '').replace(/\s+/g, ''))
    .filter((c) => c.length > 0);
  const usable = [...new Set(certificates)].filter(usableCertificate);
  if (usable.length === 0) throw new MetadataInvalid(`entity ${entityId} lists no usable signing certificate (KeyDescriptor use="signing" with an X509Certificate of an RSA or EC key)`);

  const endpoint = (local: string, binding: string) => childElements(idp, NS.metadata, local).find((e) => e.getAttribute('Binding') === binding);
  const sso = endpoint('SingleSignOnService', BINDING.redirect);
  const ssoUrl = sso?.getAttribute('Location');
  if (!ssoUrl) throw new MetadataInvalid(`entity ${entityId} has no SingleSignOnService with the HTTP-Redirect binding`);
  checkUrl(ssoUrl, 'SingleSignOnService', options.insecure);
  const slo = endpoint('SingleLogoutService', BINDING.redirect);
  const sloUrl = slo?.getAttribute('Location') || undefined;
  const sloResponseUrl = slo?.getAttribute('ResponseLocation') || undefined;
  if (sloUrl) checkUrl(sloUrl, 'SingleLogoutService', options.insecure);
  if (sloResponseUrl) checkUrl(sloResponseUrl, 'SingleLogoutService ResponseLocation', options.insecure);
  const nameIdFormats = childElements(idp, NS.metadata, 'NameIDFormat').map((e) => textOf(e)).filter((f): f is string => f !== undefined);
  return { entityId, certificates: usable, ssoUrl, ...(sloUrl ? { sloUrl } : {}), ...(sloResponseUrl ? { sloResponseUrl } : {}), nameIdFormats };
}

function checkValidUntil(element: XElement, now: number): void {
  const validUntil = element.getAttribute('validUntil');
  if (!validUntil) return;
  const until = Date.parse(validUntil);
  if (Number.isNaN(until)) throw new MetadataInvalid(`validUntil ${validUntil.slice(0, 40)} is not a date`);
  if (until <= now) throw new MetadataInvalid(`the metadata expired at ${validUntil} (validUntil): ask the IdP for current metadata`);
}

function checkUrl(value: string, what: string, insecure: boolean): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new MetadataInvalid(`${what} ${value.slice(0, 100)} is not a URL`);
  }
  if (!(url.protocol === 'https:' || (insecure && url.protocol === 'http:'))) throw new MetadataInvalid(`${what} ${url.href} must be https`);
}

function usableCertificate(base64: string): boolean {
  try {
    const type = new X509Certificate(Buffer.from(base64, 'base64')).publicKey.asymmetricKeyType;
    return type === 'rsa' || type === 'ec';
  } catch {
    return false;
  }
}

/** A base64 DER certificate as PEM. */
export function certificatePemOf(base64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${base64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export interface SpMetadataInput {
  entityId: string;
  acsUrl: string;
  sloUrl: string;
  nameIdFormat: string;
  /** Every published SP certificate (base64 DER), the signing one first: listed for signing and for encryption. */
  certificates: string[];
}

/**
 * Concord's SP metadata for one participant (SAML metadata 2.4.4 SPSSODescriptor): it signs its
 * AuthnRequests and wants signed Assertions; each published key is listed for signing and for
 * encryption (during a rollover the current and the next); the ACS (HTTP-POST) and the SLO endpoint
 * (HTTP-Redirect and HTTP-POST).
 */
export function spMetadataXml(input: SpMetadataInput): string {
  const key = (use: string, cert: string) =>
    `<md:KeyDescriptor use="${use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>` +
    (use === 'encryption'
      ? '<md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/><md:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/><md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc"/><md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>'
      : '') +
    '</md:KeyDescriptor>';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<md:EntityDescriptor xmlns:md="${NS.metadata}" xmlns:ds="${NS.dsig}" entityID="${esc(input.entityId)}">` +
    `<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="${SAML2_PROTOCOL}">` +
    input.certificates.map((c) => key('signing', c)).join('') +
    input.certificates.map((c) => key('encryption', c)).join('') +
    `<md:SingleLogoutService Binding="${BINDING.redirect}" Location="${esc(input.sloUrl)}"/>` +
    `<md:SingleLogoutService Binding="${BINDING.post}" Location="${esc(input.sloUrl)}"/>` +
    `<md:NameIDFormat>${esc(input.nameIdFormat)}</md:NameIDFormat>` +
    `<md:AssertionConsumerService Binding="${BINDING.post}" Location="${esc(input.acsUrl)}" index="0" isDefault="true"/>` +
    `</md:SPSSODescriptor></md:EntityDescriptor>\n`
  );
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
