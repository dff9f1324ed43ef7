import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTHeaderParameters } from 'jose';

/** A client's DPoP key pair (extractable, so a test can also put it in openid-client's handle). */
export interface DPoPKeys {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export const dpopKeys = (alg = 'ES256') => generateKeyPair(alg, { extractable: true }) as Promise<DPoPKeys>;

/**
 * A DPoP proof as RFC 9449 §4.2 has it, for `htm` and `htu` and (`ath`) the access token.
 * `claims` overrides a claim, or removes it when set to undefined; `header` overrides header
 * parameters; `signWith` signs with another key than the one in the `jwk` header.
 */
export async function dpopProof(
  keys: DPoPKeys,
  htm: string,
  htu: string,
  accessToken: string | undefined,
  options: { claims?: Record<string, unknown>; header?: Partial<JWTHeaderParameters>; signWith?: DPoPKeys; alg?: string } = {},
): Promise<string> {
  const payload: Record<string, unknown> = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
  if (accessToken !== undefined) payload.ath = createHash('sha256').update(accessToken).digest('base64url');
  for (const [name, value] of Object.entries(options.claims ?? {})) {
    if (value === undefined) delete payload[name];
    else payload[name] = value;
  }
  const header = { alg: options.alg ?? 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey), ...options.header };
  return new SignJWT(payload).setProtectedHeader(header).sign((options.signWith ?? keys).privateKey);
}
