import { createHash, sign, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Certificate,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

/** sha256WithRSAEncryption (RFC 4055 5). */
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
/** id-at-commonName (RFC 5280 A.1). */
const COMMON_NAME = '2.5.4.3';

export interface SelfSignedOptions {
  /** The RSA key pair the certificate is for, and signs it. */
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Subject and issuer CN. */
  commonName: string;
  /** Bytes of the serial number's seed: the same seed gives the same serial. */
  serialSeed: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * A self-signed X.509 v3 certificate (RFC 5280 4.1) for an RSA key, as DER. SAML metadata carries
 * keys as certificates (SAML metadata 2.4.1.1, XML-DSig 4.4.4 X509Data); the certificate is only
 * a wrapper for the public key there (no CA, no chain), so it is built from its ASN.1 schema and
 * signed with RSA PKCS#1 v1.5 (deterministic): the same key and options give the same bytes on every
 * instance, so each serves the same metadata without storing the certificate.
 */
export function selfSignedCertificate(options: SelfSignedOptions): Buffer {
  const algorithm = () => new AlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null });
  const name = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: COMMON_NAME, value: new AttributeValue({ utf8String: options.commonName }) })])]);
  // A positive serial of 16 bytes (RFC 5280 4.1.2.2: at most 20 octets, positive), encoded minimally
  // (X.690 8.3.2: a leading 0x00 only before a byte >= 0x80). A non-minimal INTEGER made about one
  // certificate in 256 unreadable to OpenSSL; only those serials change (1 in place of the leading 0).
  const serial = createHash('sha256').update(options.serialSeed).digest().subarray(0, 16);
  serial[0] = serial[0]! & 0x7f;
  if (serial[0] === 0 && serial[1]! < 0x80) serial[0] = 0x01;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(serial),
    signature: algorithm(),
    issuer: name,
    validity: new Validity({ notBefore: options.notBefore, notAfter: options.notAfter }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(options.publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
  });
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbs)), options.privateKey);
  const certificate = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm(), signatureValue: toArrayBuffer(signature) });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** DER as PEM (RFC 7468). */
export function certificatePem(der: Buffer): string {
  const body = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}
