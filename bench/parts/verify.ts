/**
 * Token verification in a service: `concord/verify` (createVerifier, keys from a JWKS served
 * in memory through its `fetch` option, so no network is timed) against jose.jwtVerify with the
 * public key imported once and the same checks (issuer, audience, typ at+jwt, ES256).
 * One Concord-shaped ES256 access token; alternating batches in this process.
 *
 *   node bench/parts/verify.ts
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';
import { createVerifier, type FetchLike } from '../../packages/verify/src/index.ts';
import { alternate } from '../lib/batches.ts';
import { runAlone, type Section } from '../lib/report.ts';

const ISSUER = 'https://login.example.org';
const AUDIENCE = 'https://orders.example.org';

export async function verifyPart(options: { seconds?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 8;
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'bench-es256';
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  // What Concord puts in an access token for a service (RFC 9068 plus the client's selected claims).
  const token = await new SignJWT({
    client_id: 'orders-web',
    scope: 'openid email profile orders:read',
    idp: 'acme',
    groups: ['engineering', 'all-staff'],
    roles: ['Concord.User'],
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
    .setIssuer(ISSUER)
    .setSubject('acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001')
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .setJti(randomUUID())
    .sign(privateKey);

  const documents: Record<string, unknown> = {
    [`${ISSUER}/.well-known/openid-configuration`]: { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` },
    [`${ISSUER}/jwks`]: { keys: [publicJwk] },
  };
  let fetches = 0;
  const fetchFromMemory: FetchLike = async (url) => {
    fetches++;
    const body = documents[url];
    return new Response(JSON.stringify(body ?? {}), { status: body ? 200 : 404, headers: { 'content-type': 'application/json' } });
  };
  const verify = createVerifier({ issuer: ISSUER, audience: AUDIENCE, fetch: fetchFromMemory });
  await verify.warmUp();

  const imported = await importJWK(publicJwk, 'ES256');
  const joseOptions = { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], typ: 'at+jwt' };
  // Both accept the token before anything is timed.
  await verify(token);
  await jwtVerify(token, imported, joseOptions);

  const [concord, jose] = await alternate(
    [
      { name: 'concord/verify', op: () => verify(token) },
      { name: 'jose.jwtVerify', op: () => jwtVerify(token, imported, joseOptions) },
    ],
    { batch: 500, seconds, warmupBatches: 4 },
  );
  const ratio = concord!.rate / jose!.rate;
  return {
    title: 'Access-token verification in a service',
    method:
      `One ES256 Concord-shaped access token verified over and over in this process: \`concord/verify\` (createVerifier; discovery and JWKS answered from memory through its \`fetch\` option, fetched ${fetches} times in all) ` +
      `against \`jose.jwtVerify\` with the key imported once and the same checks. Batches of 500, alternating, for ${seconds} s; latency per verification.`,
    rows: [
      { name: 'concord/verify (createVerifier)', rate: concord!.rate, unit: 'verifications/s', p50: concord!.p50, p99: concord!.p99, ratio: `${ratio.toFixed(2)} of jose`, note: `${concord!.ops.toLocaleString('en-US')} ops; goal within 10%: ${ratio >= 0.9 ? 'met' : 'NOT met'}` },
      { name: 'jose.jwtVerify, imported key', rate: jose!.rate, unit: 'verifications/s', p50: jose!.p50, p99: jose!.p99, ratio: '1.00', note: `${jose!.ops.toLocaleString('en-US')} ops` },
    ],
    figures: { verify_concord_rate: concord!.rate, verify_jose_rate: jose!.rate },
  };
}

if (import.meta.main) await runAlone(() => verifyPart());
