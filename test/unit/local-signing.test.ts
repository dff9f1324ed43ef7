import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { compactVerify, exportJWK, generateKeyPair } from 'jose';
import { derToJose, LocalSigningKey } from '../../src/provider/local-signing.ts';

const b64url = (data: Uint8Array | string) => Buffer.from(data).toString('base64url');

describe('LocalSigningKey', () => {
  for (const alg of ['ES256', 'EdDSA'] as const) {
    it(`signs ${alg} JWS that jose verifies with the public key it publishes`, async () => {
      const { privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'Ed25519' : alg, { extractable: true });
      const key = new LocalSigningKey({ ...(await exportJWK(privateKey)), kid: 'k1', alg });
      for (let i = 0; i < 20; i++) {
        const input = `${b64url(JSON.stringify({ alg, kid: 'k1' }))}.${b64url(JSON.stringify({ n: i, r: randomBytes(8).toString('hex') }))}`;
        const signature = key.sign(new TextEncoder().encode(input));
        assert.equal(signature.length, 64);
        const { payload } = await compactVerify(`${input}.${b64url(signature)}`, key.keyObject());
        assert.equal(JSON.parse(new TextDecoder().decode(payload)).n, i);
      }
    });
  }

  it('turns DER ECDSA signatures into R || S as node:crypto\'s ieee-p1363 encoding would (short R and S, high bits)', () => {
    for (const [curve, size, digest] of [['P-256', 32, 'sha256'], ['P-384', 48, 'sha384']] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      // Until both a short integer (a leading zero dropped: about 1 in 128 signatures) and a padded
      // one (a zero before a high bit: about 3 in 4) have come by, at least 50 signatures.
      const seen = { short: false, padded: false };
      for (let i = 0; i < 50 || (curve === 'P-256' && !(seen.short && seen.padded) && i < 20_000); i++) {
        const data = randomBytes(32);
        const der = sign(digest, data, privateKey);
        const lengths = [der[3]!, der[5 + der[3]!]!];
        if (lengths.some((l) => l < size)) seen.short = true;
        if (lengths.some((l) => l > size)) seen.padded = true;
        const raw = derToJose(der, size);
        assert.equal(raw.length, 2 * size);
        assert.ok(verify(digest, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw), `${curve} signature ${i}`);
      }
      if (curve === 'P-256') assert.deepEqual(seen, { short: true, padded: true });
    }
    assert.throws(() => derToJose(Buffer.from('3006020101020102', 'hex').subarray(0, 7), 32), /not a DER ECDSA signature/);
    assert.throws(() => derToJose(Buffer.from('300602010102010200', 'hex'), 32), /not a DER ECDSA signature/);
    assert.deepEqual([...derToJose(Buffer.from('3006020101020102', 'hex'), 2)], [0, 1, 0, 2]);
  });
});
