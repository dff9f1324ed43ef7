/**
 * What a client's choice of `id_token_signed_response_alg` costs Concord: signing one ID token with
 * each algorithm Concord can offer (RS256, PS256, ES256, EdDSA), keys made by Concord's own key ring
 * (RSA 2048-bit), the claims of a brokered login. Baseline in the same run: the same ID token
 * encoded without a signature (header and payload, JSON and base64url: the work that does not depend
 * on the algorithm). Alternating batches in this process; small and fast (about 10 s).
 *
 *   node bench/parts/id-tokens.ts
 */
import { randomBytes } from 'node:crypto';
import { base64url, importJWK, SignJWT, type CryptoKey } from 'jose';
import { KeyManager, SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../src/keys/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { MemoryStore } from '../../src/store/index.ts';
import { alternate } from '../lib/batches.ts';
import { runAlone, type Row, type Section } from '../lib/report.ts';

/** The claims of an ID token after a brokered login (OIDC Core 2 plus Concord's mapped claims). */
const ID_TOKEN_CLAIMS = {
  iss: 'https://concord.example',
  sub: 'acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001',
  aud: 'rp',
  nonce: 'n-0S6_WzA2Mj',
  auth_time: 1_800_000_000,
  at_hash: 'HK6E_P6Dh8Y93mRNtsDB1Q',
  sid: 'Lk3J8hQ2Ww9c6lS-1aZr0',
  acr: 'urn:concord:acr:upstream',
  amr: ['pwd', 'mfa'],
  idp: 'acme',
  email: 'alice@acme.example',
  email_verified: true,
  name: 'Alice Anders',
  groups: ['engineering', 'all-staff'],
};

export async function idTokensPart(options: { seconds?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 8;
  const ring = new KeyManager({ store: new MemoryStore(), secrets: createSecretBox(randomBytes(32).toString('base64')), algorithms: SIGNING_ALGORITHMS, activationDelay: 0, maxTokenTtl: 300, sharedSecrets: false });
  await ring.init();
  const keys = new Map<SigningAlgorithm, { key: CryptoKey | Uint8Array; kid: string }>();
  for (const alg of SIGNING_ALGORITHMS) {
    const { key_ops: _ops, use: _use, ...jwk } = ring.signingJwk(alg)!;
    keys.set(alg, { key: await importJWK(jwk, alg), kid: jwk.kid! });
  }
  const now = Math.floor(Date.now() / 1000);
  const claims = { ...ID_TOKEN_CLAIMS, iat: now, exp: now + 300 };
  const sign = (alg: SigningAlgorithm) => {
    const { key, kid } = keys.get(alg)!;
    return () => new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
  };
  const unsigned = () => `${base64url.encode(JSON.stringify({ alg: 'RS256', kid: keys.get('RS256')!.kid, typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims))}.`;

  const results = await alternate(
    [{ name: 'unsigned', op: unsigned }, ...SIGNING_ALGORITHMS.map((alg) => ({ name: alg, op: sign(alg) }))],
    { batch: 100, seconds, warmupBatches: 4 },
  );
  const byName = new Map(results.map((r) => [r.name, r]));
  const rs256 = byName.get('RS256')!;
  const baseline = byName.get('unsigned')!;
  const figures: Record<string, number> = { unsigned_rate: baseline.rate };
  const rows: Row[] = SIGNING_ALGORITHMS.map((alg) => {
    const r = byName.get(alg)!;
    figures[`${alg}_rate`] = r.rate;
    const signingMs = 1000 / r.rate - 1000 / baseline.rate;
    return {
      name: `ID token signed with ${alg}`,
      rate: r.rate,
      unit: 'tokens/s',
      p50: r.p50,
      p99: r.p99,
      ratio: `${(r.rate / rs256.rate).toFixed(2)} of RS256`,
      note: `${signingMs.toFixed(3)} ms signing per token over the unsigned baseline; ${r.ops.toLocaleString('en-US')} ops`,
    };
  });
  rows.push({ name: 'ID token encoded, unsigned (baseline)', rate: baseline.rate, unit: 'tokens/s', p50: baseline.p50, p99: baseline.p99, ratio: '', note: `${baseline.ops.toLocaleString('en-US')} ops` });
  return {
    title: 'ID token signing per algorithm',
    method:
      `One key per algorithm from Concord's key ring (RSA 2048-bit), jose \`SignJWT\` of the ${Object.keys(claims).length} claims of an ID token after a brokered login, ` +
      `as oidc-provider signs it; baseline: the same header and payload encoded without a signature. Batches of 100, alternating, for ${seconds} s, one process. ` +
      'RS256 is what a client naming no algorithm gets; a login signs one ID token (and one access token in keys.accessTokenAlgorithm), so the difference per login is the "ms signing" figure.',
    rows,
    figures,
  };
}

if (import.meta.main) await runAlone(() => idTokensPart());
