import { timingSafeEqual } from 'node:crypto';
import { clip, UpstreamError, type SamlCheck } from '../errors.ts';
import type { CallbackInput, PendingSamlLogin } from '../types.ts';
import { childElements, descendants, firstChild, hasDoctype, NS, parseXml, textOf, XmlRefused, type XDocument, type XElement, type XNode } from './xml.ts';

/*
 * The checks of a SAML message that Concord makes itself, beside node-saml's (signature, one
 * Assertion, InResponseTo, times, audience: saml.ts). One check per function, in the order the
 * connector runs them; each refuses with `assertion_invalid` and its own check name (SAML_CHECKS),
 * the login outcome. The list at the top of test/support/saml-forge.ts names the checks node-saml
 * 5.1 leaves to its caller; each is here.
 */

/** Largest SAML message accepted, decoded XML bytes (the edge bounds the request body first: request-limits.ts). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** Its base64 form (4/3, rounded up). */
const MAX_BASE64_CHARS = Math.ceil(MAX_MESSAGE_BYTES / 3) * 4;

export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
export const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
export const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';

/** Signature and digest algorithms (XML-DSig 1.1, RFC 6931): SHA-2 always, SHA-1 only where a participant allows it, nothing else. */
const SHA2_SIGNATURES = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512',
]);
const SHA2_DIGESTS = new Set(['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmldsig-more#sha384', 'http://www.w3.org/2001/04/xmlenc#sha512']);
const SHA1_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1';
/** Key transport refused whatever the participant says: RSA PKCS#1 v1.5 is a padding oracle (XML Encryption 1.1 5.5.1). */
const RSA_1_5 = 'http://www.w3.org/2001/04/xmlenc#rsa-1_5';

export function refuse(check: SamlCheck, message: string, participantId: string, cause?: unknown): UpstreamError {
  return new UpstreamError('assertion_invalid', message, { participantId, check, ...(cause === undefined ? {} : { cause }) });
}

export function checkPendingSaml(pending: unknown, participantId: string): asserts pending is PendingSamlLogin {
  const p = pending as PendingSamlLogin | null | undefined;
  const ok = p !== null && typeof p === 'object' && p.protocol === 'saml' && typeof p.state === 'string' && p.state.length > 0 && typeof p.requestId === 'string' && p.requestId.length > 0 && typeof p.acsUrl === 'string';
  if (!ok) throw new UpstreamError('state_mismatch', 'no usable pending SAML login for this answer', { participantId });
}

/** SAML's HTTP-POST binding (SAML bindings 3.5): the message in the form, nothing of it in the query. */
const MESSAGE_PARAMETERS = ['SAMLResponse', 'SAMLRequest', 'RelayState', 'SigAlg', 'Signature'];

/**
 * The form of a POSTed SAML message: `SAMLResponse` (or `SAMLRequest`) exactly once, RelayState at
 * most once, none of them also in the query string (nothing slipped in beside the posted message).
 */
export function postedMessage(callback: CallbackInput, name: 'SAMLResponse' | 'SAMLRequest', participantId: string): { message: string; relayState: string | undefined } {
  if (callback.method !== 'POST') throw refuse('saml_malformed', `a ${name} must be POSTed (HTTP-POST binding)`, participantId);
  if (MESSAGE_PARAMETERS.some((p) => callback.query.has(p))) throw refuse('saml_malformed', 'a posted SAML message also carries SAML parameters in its query string', participantId);
  const messages = callback.body.getAll(name);
  if (messages.length !== 1) throw refuse('saml_malformed', `the form carries ${name} ${messages.length} times`, participantId);
  const relayStates = callback.body.getAll('RelayState');
  if (relayStates.length > 1) throw refuse('saml_malformed', 'the form carries RelayState more than once', participantId);
  return { message: messages[0]!, relayState: relayStates[0] };
}

/** The RelayState names the login this answer completes (it was looked up by it; checked again here). */
export function checkRelayState(relayState: string | undefined, pending: PendingSamlLogin, participantId: string): void {
  if (relayState === undefined) throw new UpstreamError('state_mismatch', 'the SAML Response carries no RelayState', { participantId });
  const a = Buffer.from(relayState);
  const b = Buffer.from(pending.state);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new UpstreamError('state_mismatch', 'RelayState does not match the pending login', { participantId });
}

/** The size bound, before anything is decoded. */
export function checkSize(base64: string, participantId: string): void {
  if (base64.length > MAX_BASE64_CHARS) throw refuse('saml_body_too_large', `the SAML message is larger than ${MAX_MESSAGE_BYTES} bytes`, participantId);
}

/** Strict base64 (SAML bindings 3.5.4: the form value is base64 of the XML). */
export function decodeBase64(value: string, participantId: string): string {
  const compact = value.replace(/[\r\n ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) throw refuse('saml_malformed', 'the SAML message is not base64', participantId);
  const xml = Buffer.from(compact, 'base64').toString('utf8');
  if (Buffer.byteLength(xml) > MAX_MESSAGE_BYTES) throw refuse('saml_body_too_large', `the SAML message is larger than ${MAX_MESSAGE_BYTES} bytes`, participantId);
  return xml;
}

/** A DTD or entity declaration anywhere: refused before any parser sees the text (XXE, entity expansion, smuggled subsets). */
export function checkNoDoctype(xml: string, participantId: string): void {
  if (hasDoctype(xml)) throw refuse('saml_doctype', 'the SAML message carries a DOCTYPE (DTDs and entities are refused)', participantId);
}

/** Parses a SAML message whose root must be `{ns}:{local}`. */
export function parseMessage(xml: string, ns: string, local: string, participantId: string): { doc: XDocument; root: XElement } {
  let doc: XDocument;
  try {
    doc = parseXml(xml);
  } catch (error) {
    if (error instanceof XmlRefused && error.reason === 'doctype') throw refuse('saml_doctype', error.message, participantId);
    throw refuse('saml_malformed', (error as Error).message, participantId);
  }
  const root = doc.documentElement!;
  if (root.namespaceURI !== ns || root.localName !== local) throw refuse('saml_malformed', `the message is a ${clip(root.localName, 60)}, not a ${local}`, participantId);
  return { doc, root };
}

/**
 * Destination (SAML core 3.2.2) must be the endpoint it was sent to; SAML bindings 3.5.5.2 requires
 * it on a signed message, and Concord requires it on every one (it is what binds a Response to this
 * SP's endpoint when the Response is not signed).
 */
export function checkDestination(root: XElement, expected: string, participantId: string): void {
  const destination = root.getAttribute('Destination');
  if (!destination) throw refuse('saml_destination', `the ${root.localName} names no Destination`, participantId);
  if (destination !== expected) throw refuse('saml_destination', `Destination ${clip(destination, 150)} is not ${expected}`, participantId);
}

/** The message's own Issuer (optional on a Response, SAML core 3.2.2), when present, is the IdP's entity ID; the Assertion's is checked on its signed copy. */
export function checkMessageIssuer(root: XElement, entityId: string, participantId: string, required = false): void {
  const issuers = childElements(root, NS.assertion, 'Issuer');
  if (issuers.length > 1) throw refuse('saml_issuer', `the ${root.localName} carries ${issuers.length} Issuers`, participantId);
  const issuer = textOf(issuers[0]);
  if (issuer === undefined) {
    if (required) throw refuse('saml_issuer', `the ${root.localName} names no Issuer`, participantId);
    return;
  }
  if (issuer !== entityId) throw refuse('saml_issuer', `Issuer ${clip(issuer, 150)} is not the IdP's entity ID ${entityId}`, participantId);
  const format = issuers[0]!.getAttribute('Format');
  if (format && format !== 'urn:oasis:names:tc:SAML:2.0:nameid-format:entity') throw refuse('saml_issuer', `Issuer Format ${clip(format, 100)} is not entity`, participantId);
}

/** The top-level StatusCode value, and its second-level one (SAML core 3.2.2.2). */
export function statusOf(root: XElement): { code: string | undefined; detail: string | undefined; message: string | undefined } {
  const status = firstChild(root, NS.protocol, 'Status');
  const top = status && firstChild(status, NS.protocol, 'StatusCode');
  const second = top && firstChild(top, NS.protocol, 'StatusCode');
  return { code: top?.getAttribute('Value') ?? undefined, detail: second?.getAttribute('Value') ?? undefined, message: textOf(status && firstChild(status, NS.protocol, 'StatusMessage')) };
}

/** The direct Assertion and EncryptedAssertion children of a Response. */
export function assertionsOf(response: XElement): { plain: XElement[]; encrypted: XElement[] } {
  return { plain: childElements(response, NS.assertion, 'Assertion'), encrypted: childElements(response, NS.assertion, 'EncryptedAssertion') };
}

/** Exactly one Assertion, plain or encrypted, directly in the Response (SAML profiles 4.1.4.2: one is what Concord reads; more is ambiguity an attacker can use). */
export function checkOneAssertion(response: XElement, participantId: string): { plain: XElement | undefined; encrypted: XElement | undefined } {
  const { plain, encrypted } = assertionsOf(response);
  const count = plain.length + encrypted.length;
  if (count !== 1) throw refuse('saml_assertion_count', `the Response carries ${count} Assertions; exactly one is accepted`, participantId);
  // Anything that looks like an Assertion elsewhere (wrapped in Extensions, in a Signature's Object) is refused too.
  const anywhere = descendants(response, NS.assertion, 'Assertion').length + descendants(response, NS.assertion, 'EncryptedAssertion').length;
  if (anywhere !== 1) throw refuse('saml_assertion_count', `the Response carries ${anywhere} Assertion elements at any depth; exactly one is accepted`, participantId);
  return { plain: plain[0], encrypted: encrypted[0] };
}

/**
 * Every signature and digest algorithm in `element`: SHA-2 RSA or ECDSA; RSA-SHA1 and SHA-1
 * digests only when the participant allows SHA-1; never HMAC or anything else. Every key transport:
 * never RSA PKCS#1 v1.5.
 */
export function checkAlgorithms(element: XElement, allowSha1: boolean, participantId: string): void {
  for (const method of descendants(element, NS.dsig, 'SignatureMethod')) {
    const alg = method.getAttribute('Algorithm') ?? '';
    if (SHA2_SIGNATURES.has(alg) || (allowSha1 && alg === SHA1_SIGNATURE)) continue;
    throw refuse('saml_algorithm', `signature algorithm ${clip(alg, 100)} is refused${alg === SHA1_SIGNATURE ? ' (SHA-1: set allowSha1 only for an IdP that cannot do better)' : ''}`, participantId);
  }
  for (const method of descendants(element, NS.dsig, 'DigestMethod')) {
    // Digest methods also appear inside EncryptedKey (the OAEP digest); those are the key transport's business.
    const parent = (method as unknown as { parentNode?: XElement | null }).parentNode;
    if (parent?.localName === 'EncryptionMethod') continue;
    const alg = method.getAttribute('Algorithm') ?? '';
    if (SHA2_DIGESTS.has(alg) || (allowSha1 && alg === SHA1_DIGEST)) continue;
    throw refuse('saml_algorithm', `digest algorithm ${clip(alg, 100)} is refused${alg === SHA1_DIGEST ? ' (SHA-1: set allowSha1 only for an IdP that cannot do better)' : ''}`, participantId);
  }
  for (const method of descendants(element, NS.xmlenc, 'EncryptionMethod')) {
    if (method.getAttribute('Algorithm') === RSA_1_5) throw refuse('saml_algorithm', 'key transport RSA PKCS#1 v1.5 (xmlenc#rsa-1_5) is refused: use RSA-OAEP', participantId);
  }
}

/**
 * No XML comment anywhere in the Assertion. Exclusive canonicalisation drops comments, so a comment
 * inside a signed NameID or attribute value does not break the signature, and a reader that stops at
 * the first text node reads a truncated identity (CVE-2017-11427 and its family). Concord reads the
 * canonical text, which is safe; an IdP never puts comments there, so one is refused outright.
 */
export function checkNoComments(assertion: XElement, participantId: string): void {
  const walk = (node: XNode): boolean => {
    for (let n = node.firstChild; n; n = n.nextSibling) if (n.nodeType === 8 || walk(n)) return true;
    return false;
  };
  if (walk(assertion)) throw refuse('saml_comment', 'the Assertion carries an XML comment (comment injection is refused)', participantId);
}

/** Whether the element carries its own enveloped ds:Signature (a direct child). */
export function isSigned(element: XElement): boolean {
  return childElements(element, NS.dsig, 'Signature').length > 0;
}

/** The Assertion's Issuer (its signed copy) is the IdP's entity ID (SAML core 2.3.3: required on an Assertion). */
export function checkAssertionIssuer(assertion: XElement, entityId: string, participantId: string): void {
  checkMessageIssuer(assertion, entityId, participantId, true);
}

/**
 * SAML profiles 4.1.4.2: a bearer SubjectConfirmation whose SubjectConfirmationData names this ACS
 * as Recipient and carries a NotOnOrAfter (node-saml checks its times and InResponseTo, not its
 * Method or Recipient). Returns that NotOnOrAfter (epoch ms).
 */
export function checkBearerRecipient(assertion: XElement, acsUrl: string, participantId: string): number {
  const subject = firstChild(assertion, NS.assertion, 'Subject');
  const confirmations = subject ? childElements(subject, NS.assertion, 'SubjectConfirmation') : [];
  const bearer = confirmations.filter((c) => c.getAttribute('Method') === BEARER);
  if (bearer.length === 0) throw refuse('saml_recipient', 'the Assertion has no bearer SubjectConfirmation', participantId);
  const data = bearer.map((c) => firstChild(c, NS.assertion, 'SubjectConfirmationData')).filter((d): d is XElement => d !== undefined);
  const ours = data.find((d) => d.getAttribute('Recipient') === acsUrl);
  if (!ours) throw refuse('saml_recipient', `no bearer SubjectConfirmationData names ${acsUrl} as Recipient (got ${clip(data.map((d) => d.getAttribute('Recipient') ?? '(none)').join(', '), 150)})`, participantId);
  const notOnOrAfter = Date.parse(ours.getAttribute('NotOnOrAfter') ?? '');
  if (Number.isNaN(notOnOrAfter)) throw refuse('saml_time', 'the bearer SubjectConfirmationData has no NotOnOrAfter', participantId);
  return notOnOrAfter;
}

/** The Assertion's ID (SAML core 2.3.3), for the replay cache. */
export function assertionId(assertion: XElement, participantId: string): string {
  const id = assertion.getAttribute('ID');
  if (!id || id.length > 256) throw refuse('saml_malformed', 'the Assertion has no usable ID', participantId);
  return id;
}

/** The NameID of the Assertion's Subject (plain: an EncryptedID is not supported). */
export function nameIdOf(assertion: XElement): { value: string; format: string | undefined; nameQualifier: string | undefined; spNameQualifier: string | undefined } | undefined {
  const subject = firstChild(assertion, NS.assertion, 'Subject');
  const nameId = subject && firstChild(subject, NS.assertion, 'NameID');
  const value = nameId?.textContent ?? '';
  if (!nameId || value.trim() === '') return undefined;
  const attr = (name: string) => nameId.getAttribute(name) || undefined;
  return { value: value.trim(), format: attr('Format'), nameQualifier: attr('NameQualifier'), spNameQualifier: attr('SPNameQualifier') };
}

/** Attribute name -> values (SAML core 2.7.3), in document order; an xsi:nil value is left out. */
export function attributesOf(assertion: XElement): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const statement of childElements(assertion, NS.assertion, 'AttributeStatement')) {
    for (const attribute of childElements(statement, NS.assertion, 'Attribute')) {
      const name = attribute.getAttribute('Name');
      if (!name) continue;
      const values = childElements(attribute, NS.assertion, 'AttributeValue')
        .filter((v) => v.getAttribute('xsi:nil') !== 'true')
        .map((v) => v.textContent ?? '');
      out.set(name, [...(out.get(name) ?? []), ...values]);
    }
  }
  return out;
}

/** The AuthnStatement's AuthnInstant (epoch seconds), SessionIndex and AuthnContextClassRef. */
export function authnOf(assertion: XElement): { authTime: number | undefined; sessionIndex: string | undefined; classRef: string | undefined } {
  const statement = firstChild(assertion, NS.assertion, 'AuthnStatement');
  const instant = Date.parse(statement?.getAttribute('AuthnInstant') ?? '');
  const context = statement && firstChild(statement, NS.assertion, 'AuthnContext');
  return {
    authTime: Number.isNaN(instant) ? undefined : Math.floor(instant / 1000),
    sessionIndex: statement?.getAttribute('SessionIndex') || undefined,
    classRef: textOf(context && firstChild(context, NS.assertion, 'AuthnContextClassRef')),
  };
}

/**
 * RFC 8176 `amr` values for the common AuthnContextClassRefs (SAML authn context 3.4; the REFEDS MFA
 * profile; AD FS and Entra ID's multi-factor URI). Others give no amr; `acr` carries the class as is.
 */
const AMR_OF_CLASS: Readonly<Record<string, string[]>> = {
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Password': ['pwd'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport': ['pwd'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken': ['otp'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard': ['sc'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI': ['sc', 'pin'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:X509': ['swk'],
  'urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract': ['mfa'],
  'https://refeds.org/profile/mfa': ['mfa'],
  'http://schemas.microsoft.com/claims/multipleauthn': ['mfa'],
};

export function amrOf(classRef: string | undefined): string[] | undefined {
  return classRef ? AMR_OF_CLASS[classRef] : undefined;
}
