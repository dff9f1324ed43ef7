/**
 * The attack corpus Concord's SAML connector must refuse (issue 14, "Tests"): from one valid,
 * signed SAML Response (XML text, from the SimpleSAMLphp harness or from `buildSignedResponse`
 * below) it produces named, tampered variants: the XML Signature Wrapping attacks XSW1-XSW8
 * (Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be", USENIX Security 2012; the
 * element moves as SAML Raider's XSWHelpers defines them; XSW3-XSW8 also drop the Response
 * signature, which any change breaks, so they test the Assertion-level check), comment injection in the NameID,
 * signatures by the wrong key, replay, wrong Audience/Recipient/Destination/InResponseTo/Issuer,
 * expired and not-yet-valid assertions, SHA-1 and HMAC signatures, DTD and entity payloads, an
 * oversized body, a non-Success status with an assertion, and two assertions.
 *
 *   const forged = forgeResponses({ response: xml, idp: idp.keyPair, attacker });
 *   for (const f of forged) post(acsUrl, { SAMLResponse: Buffer.from(f.xml).toString('base64') })  // each must fail
 *
 * Variants that test a semantic check (audience, time, status, …) are re-signed with the IdP's own
 * key (the test made it, see SimpleSamlPhpIdp.keyPair), so only that one check can refuse them;
 * wrapping, comment and DTD variants keep the IdP's original signature bytes.
 *
 * What node-saml 5.1 does and does not check. nodeSamlVerdict() below runs a variant through
 * `new SAML({ idpCert: <pinned IdP certificate>, issuer: <SP entity ID>, callbackUrl: <ACS URL>,
 * audience: <SP entity ID>, wantAssertionsSigned: true, wantAuthnResponseSigned: false,
 * validateInResponseTo: 'always', idpIssuer: <IdP entity ID>, acceptedClockSkewMs: 60000 })`;
 * test/unit/saml-forge.test.ts (on a Response built here) and the SimpleSAMLphp harness test (on
 * SimpleSAMLphp's own Response) assert the `nodeSaml` verdict recorded for each variant below. node-saml refuses: a missing, foreign-key, KeyInfo-substituted or HMAC
 * signature on the Assertion; XSW1-XSW8; more than one Assertion; an unknown or missing
 * InResponseTo (with 'always'); a Response replayed after its request ID was consumed; a wrong
 * Audience; NotBefore/NotOnOrAfter outside the clock skew; entity references (xmldom has no DTD
 * support and errors on them). It reads identity from the canonicalised signed bytes, so comments
 * in the NameID do not truncate it. It does NOT check, and Concord's connector must add:
 *   1. Issuer of the Response and the Assertion equals the participant's IdP entity ID
 *      (`idpIssuer` is only applied to logout messages).
 *   2. Destination of the Response equals Concord's ACS URL (when present; required when signed).
 *   3. SubjectConfirmation Method is bearer and its SubjectConfirmationData Recipient equals the
 *      ACS URL (node-saml reads only its times and InResponseTo).
 *   4. Assertion ID replay cache until NotOnOrAfter (node-saml only consumes the AuthnRequest ID;
 *      IdP-initiated responses have none, so with validateInResponseTo 'ifPresent' a Response can
 *      be replayed at will).
 *   5. StatusCode Success when an Assertion is present (node-saml looks at the status only when
 *      there is no Assertion, and returns the profile of a signed Assertion under a Responder status).
 *   6. SHA-1 refused unless the participant allows it (xml-crypto accepts rsa-sha1/sha1 digests).
 *   7. DOCTYPE refused outright, before parsing (a DTD that declares but does not use entities is
 *      silently dropped by xmldom and the signature still verifies).
 *   8. Body size bounded before decoding/parsing (node-saml parses whatever it is given).
 *   9. A Response signature that is present must verify (with wantAuthnResponseSigned false, a
 *      broken Response signature is ignored when the Assertion's own signature verifies; with it
 *      true, IdPs that sign only the Assertion are refused, so Concord decides per message).
 *  10. IdP-initiated (no InResponseTo) refused unless the participant allows it: configure
 *      validateInResponseTo 'always' for such participants, 'ifPresent' only when allowed.
 *  11. Redirect-binding LogoutRequest/LogoutResponse must carry a Signature (node-saml's
 *      validateRedirectAsync accepts an unsigned one; see the harness test).
 *  12. Transient NameIDs refused as `sub` (a connector rule, not a forgery here).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import { SignedXml } from 'xml-crypto';

// @xmldom/xmldom (node-saml's and xml-crypto's parser) is loaded untyped: its type declarations
// pull the DOM lib into the whole program, which changes fetch's types under src/. The few DOM
// members used here are declared below.
const xmldom = createRequire(import.meta.url)('@xmldom/xmldom') as {
  DOMParser: new (options: { locator: object; errorHandler: Record<'warning' | 'error' | 'fatalError', (message: string) => void> }) => { parseFromString(xml: string, mime: string): XDocument };
  XMLSerializer: new () => { serializeToString(node: XNode): string };
};

/** The DOM node members the forge uses (xmldom 0.8). */
export interface XNode {
  readonly nodeType: number;
  readonly nodeName: string;
  readonly firstChild: XNode | null;
  readonly nextSibling: XNode | null;
  readonly parentNode: XNode | null;
  readonly ownerDocument: XDocument | null;
  readonly childNodes: ArrayLike<XNode>;
  textContent: string | null;
  data?: string;
  cloneNode(deep: boolean): XNode;
  appendChild(node: XNode): XNode;
  insertBefore(node: XNode, before: XNode | null): XNode;
  removeChild(node: XNode): XNode;
}
export interface XElement extends XNode {
  readonly localName: string;
  readonly namespaceURI: string | null;
  readonly prefix: string | null;
  readonly tagName: string;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  hasAttribute(name: string): boolean;
  getElementsByTagNameNS(ns: string, local: string): ArrayLike<XElement>;
}
export interface XDocument extends XNode {
  readonly documentElement: XElement | null;
  createElementNS(ns: string, qualifiedName: string): XElement;
  createTextNode(text: string): XNode;
  createComment(text: string): XNode;
}

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

const ALGORITHMS = {
  sha256: { signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', digest: 'http://www.w3.org/2001/04/xmlenc#sha256' },
  sha1: { signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' },
  'hmac-sha1': { signature: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1', digest: 'http://www.w3.org/2000/09/xmldsig#sha1' },
} as const;
export type SigningAlgorithm = keyof typeof ALGORITHMS;

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** Attribute names that carry an email address in common IdPs (basic, OID, ADFS claim URIs). */
const EMAIL_ATTRIBUTES = new Set([
  'mail',
  'email',
  'eduPersonPrincipalName',
  'urn:oid:0.9.2342.19200300.100.1.3',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
]);

/** A key pair as PEM (the shape of x509.ts TestKeyPair). */
export interface SigningKeyPair {
  key: string;
  cert: string;
}

// ---------------------------------------------------------------------------------------------
// The catalogue

/** Whether node-saml 5.1, configured as described at the top of this file, refuses the variant. */
export type NodeSamlVerdict = 'refuses' | 'accepts';

export interface ForgeryDescription {
  /** What the variant attacks. */
  attack: string;
  /** What a correct SP does with it. */
  expected: string;
  /** node-saml's verdict (asserted by test/unit/saml-forge.test.ts, so a library change shows up). */
  nodeSaml: NodeSamlVerdict;
  /** The check Concord's connector must make itself (when node-saml's verdict is not the whole story). */
  concordMust?: string;
}

/** Every variant, with what it attacks and what a correct SP must do. */
export const FORGERIES = {
  /** XSW1: the signed Response is copied into its own Signature element; the outer, evil Response (new ID) carries the attacker's assertion. */
  xsw1: {
    attack: 'signature wrapping at the Response: the Response signature references a copy hidden inside the Signature, the evaluated Response is evil',
    expected: 'refuse: the signature must reference the very element whose content is used',
    nodeSaml: 'refuses',
  },
  /** XSW2: as XSW1, but the copy of the signed Response sits before the Signature (detached-signature style). */
  xsw2: {
    attack: 'signature wrapping at the Response: the signed copy is a sibling before the Signature, the evaluated Response is evil',
    expected: 'refuse',
    nodeSaml: 'refuses',
  },
  /** XSW3: an unsigned evil Assertion (new ID) is inserted before the signed one, as the first Assertion. */
  xsw3: {
    attack: 'signature wrapping at the Assertion: an SP that reads the first Assertion reads an unsigned one',
    expected: 'refuse (exactly one Assertion, the signed one)',
    nodeSaml: 'refuses',
  },
  /** XSW4: the evil Assertion (new ID) wraps the signed Assertion as its child. */
  xsw4: {
    attack: 'signature wrapping at the Assertion: the signed Assertion is nested inside the evaluated, unsigned one',
    expected: 'refuse',
    nodeSaml: 'refuses',
  },
  /** XSW5: the Assertion in place is evil (new ID, original Signature kept); an unsigned copy of the original is appended to the Response. */
  xsw5: {
    attack: 'signature wrapping at the Assertion: the Signature in the evaluated Assertion references a copy elsewhere in the Response',
    expected: 'refuse: an enveloped signature must reference its parent',
    nodeSaml: 'refuses',
  },
  /** XSW6: as XSW5, but the copy of the original Assertion is hidden inside the Signature element. */
  xsw6: {
    attack: 'signature wrapping at the Assertion: the referenced copy sits inside the Signature of the evaluated Assertion',
    expected: 'refuse',
    nodeSaml: 'refuses',
  },
  /** XSW7: an evil copy (same ID) inside an Extensions element before the signed Assertion. */
  xsw7: {
    attack: 'signature wrapping through Extensions: two elements with the signed ID, the evil one in a schema-extensible place',
    expected: 'refuse: IDs must be unique and the Assertion must be a direct child of the Response',
    nodeSaml: 'refuses',
  },
  /** XSW8: the Assertion in place is evil (same ID, Signature kept); the original, unsigned copy sits in a ds:Object inside the Signature. */
  xsw8: {
    attack: 'signature wrapping through ds:Object: the digest is computed over the hidden original, the evil Assertion is evaluated',
    expected: 'refuse',
    nodeSaml: 'refuses',
  },
  /** The IdP signed `{victim}.evil.example` (an account the attacker owns); a comment after `{victim}` truncates it in parsers that read the first text node. */
  'comment-injection-nameid': {
    attack: 'comment injection (CVE-2017-11427 family): NameID and mail read as the victim by a parser that stops at the comment',
    expected: 'either refuse, or use the whole signed value ({victim}.evil.example): never the victim',
    nodeSaml: 'accepts',
    concordMust: 'read identity only from the signed, canonicalised content node-saml returns (never re-parse the raw XML)',
  },
  /** A second, unsigned evil Assertion after the signed one (the Response signature removed). */
  'unsigned-assertion-beside-signed': {
    attack: 'an SP that checks "a signature is valid" and then reads any Assertion',
    expected: 'refuse: exactly one Assertion, and it must be signed',
    nodeSaml: 'refuses',
  },
  /** Two Assertions, each validly signed by the IdP (the second for the attacker's identity). */
  'two-assertions': {
    attack: 'ambiguity: which Assertion is the identity',
    expected: 'refuse: exactly one Assertion',
    nodeSaml: 'refuses',
  },
  /** Every Signature removed. */
  unsigned: {
    attack: 'an SP that validates signatures only when present',
    expected: 'refuse',
    nodeSaml: 'refuses',
  },
  /** The Assertion's Signature removed; the Response re-signed by the IdP (valid). */
  'assertion-signature-stripped': {
    attack: 'an SP satisfied by a Response signature although it requires signed Assertions',
    expected: 'refuse: the Assertion must carry a valid signature by the IdP',
    nodeSaml: 'refuses',
  },
  /** The Response's own Signature broken (IssueInstant changed after signing); the Assertion signature intact. */
  'response-signature-broken': {
    attack: 'an SP that ignores a present but invalid Response signature',
    expected: 'refuse: a signature that is there must verify',
    nodeSaml: 'accepts',
    concordMust: 'when the Response carries a Signature, verify it (getVerifiedXml on the Response) and refuse if it fails',
  },
  /** Re-signed with the attacker's key; KeyInfo carries the IdP's (genuine) certificate. */
  'signature-other-key': {
    attack: 'a signature by another key, dressed with the IdP certificate',
    expected: 'refuse: verify with the configured certificate only',
    nodeSaml: 'refuses',
  },
  /** Re-signed with the attacker's key; KeyInfo carries the attacker's certificate. */
  'keyinfo-attacker-certificate': {
    attack: 'an SP that verifies with the certificate found in the message',
    expected: 'refuse: never take the key from KeyInfo',
    nodeSaml: 'refuses',
  },
  /** "Signed" with HMAC-SHA1 keyed by the IdP's public certificate (key confusion). */
  'hmac-signature': {
    attack: 'algorithm confusion: an HMAC whose secret is the public certificate',
    expected: 'refuse: only the asymmetric algorithms Concord allows',
    nodeSaml: 'refuses',
  },
  /** Re-signed by the IdP with RSA-SHA1 and SHA-1 digests. */
  'sha1-signature': {
    attack: 'SHA-1 (collision-prone) signature and digests',
    expected: 'refuse unless the participant sets allowSha1',
    nodeSaml: 'accepts',
    concordMust: 'refuse SignatureMethod rsa-sha1 and DigestMethod sha1 unless allowSha1',
  },
  /** The same valid Response a second time. */
  replay: {
    attack: 'replay of a captured Response/Assertion',
    expected: 'refuse the second use: each Assertion ID once, until its NotOnOrAfter',
    nodeSaml: 'refuses',
    concordMust: 'keep a replay cache of Assertion IDs in the store (node-saml refuses only because the request ID was consumed; an IdP-initiated Response has none)',
  },
  /** No InResponseTo (Response and SubjectConfirmationData), re-signed by the IdP: an unsolicited, IdP-initiated Response. */
  unsolicited: {
    attack: 'IdP-initiated (unsolicited) login where the SP did not ask for one (login CSRF, replay across sessions)',
    expected: 'refuse unless the participant sets allowIdpInitiated',
    nodeSaml: 'refuses',
    concordMust: "use validateInResponseTo 'always' unless allowIdpInitiated, and then still keep the replay cache",
  },
  /** InResponseTo names a request the SP never sent (Response and SubjectConfirmationData), re-signed. */
  'wrong-in-response-to': {
    attack: 'a Response for another login (another browser, another SP)',
    expected: 'refuse: InResponseTo must be the ID of the AuthnRequest this login sent',
    nodeSaml: 'refuses',
  },
  /** Audience is another SP's entity ID, re-signed. */
  'wrong-audience': {
    attack: 'an Assertion issued to another SP, forwarded here',
    expected: "refuse: AudienceRestriction must contain Concord's SP entity ID",
    nodeSaml: 'refuses',
  },
  /** SubjectConfirmationData Recipient is another ACS URL, re-signed. */
  'wrong-recipient': {
    attack: 'a bearer Assertion addressed to another endpoint',
    expected: "refuse: Recipient must be Concord's ACS URL",
    nodeSaml: 'accepts',
    concordMust: "check SubjectConfirmation Method bearer and SubjectConfirmationData Recipient equal to the participant's ACS URL",
  },
  /** Response Destination is another ACS URL, re-signed. */
  'wrong-destination': {
    attack: 'a Response addressed to another endpoint',
    expected: "refuse: Destination must be Concord's ACS URL",
    nodeSaml: 'accepts',
    concordMust: "check the Response's Destination equals the participant's ACS URL",
  },
  /** Issuer (Response and Assertion) is another entity, re-signed with the same key. */
  'wrong-issuer': {
    attack: 'an Assertion claiming another issuer (a participant sharing a key, or a confused multi-IdP set-up)',
    expected: "refuse: Issuer must equal the participant's IdP entity ID",
    nodeSaml: 'accepts',
    concordMust: "check Issuer of the Response (when present) and of the Assertion against the participant's IdP entity ID",
  },
  /** Conditions and SubjectConfirmationData NotOnOrAfter an hour ago, re-signed. */
  expired: {
    attack: 'an old Assertion',
    expected: 'refuse: NotOnOrAfter in the past (beyond the clock tolerance)',
    nodeSaml: 'refuses',
  },
  /** Conditions NotBefore an hour ahead, re-signed. */
  'not-yet-valid': {
    attack: 'an Assertion issued for later use',
    expected: 'refuse: NotBefore in the future (beyond the clock tolerance)',
    nodeSaml: 'refuses',
  },
  /** StatusCode Responder/AuthnFailed around a validly signed Assertion, re-signed. */
  'status-not-success': {
    attack: 'an SP that reads the Assertion without looking at the status',
    expected: 'refuse: StatusCode must be Success',
    nodeSaml: 'accepts',
    concordMust: 'check the top-level StatusCode is urn:oasis:names:tc:SAML:2.0:status:Success before using the Assertion',
  },
  /** A DOCTYPE declaring nested entities (billion laughs), referenced in the NameID. */
  'dtd-billion-laughs': {
    attack: 'entity expansion: memory and CPU exhaustion',
    expected: 'refuse any DOCTYPE before parsing',
    nodeSaml: 'refuses',
    concordMust: 'refuse a DOCTYPE before handing the XML to any parser',
  },
  /** A DOCTYPE declaring an external entity (file:///etc/hostname), referenced in the NameID. */
  'dtd-external-entity': {
    attack: 'XXE: local file disclosure, SSRF',
    expected: 'refuse any DOCTYPE before parsing',
    nodeSaml: 'refuses',
    concordMust: 'refuse a DOCTYPE before handing the XML to any parser',
  },
  /** A DOCTYPE that declares an entity but uses none: the signature still verifies. */
  'dtd-declared': {
    attack: 'a DTD smuggled past a parser that drops internal subsets (and a probe for DTD processing)',
    expected: 'refuse any DOCTYPE',
    nodeSaml: 'accepts',
    concordMust: 'refuse a DOCTYPE before parsing',
  },
  /** The valid Response padded by a comment to `oversizeBytes` (signatures still verify: comments are outside exc-c14n). */
  oversized: {
    attack: 'resource exhaustion by body size',
    expected: 'refuse before decoding or parsing (bounded body)',
    nodeSaml: 'accepts',
    concordMust: 'bound the ACS body size (and the decoded XML) before parsing',
  },
} as const satisfies Record<string, ForgeryDescription>;

export type ForgeryName = keyof typeof FORGERIES;

export interface Forgery extends ForgeryDescription {
  name: ForgeryName;
  /** The tampered Response, XML text (base64 it for the SAMLResponse form field). */
  xml: string;
  /** Carries a DOCTYPE on purpose (a DTD-refusing parser cannot read it, which is the point). */
  hasDtd: boolean;
  /** 'after-original': submit the original (accepted) first, then this (refused). */
  submit: 'once' | 'after-original';
  /** Identity values a correct SP must never yield for this variant (comment injection). */
  mustNotYield: string[];
}

export interface ForgeInput {
  /** A valid Response (XML text) with a plain (not encrypted) Assertion, signed by `idp`. */
  response: string;
  /** The IdP's key pair: semantic variants are re-signed with it. */
  idp: SigningKeyPair;
  /** A key pair the SP does not trust. */
  attacker: SigningKeyPair;
  /** The identity the attacker wants (wrapped assertions carry it). Default admin@{domain of the original's mail or partner.example}. */
  victim?: string;
  /** Size of the oversized variant, bytes of XML. Default 2 MiB. */
  oversizeBytes?: number;
  /** "Now" for the time-based variants, ms since the epoch. Default Date.now(). */
  now?: number;
}

/**
 * Every variant of FORGERIES that applies to `input.response` (XSW1/XSW2 and
 * response-signature-broken need a signed Response).
 * @throws Error when the input is not a SAML Response with exactly one plain, signed Assertion.
 */
export function forgeResponses(input: ForgeInput): Forgery[] {
  const base = analyse(input.response);
  const out: Forgery[] = [];
  for (const name of Object.keys(FORGERIES) as ForgeryName[]) {
    const forged = forgeResponse(name, input, base);
    if (forged) out.push(forged);
  }
  return out;
}

/** One variant, or undefined when it does not apply to this Response (see forgeResponses). */
export function forgeResponse(name: ForgeryName, input: ForgeInput, base = analyse(input.response)): Forgery | undefined {
  const victim = input.victim ?? `admin@${base.mailDomain ?? 'partner.example'}`;
  const now = input.now ?? Date.now();
  const ctx: Ctx = { ...input, base, victim, now };
  const build = BUILDERS[name];
  const result = build(ctx);
  if (result === undefined) return undefined;
  const { xml, mustNotYield = [] } = typeof result === 'string' ? { xml: result } : result;
  return {
    name,
    ...(FORGERIES[name] as ForgeryDescription),
    xml,
    hasDtd: /<!DOCTYPE/i.test(xml),
    submit: name === 'replay' ? 'after-original' : 'once',
    mustNotYield,
  };
}

// ---------------------------------------------------------------------------------------------
// Builders

interface Ctx extends ForgeInput {
  base: Analysis;
  victim: string;
  now: number;
}

type Builder = (ctx: Ctx) => string | { xml: string; mustNotYield?: string[] } | undefined;

/**
 * Response-level wrapping (XSW1, XSW2): the Response becomes evil under a new ID; an unsigned copy
 * of the original (the one its Signature references) is put where `place` says.
 */
function wrapResponse(c: Ctx, place: (x: { response: XElement; signature: XElement; copy: XElement }) => void): string | undefined {
  if (!c.base.responseSigned) return undefined;
  return mutate(c.response, (doc) => {
    const response = doc.documentElement!;
    const copy = response.cloneNode(true) as XElement;
    removeSignature(copy);
    evilize(directAssertions(response)[0]!, c.victim);
    response.setAttribute('ID', evilId());
    place({ response, signature: directSignature(response)!, copy });
  });
}

/**
 * Assertion-level wrapping (XSW3-XSW8): the Response signature is dropped (any change breaks it);
 * `copy` is an unsigned clone of the signed Assertion. With evil 'copy' the clone carries the
 * attacker's identity and the signed Assertion stays as it was; with evil 'in-place' the signed
 * Assertion (keeping its Signature) carries it and the clone keeps the original content.
 * `newId` gives the evil one a new ID; `place` puts the clone somewhere.
 */
function wrapAssertion(
  c: Ctx,
  o: { evil: 'copy' | 'in-place'; newId: boolean },
  place: (x: { doc: XDocument; response: XElement; assertion: XElement; copy: XElement }) => void,
): string {
  return mutate(c.response, (doc) => {
    const response = doc.documentElement!;
    removeSignature(response);
    const assertion = directAssertions(response)[0]!;
    const copy = assertion.cloneNode(true) as XElement;
    removeSignature(copy);
    const evil = o.evil === 'copy' ? copy : assertion;
    evilize(evil, c.victim);
    if (o.newId) evil.setAttribute('ID', evilId());
    place({ doc, response, assertion, copy });
  });
}

const prefixed = (element: XElement, local: string) => `${element.prefix ? `${element.prefix}:` : ''}${local}`;

const BUILDERS: Record<ForgeryName, Builder> = {
  xsw1: (c) => wrapResponse(c, ({ signature, copy }) => signature.appendChild(copy)),
  xsw2: (c) => wrapResponse(c, ({ response, signature, copy }) => response.insertBefore(copy, signature)),
  xsw3: (c) => wrapAssertion(c, { evil: 'copy', newId: true }, ({ response, assertion, copy }) => response.insertBefore(copy, assertion)),
  xsw4: (c) =>
    wrapAssertion(c, { evil: 'copy', newId: true }, ({ response, assertion, copy }) => {
      response.appendChild(copy);
      copy.appendChild(assertion);
    }),
  xsw5: (c) => wrapAssertion(c, { evil: 'in-place', newId: true }, ({ response, copy }) => response.appendChild(copy)),
  xsw6: (c) => wrapAssertion(c, { evil: 'in-place', newId: true }, ({ assertion, copy }) => directSignature(assertion)!.appendChild(copy)),
  xsw7: (c) =>
    wrapAssertion(c, { evil: 'copy', newId: false }, ({ doc, response, assertion, copy }) => {
      const extensions = doc.createElementNS(NS.protocol, prefixed(response, 'Extensions'));
      response.insertBefore(extensions, assertion);
      extensions.appendChild(copy);
    }),
  xsw8: (c) =>
    wrapAssertion(c, { evil: 'in-place', newId: false }, ({ doc, assertion, copy }) => {
      const signature = directSignature(assertion)!;
      const object = doc.createElementNS(NS.dsig, prefixed(signature, 'Object'));
      signature.appendChild(object);
      object.appendChild(copy);
    }),
  'comment-injection-nameid': (c) => {
    const owned = `${c.victim}.evil.example`;
    const signed = resign(c, (doc) => {
      const assertion = directAssertions(doc.documentElement!)[0]!;
      setText(nameIdOf(assertion)!, owned);
      for (const value of emailValues(assertion)) setText(value, owned);
    });
    const xml = mutate(signed, (doc) => {
      const assertion = directAssertions(doc.documentElement!)[0]!;
      for (const element of [nameIdOf(assertion)!, ...emailValues(assertion)]) {
        while (element.firstChild) element.removeChild(element.firstChild);
        element.appendChild(doc.createTextNode(c.victim));
        element.appendChild(doc.createComment(''));
        element.appendChild(doc.createTextNode('.evil.example'));
      }
    });
    return { xml, mustNotYield: [c.victim] };
  },
  'unsigned-assertion-beside-signed': (c) =>
    wrapAssertion(c, { evil: 'copy', newId: true }, ({ response, assertion, copy }) => response.insertBefore(copy, assertion.nextSibling)),
  'two-assertions': (c) =>
    resign(c, (doc) => {
      const response = doc.documentElement!;
      const assertion = directAssertions(response)[0]!;
      const second = assertion.cloneNode(true) as XElement;
      second.setAttribute('ID', evilId());
      evilize(second, c.victim);
      response.insertBefore(second, assertion.nextSibling);
    }),
  unsigned: (c) =>
    mutate(c.response, (doc) => {
      const response = doc.documentElement!;
      removeSignature(response);
      for (const a of directAssertions(response)) removeSignature(a);
    }),
  'assertion-signature-stripped': (c) => resign(c, () => {}, { signAssertions: false, signResponse: true }),
  'response-signature-broken': (c) => {
    if (!c.base.responseSigned) return undefined;
    return mutate(c.response, (doc) => {
      const response = doc.documentElement!;
      response.setAttribute('IssueInstant', iso(c.now - 1000));
    });
  },
  'signature-other-key': (c) => resign(c, () => {}, { key: c.attacker.key, keyInfoCert: c.idp.cert }),
  'keyinfo-attacker-certificate': (c) => resign(c, () => {}, { key: c.attacker.key, keyInfoCert: c.attacker.cert }),
  'hmac-signature': (c) => resign(c, () => {}, { algorithm: 'hmac-sha1', key: c.idp.cert }),
  'sha1-signature': (c) => resign(c, () => {}, { algorithm: 'sha1' }),
  replay: (c) => c.response,
  unsolicited: (c) =>
    resign(c, (doc) => {
      doc.documentElement!.removeAttribute('InResponseTo');
      for (const d of descendants(doc.documentElement!, NS.assertion, 'SubjectConfirmationData')) d.removeAttribute('InResponseTo');
    }),
  'wrong-in-response-to': (c) =>
    resign(c, (doc) => {
      const forged = `_forged${randomBytes(8).toString('hex')}`;
      doc.documentElement!.setAttribute('InResponseTo', forged);
      for (const d of descendants(doc.documentElement!, NS.assertion, 'SubjectConfirmationData')) d.setAttribute('InResponseTo', forged);
    }),
  'wrong-audience': (c) =>
    resign(c, (doc) => {
      for (const a of descendants(doc.documentElement!, NS.assertion, 'Audience')) setText(a, 'https://attacker.example/sp');
    }),
  'wrong-recipient': (c) =>
    resign(c, (doc) => {
      for (const d of descendants(doc.documentElement!, NS.assertion, 'SubjectConfirmationData')) d.setAttribute('Recipient', 'https://attacker.example/acs');
    }),
  'wrong-destination': (c) => resign(c, (doc) => doc.documentElement!.setAttribute('Destination', 'https://attacker.example/acs')),
  'wrong-issuer': (c) =>
    resign(c, (doc) => {
      const response = doc.documentElement!;
      for (const issuer of [...childElements(response, NS.assertion, 'Issuer'), ...directAssertions(response).flatMap((a) => childElements(a, NS.assertion, 'Issuer'))]) {
        setText(issuer, 'https://attacker.example/idp');
      }
    }),
  expired: (c) =>
    resign(c, (doc) => {
      const response = doc.documentElement!;
      response.setAttribute('IssueInstant', iso(c.now - 2 * 3600_000));
      for (const a of directAssertions(response)) {
        a.setAttribute('IssueInstant', iso(c.now - 2 * 3600_000));
        for (const cond of childElements(a, NS.assertion, 'Conditions')) {
          cond.setAttribute('NotBefore', iso(c.now - 2 * 3600_000));
          cond.setAttribute('NotOnOrAfter', iso(c.now - 3600_000));
        }
        for (const d of descendants(a, NS.assertion, 'SubjectConfirmationData')) d.setAttribute('NotOnOrAfter', iso(c.now - 3600_000));
      }
    }),
  'not-yet-valid': (c) =>
    resign(c, (doc) => {
      for (const a of directAssertions(doc.documentElement!)) {
        for (const cond of childElements(a, NS.assertion, 'Conditions')) {
          cond.setAttribute('NotBefore', iso(c.now + 3600_000));
          cond.setAttribute('NotOnOrAfter', iso(c.now + 2 * 3600_000));
        }
        for (const d of descendants(a, NS.assertion, 'SubjectConfirmationData')) d.setAttribute('NotOnOrAfter', iso(c.now + 2 * 3600_000));
      }
    }),
  'status-not-success': (c) =>
    resign(c, (doc) => {
      const status = childElements(doc.documentElement!, NS.protocol, 'Status')[0];
      const code = status && childElements(status, NS.protocol, 'StatusCode')[0];
      if (!code) throw new Error('the Response has no Status/StatusCode');
      code.setAttribute('Value', 'urn:oasis:names:tc:SAML:2.0:status:Responder');
      while (code.firstChild) code.removeChild(code.firstChild);
      const nested = doc.createElementNS(NS.protocol, code.tagName);
      nested.setAttribute('Value', 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed');
      code.appendChild(nested);
    }),
  'dtd-billion-laughs': (c) => {
    const levels = ['<!ENTITY lol0 "lol">'];
    for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`);
    return withDoctype(c.response, levels.join(''), '&lol9;');
  },
  'dtd-external-entity': (c) => withDoctype(c.response, '<!ENTITY xxe SYSTEM "file:///etc/hostname">', '&xxe;'),
  'dtd-declared': (c) => withDoctype(c.response, '<!ENTITY harmless "x">', ''),
  oversized: (c) => {
    const target = c.oversizeBytes ?? 2 * 1024 * 1024;
    const padding = Math.max(0, target - Buffer.byteLength(c.response) - 7);
    return mutate(c.response, (doc) => {
      const response = doc.documentElement!;
      response.insertBefore(doc.createComment('A'.repeat(padding)), directAssertions(response)[0]!);
    });
  },
};

// ---------------------------------------------------------------------------------------------
// node-saml's verdict (the configuration the claims at the top of this file are about)

export interface NodeSamlSp {
  /** The IdP's certificate (PEM), pinned: the only key trusted. */
  idpCert: string;
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  /** The AuthnRequest ID the original answers (seeded in a fresh request-ID cache). */
  requestId?: string;
  /** The original, valid Response (submitted first for 'after-original' variants). */
  original: string;
  /** validateInResponseTo: 'always' (default, participants without allowIdpInitiated) or 'ifPresent'. */
  inResponseTo?: 'always' | 'ifPresent';
  /** Default 60 s. */
  acceptedClockSkewMs?: number;
}

export type NodeSamlOutcome = { accepted: true; profile: Profile } | { accepted: false; error: string };

/**
 * What node-saml 5.1 makes of a forged Response when configured as described at the top of this
 * file: a fresh SP (request-ID cache holding only `requestId`), the original first when the
 * variant is a replay.
 * @throws Error when the original itself is refused (the set-up, not the variant, is wrong).
 */
export async function nodeSamlVerdict(forgery: Pick<Forgery, 'xml' | 'submit'>, sp: NodeSamlSp): Promise<NodeSamlOutcome> {
  const requests = new Map<string, string>();
  if (sp.requestId) requests.set(sp.requestId, new Date().toISOString());
  const cacheProvider: CacheProvider = {
    saveAsync: async (key, value) => {
      requests.set(key, value);
      return { value, createdAt: Date.now() };
    },
    getAsync: async (key) => requests.get(key) ?? null,
    removeAsync: async (key) => {
      const value = key === null ? undefined : requests.get(key);
      if (key !== null) requests.delete(key);
      return value ?? null;
    },
  };
  const saml = new SAML({
    idpCert: sp.idpCert,
    idpIssuer: sp.idpEntityId,
    issuer: sp.spEntityId,
    callbackUrl: sp.acsUrl,
    audience: sp.spEntityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    validateInResponseTo: sp.inResponseTo === 'ifPresent' ? ValidateInResponseTo.ifPresent : ValidateInResponseTo.always,
    acceptedClockSkewMs: sp.acceptedClockSkewMs ?? 60_000,
    cacheProvider,
  });
  const submit = (xml: string) => saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') });
  if (forgery.submit === 'after-original') {
    const first = await submit(sp.original).catch((e: Error) => e);
    if (first instanceof Error) throw new Error(`the original Response is refused: ${first.message}`);
  }
  try {
    const { profile } = await submit(forgery.xml);
    if (!profile) return { accepted: false, error: 'no profile' };
    return { accepted: true, profile };
  } catch (error) {
    return { accepted: false, error: (error as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// A test IdP: a valid Response, signed

export interface ResponseOptions {
  /** IdP entity ID (Issuer). */
  issuer: string;
  /** SP entity ID (Audience). */
  audience: string;
  /** ACS URL (Destination and Recipient). */
  acsUrl: string;
  /** The AuthnRequest ID; omitted for an unsolicited Response. */
  inResponseTo?: string;
  nameId: string;
  /** Default persistent. */
  nameIdFormat?: string;
  /** Attribute name -> values (NameFormat basic). */
  attributes?: Record<string, string[]>;
  /** ms since the epoch. Default Date.now(). */
  now?: number;
  /** Assertion lifetime in seconds. Default 300. */
  lifetimeSeconds?: number;
  sessionIndex?: string;
}

/**
 * A SAML 2.0 Response with one bearer Assertion, shaped like SimpleSAMLphp's (SAML core §2, §3.3.3;
 * profiles §4.1.4.2), unsigned. Values are XML-escaped.
 */
export function buildResponse(o: ResponseOptions): string {
  const now = o.now ?? Date.now();
  const notOnOrAfter = iso(now + (o.lifetimeSeconds ?? 300) * 1000);
  const irt = o.inResponseTo === undefined ? '' : ` InResponseTo="${esc(o.inResponseTo)}"`;
  const attributes = Object.entries(o.attributes ?? {})
    .map(
      ([name, values]) =>
        `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${values
          .map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`,
    )
    .join('');
  return (
    `<samlp:Response xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="${newId()}" Version="2.0" IssueInstant="${iso(now)}" Destination="${esc(o.acsUrl)}"${irt}>` +
    `<saml:Issuer>${esc(o.issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"/></samlp:Status>` +
    `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="${newId()}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${esc(o.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID SPNameQualifier="${esc(o.audience)}" Format="${esc(o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent')}">${esc(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(o.acsUrl)}"${irt}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(now - 30_000)}" NotOnOrAfter="${notOnOrAfter}"><saml:AudienceRestriction><saml:Audience>${esc(o.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionNotOnOrAfter="${iso(now + 8 * 3600_000)}" SessionIndex="${esc(o.sessionIndex ?? newId())}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion></samlp:Response>`
  );
}

export interface SignOptions {
  key: string;
  /** Certificate put in KeyInfo (PEM). Default none. */
  keyInfoCert?: string;
  /** Default sha256. */
  algorithm?: SigningAlgorithm;
  /** Sign each Assertion (enveloped, after its Issuer). Default true. */
  signAssertions?: boolean;
  /** Sign the Response (enveloped, after its Issuer), after the Assertions. Default true. */
  signResponse?: boolean;
}

/** Signs a Response's Assertions and/or the Response itself (XML-DSig enveloped, exc-c14n), as an IdP does. */
export function signResponse(xml: string, o: SignOptions): string {
  let out = xml;
  const doc = parseStrict(out);
  if (o.signAssertions ?? true) {
    for (const assertion of directAssertions(doc.documentElement!)) out = signElement(out, assertion.getAttribute('ID') ?? '', o);
  }
  if (o.signResponse ?? true) out = signElement(out, doc.documentElement!.getAttribute('ID') ?? '', o);
  return out;
}

/** buildResponse then signResponse (both signatures, RSA-SHA256, KeyInfo with the certificate). */
export function buildSignedResponse(o: ResponseOptions & { idp: SigningKeyPair; algorithm?: SigningAlgorithm; signAssertions?: boolean; signResponse?: boolean }): string {
  return signResponse(buildResponse(o), {
    key: o.idp.key,
    keyInfoCert: o.idp.cert,
    ...(o.algorithm ? { algorithm: o.algorithm } : {}),
    ...(o.signAssertions !== undefined ? { signAssertions: o.signAssertions } : {}),
    ...(o.signResponse !== undefined ? { signResponse: o.signResponse } : {}),
  });
}

function signElement(xml: string, id: string, o: SignOptions): string {
  if (!/^[A-Za-z_][\w.-]*$/.test(id)) throw new Error(`cannot sign an element with ID ${JSON.stringify(id)}`);
  const algorithm = ALGORITHMS[o.algorithm ?? 'sha256'];
  const sig = new SignedXml({ privateKey: o.key, ...(o.keyInfoCert ? { publicCert: o.keyInfoCert } : {}), canonicalizationAlgorithm: EXC_C14N, signatureAlgorithm: algorithm.signature });
  if (o.algorithm === 'hmac-sha1') sig.enableHMAC();
  sig.addReference({ xpath: `//*[@ID='${id}']`, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: algorithm.digest });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `//*[@ID='${id}']/*[local-name()='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Analysis {
  responseSigned: boolean;
  assertionSigned: boolean;
  algorithm: SigningAlgorithm;
  mailDomain: string | undefined;
}

function analyse(xml: string): Analysis {
  const doc = parseStrict(xml);
  const response = doc.documentElement;
  if (!response || response.localName !== 'Response' || response.namespaceURI !== NS.protocol) throw new Error('not a SAML 2.0 Response');
  const assertions = directAssertions(response);
  if (assertions.length !== 1) {
    const encrypted = childElements(response, NS.assertion, 'EncryptedAssertion').length;
    throw new Error(encrypted ? 'the Response carries an EncryptedAssertion: forge from a Response with a plain Assertion (register the SP without encryptAssertion)' : `the Response has ${assertions.length} Assertions, not 1`);
  }
  const assertionSignature = directSignature(assertions[0]!);
  const responseSignature = directSignature(response);
  if (!assertionSignature) throw new Error('the Assertion is not signed');
  const method = descendants(assertionSignature, NS.dsig, 'SignatureMethod')[0]?.getAttribute('Algorithm');
  const algorithm = (Object.keys(ALGORITHMS) as SigningAlgorithm[]).find((k) => ALGORITHMS[k].signature === method);
  if (!algorithm) throw new Error(`unknown SignatureMethod ${method}`);
  const mail = emailValues(assertions[0]!)[0]?.textContent ?? nameIdOf(assertions[0]!)?.textContent ?? '';
  return { responseSigned: Boolean(responseSignature), assertionSigned: true, algorithm, mailDomain: /@([^@\s]+)$/.exec(mail)?.[1] };
}

/** Strips the signatures, applies `change`, signs again with the IdP key the way the original was signed (or as `override` says). */
function resign(c: Ctx, change: (doc: XDocument) => void, override: Partial<SignOptions> = {}): string {
  const unsigned = mutate(c.response, (doc) => {
    const response = doc.documentElement!;
    removeSignature(response);
    for (const a of directAssertions(response)) removeSignature(a);
    change(doc);
  });
  return signResponse(unsigned, {
    key: c.idp.key,
    keyInfoCert: c.idp.cert,
    algorithm: c.base.algorithm,
    signAssertions: true,
    signResponse: c.base.responseSigned,
    ...override,
  });
}

/** Parses, applies `change` to the DOM, serialises (no re-signing). */
function mutate(xml: string, change: (doc: XDocument) => void): string {
  const doc = parseStrict(xml);
  change(doc);
  const out = new xmldom.XMLSerializer().serializeToString(doc);
  return xml.startsWith('<?xml') && !out.startsWith('<?xml') ? `${/^<\?xml[^>]*\?>/.exec(xml)![0]}\n${out}` : out;
}

/** Inserts a DOCTYPE with `subset` after the XML declaration and `reference` into the first NameID's text. */
function withDoctype(xml: string, subset: string, reference: string): string {
  const root = /<([\w.-]+:)?Response\b/.exec(xml);
  if (!root) throw new Error('no Response element');
  const doctype = `<!DOCTYPE ${root[1] ?? ''}Response [${subset}]>`;
  const declaration = /^<\?xml[^>]*\?>\s*/.exec(xml)?.[0] ?? '';
  let body = xml.slice(declaration.length);
  if (reference) {
    const nameId = /(<([\w.-]+:)?NameID\b[^>]*>)/.exec(body);
    if (!nameId) throw new Error('no NameID');
    body = body.replace(nameId[1]!, `${nameId[1]}${reference}`);
  }
  return `${declaration}${doctype}\n${body}`;
}

/** Parses XML strictly: any parser error or warning throws (no DTD processing: xmldom has none). */
export function parseStrict(xml: string): XDocument {
  const fail = (level: string) => (message: string) => {
    throw new Error(`XML ${level}: ${message}`);
  };
  return new xmldom.DOMParser({ locator: {}, errorHandler: { warning: fail('warning'), error: fail('error'), fatalError: fail('fatal error') } }).parseFromString(xml, 'text/xml');
}

export function childElements(parent: XElement, ns: string, local: string): XElement[] {
  const out: XElement[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as XElement).localName === local && (n as XElement).namespaceURI === ns) out.push(n as XElement);
  }
  return out;
}

export function descendants(parent: XElement, ns: string, local: string): XElement[] {
  return Array.from(parent.getElementsByTagNameNS(ns, local));
}

export function directAssertions(response: XElement): XElement[] {
  return childElements(response, NS.assertion, 'Assertion');
}

export function directSignature(element: XElement): XElement | undefined {
  return childElements(element, NS.dsig, 'Signature')[0];
}

export function nameIdOf(assertion: XElement): XElement | undefined {
  const subject = childElements(assertion, NS.assertion, 'Subject')[0];
  return subject && childElements(subject, NS.assertion, 'NameID')[0];
}

/** The AttributeValue elements of the email-like attributes of an Assertion (its own, not nested ones). */
export function emailValues(assertion: XElement): XElement[] {
  return childElements(assertion, NS.assertion, 'AttributeStatement')
    .flatMap((s) => childElements(s, NS.assertion, 'Attribute'))
    .filter((a) => EMAIL_ATTRIBUTES.has(a.getAttribute('Name') ?? ''))
    .flatMap((a) => childElements(a, NS.assertion, 'AttributeValue'));
}

function removeSignature(element: XElement): void {
  const signature = directSignature(element);
  if (signature) element.removeChild(signature);
}

/** The attacker's values in an Assertion: NameID and email-like attributes become `victim`. */
function evilize(assertion: XElement, victim: string): void {
  const nameId = nameIdOf(assertion);
  if (!nameId) throw new Error('the Assertion has no Subject/NameID');
  setText(nameId, victim);
  for (const value of emailValues(assertion)) setText(value, victim);
}

function setText(element: XElement, text: string): void {
  while (element.firstChild) element.removeChild(element.firstChild);
  element.appendChild(element.ownerDocument!.createTextNode(text));
}

const newId = () => `_${randomBytes(20).toString('hex')}`;
const evilId = () => `_evil${randomBytes(12).toString('hex')}`;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
