import { createRequire } from 'node:module';
import { promisify } from 'node:util';

/*
 * The XML parsing the SAML connector does before and beside node-saml: strict (any parser warning
 * or error refuses the document), never with a DTD (refused before parsing: xmldom has no DTD
 * support, but silently drops an internal subset that declares without using), and never the source
 * of identity (that is read from node-saml's verified, canonicalised content only).
 *
 * @xmldom/xmldom and xml-encryption are node-saml's own parser and decrypter (the same versions),
 * loaded untyped: xmldom's declarations pull the DOM lib into the whole program, which changes
 * fetch's types elsewhere. The few DOM members used are declared here.
 */

const require = createRequire(import.meta.url);
const xmldom = require('@xmldom/xmldom') as {
  DOMParser: new (options: { locator: object; errorHandler: Record<'warning' | 'error' | 'fatalError', (message: string) => void> }) => { parseFromString(xml: string, mime: string): XDocument };
};
const xmlenc = require('xml-encryption') as {
  decrypt(xml: string, options: { key: string; disallowDecryptionWithInsecureAlgorithm: boolean; warnInsecureAlgorithm: boolean }, callback: (err: Error | null, result?: string) => void): void;
};
const decryptAsync = promisify(xmlenc.decrypt.bind(xmlenc)) as (xml: string, options: { key: string; disallowDecryptionWithInsecureAlgorithm: boolean; warnInsecureAlgorithm: boolean }) => Promise<string>;

/** The DOM members used here (xmldom 0.8). */
export interface XNode {
  readonly nodeType: number;
  readonly firstChild: XNode | null;
  readonly nextSibling: XNode | null;
  readonly textContent: string | null;
}
export interface XElement extends XNode {
  readonly localName: string;
  readonly namespaceURI: string | null;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  getElementsByTagNameNS(ns: string, local: string): ArrayLike<XElement>;
  toString(): string;
}
export interface XDocument extends XNode {
  readonly documentElement: XElement | null;
}

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  xmlenc: 'http://www.w3.org/2001/04/xmlenc#',
} as const;

/** Why a document could not be read: a DTD (refused on principle) or anything else. */
export class XmlRefused extends Error {
  readonly reason: 'doctype' | 'malformed';
  constructor(reason: 'doctype' | 'malformed', message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A DOCTYPE (or an entity declaration) anywhere in the text: refused before any parser sees it. */
export function hasDoctype(xml: string): boolean {
  return /<!DOCTYPE|<!ENTITY/i.test(xml);
}

/**
 * Parses XML strictly: no DOCTYPE, and any parser warning or error refuses it.
 * @throws XmlRefused `doctype` or `malformed`.
 */
export function parseXml(xml: string): XDocument {
  if (hasDoctype(xml)) throw new XmlRefused('doctype', 'the XML carries a DOCTYPE (DTDs and entities are refused)');
  const fail = (level: string) => (message: string) => {
    throw new XmlRefused('malformed', `XML ${level}: ${message.slice(0, 200)}`);
  };
  let doc: XDocument;
  try {
    doc = new xmldom.DOMParser({ locator: {}, errorHandler: { warning: fail('warning'), error: fail('error'), fatalError: fail('fatal error') } }).parseFromString(xml, 'text/xml');
  } catch (error) {
    if (error instanceof XmlRefused) throw error;
    throw new XmlRefused('malformed', `XML: ${(error as Error).message.slice(0, 200)}`);
  }
  if (!doc.documentElement) throw new XmlRefused('malformed', 'the XML has no root element');
  return doc;
}

export function childElements(parent: XElement, ns: string, local: string): XElement[] {
  const out: XElement[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as XElement).localName === local && (n as XElement).namespaceURI === ns) out.push(n as XElement);
  }
  return out;
}

export function firstChild(parent: XElement, ns: string, local: string): XElement | undefined {
  return childElements(parent, ns, local)[0];
}

export function descendants(parent: XElement, ns: string, local: string): XElement[] {
  return Array.from(parent.getElementsByTagNameNS(ns, local));
}

/** The element's text, whitespace trimmed (metadata values, certificates). */
export function textOf(element: XElement | undefined): string | undefined {
  const text = element?.textContent?.trim();
  return text ? text : undefined;
}

/**
 * Decrypts an EncryptedAssertion (XML Encryption 1.1) with one private key, refusing the insecure
 * algorithms (RSA PKCS#1 v1.5 key transport: a padding oracle; 3DES).
 * @throws Error when the key is not the one it was encrypted to, or an algorithm is refused.
 */
export function decryptXml(encrypted: string, privateKeyPem: string): Promise<string> {
  return decryptAsync(encrypted, { key: privateKeyPem, disallowDecryptionWithInsecureAlgorithm: true, warnInsecureAlgorithm: false });
}
