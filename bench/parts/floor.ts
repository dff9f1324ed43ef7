/**
 * The cryptographic floor of a brokered login: the operations a login cannot do without, timed
 * alone in this process (no HTTP, no store), so Concord's CPU per login can be put next to it.
 *
 * One login needs (what bench/lib/login-driver.ts's login makes Concord do):
 *   - verify the upstream ID token: RS256 (the partner IdP's default, demo/partner-idp.ts), 2048-bit key;
 *   - sign an ID token: RS256 (what a client naming no id_token_signed_response_alg gets, OIDC
 *     Registration 2; the bench's client names none), and an access token: ES256
 *     (keys.accessTokenAlgorithm's default);
 *   - seal the pending login and the session's upstream state (AES-256-GCM, src/secrets), and open
 *     the pending login at the resume;
 *   - hashes: the PKCE S256 check (SHA-256), the keyed store ids of the code and the refresh token,
 *     written and read (HMAC-SHA256, src/provider/hashed-ids.ts), and the cookie signatures
 *     oidc-provider sets and checks (interaction, resume and session cookies: HMAC-SHA256).
 *
 * Everything else a login costs (HTTP parsing, routing, oidc-provider's request handling, JSON,
 * the store client, logging, metrics) is overhead on top of this floor.
 *
 *   node bench/parts/floor.ts
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';
import { createSecretBox } from '../../src/secrets/index.ts';
import { fmtMs, runAlone, type Section } from '../lib/report.ts';

/** The operations of one login, counted as listed above. */
export const FLOOR_OPERATIONS = { rs256Verify: 1, rs256Sign: 1, es256Sign: 1, seal: 2, open: 1, sha256: 1, hmac: 10 } as const;

/** Builds one login's cryptographic work, with keys imported once (as a server holds them). */
export async function floorOfOneLogin(): Promise<() => Promise<void>> {
  const upstream = await generateKeyPair('RS256', { extractable: true });
  // As a relying party holds a partner's key: imported from its JWK Set once.
  const upstreamPublic = await importJWK(await exportJWK(upstream.publicKey), 'RS256');
  const signing = await generateKeyPair('ES256');
  const idTokenSigning = await generateKeyPair('RS256');
  const now = Math.floor(Date.now() / 1000);
  const upstreamIdToken = await new SignJWT({
    email: 'user00001@acme.example',
    name: 'User 00001',
    given_name: 'User',
    family_name: '00001',
    upn: 'user00001@acme.example',
    groups: ['engineering', 'all-staff'],
    roles: ['Concord.User'],
    nonce: randomBytes(16).toString('base64url'),
    sid: randomBytes(16).toString('base64url'),
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'partner' })
    .setIssuer('http://127.0.0.1:1')
    .setAudience('concord')
    .setSubject('5f0c1a52-8d1e-4b7a-9f0e-000000000001')
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(upstream.privateKey);
  const box = createSecretBox(Buffer.alloc(32, 5).toString('base64'));
  const login = JSON.stringify({
    accountId: 'acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001',
    participantId: 'acme',
    claims: { email: 'user00001@acme.example', name: 'User 00001', preferred_username: 'user00001', groups: ['engineering', 'all-staff'], roles: ['concord.user'], tenant: 'acme' },
    upstream: { logout: { protocol: 'oidc', idTokenHint: upstreamIdToken } },
    confirmedAt: now,
  });
  const hmacKey = randomBytes(32);
  const verifier = randomBytes(32).toString('base64url');
  const claims = { sub: 'acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001', email: 'user00001@acme.example', idp: 'acme', groups: ['engineering', 'all-staff'] };
  return async () => {
    await jwtVerify(upstreamIdToken, upstreamPublic, { issuer: 'http://127.0.0.1:1', audience: 'concord' });
    for (let i = 0; i < FLOOR_OPERATIONS.rs256Sign; i++) {
      await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k0', typ: 'JWT' }).setIssuer('http://127.0.0.1:2').setAudience('bench-rp').setIssuedAt(now).setExpirationTime(now + 300).sign(idTokenSigning.privateKey);
    }
    for (let i = 0; i < FLOOR_OPERATIONS.es256Sign; i++) {
      await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' }).setIssuer('http://127.0.0.1:2').setAudience('bench-rp').setIssuedAt(now).setExpirationTime(now + 300).sign(signing.privateKey);
    }
    const sealed = box.seal(login, 'session-pending:uid');
    box.open(sealed, 'session-pending:uid');
    box.seal(login, 'session:uid:upstream');
    createHash('sha256').update(verifier).digest('base64url');
    for (let i = 0; i < FLOOR_OPERATIONS.hmac; i++) createHmac('sha256', hmacKey).update(`${verifier}${i}`).digest('base64url');
  };
}

/**
 * CPU milliseconds one login's cryptography takes alone: this process's CPU time (user + system,
 * every thread: WebCrypto runs some operations off the main thread) over the logins' worth of
 * operations, after a warm-up, so it compares with the servers' CPU time per login. Also the p50 of
 * one login's worth in wall time.
 */
export async function measureFloor(seconds = 2): Promise<{ msPerLogin: number; p50: number; ops: number }> {
  const op = await floorOfOneLogin();
  for (let i = 0; i < 50; i++) await op();
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline || times.length < 50) {
    const t0 = performance.now();
    await op();
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  times.sort((a, b) => a - b);
  return { msPerLogin: (cpu.user + cpu.system) / 1000 / times.length, p50: times[Math.floor(times.length / 2)]!, ops: times.length };
}

export async function floorPart(options: { seconds?: number } = {}): Promise<Section> {
  const floor = await measureFloor(options.seconds ?? 3);
  return {
    title: 'The cryptographic floor of a login',
    method:
      `The cryptography one brokered login needs, timed alone in this process: ${FLOOR_OPERATIONS.rs256Verify} RS256 verification (the upstream ID token, 2048-bit key), ` +
      `${FLOOR_OPERATIONS.rs256Sign} RS256 signature (ID token: the default for a client naming no algorithm), ${FLOOR_OPERATIONS.es256Sign} ES256 signature (access token), ${FLOOR_OPERATIONS.seal} AES-256-GCM seals and ${FLOOR_OPERATIONS.open} open (pending login, session upstream state), ` +
      `${FLOOR_OPERATIONS.sha256} SHA-256 (PKCE) and ${FLOOR_OPERATIONS.hmac} HMAC-SHA256 (keyed store ids of code and refresh token, cookie signatures). Keys imported once. CPU time of this process, as the servers' CPU per login is theirs.`,
    rows: [{ name: 'cryptographic floor of one login', rate: 1000 / floor.msPerLogin, unit: 'logins/s per core', p50: floor.p50, note: `${fmtMs(floor.msPerLogin)} ms of CPU per login (this process's CPU time); ${floor.ops} logins' worth measured` }],
    figures: { floor_ms_per_login: floor.msPerLogin },
  };
}

if (import.meta.main) await runAlone(() => floorPart());
