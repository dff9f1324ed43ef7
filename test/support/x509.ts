/**
 * Throwaway X.509 certificates for SAML tests: an RSA key pair from node:crypto and a self-signed
 * certificate over it from Debian's `openssl req -x509` (node:crypto reads certificates but cannot
 * issue them, and openssl is on every machine that runs these tests, so no npm X.509 library).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestKeyPair {
  /** PKCS#8 PEM private key. */
  key: string;
  /** PEM certificate (`-----BEGIN CERTIFICATE-----`). */
  cert: string;
  /** The certificate's DER, base64 without PEM armour or line breaks (what `<ds:X509Certificate>` carries). */
  certBase64: string;
}

export interface TestCertificateOptions {
  /** Subject and issuer CN. */
  commonName: string;
  /** Validity from now, in days. Default 2. */
  days?: number;
  /** RSA modulus length in bits. Default 2048. */
  modulusLength?: number;
}

/**
 * A fresh RSA key and a self-signed SHA-256 certificate for it.
 * @throws Error when `openssl` is missing or fails (its stderr in the message).
 */
export async function createTestCertificate(options: TestCertificateOptions): Promise<TestKeyPair> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: options.modulusLength ?? 2048 });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'concord-x509-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    await fs.writeFile(keyFile, key, { mode: 0o600 });
    const subject = `/CN=${options.commonName.replace(/[/\\]/g, '_')}`;
    const { stdout } = await run('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', subject, '-days', String(options.days ?? 2), '-sha256']).catch(
      (error: Error & { stderr?: string }) => {
        throw new Error(`openssl req -x509 failed: ${error.stderr ?? error.message}`);
      },
    );
    const cert = new X509Certificate(stdout).toString();
    return { key, cert, certBase64: pemBody(cert) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The base64 body of a PEM block, without armour or whitespace. */
export function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
}

/** A base64 DER certificate (as in metadata or KeyInfo) as PEM. */
export function certificatePem(base64: string): string {
  const body = base64.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
}
