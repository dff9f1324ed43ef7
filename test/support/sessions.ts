import assert from 'node:assert/strict';
import { importJWK, SignJWT, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { DEMO_USERS, type PartnerIdp, type PartnerUser } from '../../demo/partner-idp.ts';
import { authorizationRequest, exchange, RP, type Federation } from './federation.ts';
import { Browser } from './http-client.ts';

/** Helpers of the session tests (not a test file itself). */

/** A second service of the federation, beside RP. */
export const RP2 = {
  client_id: 'rp2',
  client_name: 'Second Service',
  client_secret: 'rp2-secret-0123456789abcdef',
  redirect_uris: ['http://127.0.0.1:9998/cb'],
  post_logout_redirect_uris: ['http://127.0.0.1:9998/bye'],
  grant_types: ['authorization_code', 'refresh_token'],
  skip_consent: true,
  access_token_claims: ['groups'],
};

/** Fresh copies of the demo users of a domain: a test may change or remove them at its partner IdP. */
export const usersOf = (domain: string): PartnerUser[] => structuredClone(DEMO_USERS[domain]!);

/** openid-client's view of Concord for RP2. */
export function rp2Of(fed: Federation): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(fed.concord.issuer), RP2.client_id, RP2.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

/**
 * Signs in to RP2 in a browser that already has a Concord session (single sign-on: no upstream
 * visit), and exchanges the code: RP2's tokens.
 */
export async function ssoToRp2(rp2: oidc.Configuration, browser: Browser) {
  const auth = await authorizationRequest(rp2, { redirect_uri: RP2.redirect_uris[0]!, scope: 'openid email profile groups' });
  const res = await browser.get(auth.url, { stopAt: (u) => u.href.startsWith(RP2.redirect_uris[0]!) });
  assert.ok(res.stoppedAt?.searchParams.has('code'), `no single sign-on to RP2: ${res.status} ${res.url.href}`);
  return exchange(rp2, res.stoppedAt!, auth);
}

/** The value of one series of a Concord metric (0 when absent). */
export async function metricValue(fed: Federation, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${fed.concord.adminUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf('}'));
    if (wanted.every((pair) => inner.split(',').includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

/** Polls until `check` holds (another server's work); fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, `${what}: not reached in time`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A logout token as the partner IdP would sign it (OIDC Back-Channel Logout 1.0 2.4), with `claims` and `header` changed as a test needs. */
export async function partnerLogoutToken(idp: PartnerIdp, claims: JWTPayload & Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = idp.signingJwk;
  const key = await importJWK(jwk, String(jwk.alg));
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: idp.issuer,
    aud: 'concord',
    iat: now,
    exp: now + 120,
    jti: crypto.randomUUID(),
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    ...claims,
  })
    .setProtectedHeader({ alg: String(jwk.alg), kid: String(jwk.kid), typ: 'logout+jwt', ...header })
    .sign(key);
}

/** POSTs a logout token to Concord's back-channel logout endpoint for a participant. */
export function postLogoutToken(fed: Federation, participantId: string, logoutToken: string): Promise<Response> {
  return fetch(`${fed.concord.issuer}/broker/${participantId}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: logoutToken }),
  });
}

/** The upstream ID token a session keeps as its logout hint (an OIDC participant's). */
export async function upstreamIdTokenOf(fed: Federation, sessionId: string): Promise<string | undefined> {
  const logout = (await fed.concord.concord.sessions.upstream(sessionId)).logout;
  return logout?.protocol === 'oidc' ? logout.idTokenHint : undefined;
}

/** The Concord session (record) a service's tokens belong to, by the service's sid in it. */
export async function sessionOf(fed: Federation, tokens: { claims(): JWTPayload | undefined }, clientId = RP.client_id) {
  const claims = tokens.claims()!;
  const sessions = await fed.concord.concord.sessions.ofAccount(String(claims.sub));
  const session = sessions.find((s) => s.clients.some((c) => c.clientId === clientId && c.sid === claims.sid));
  assert.ok(session, `no session holds ${clientId}'s sid ${String(claims.sid)}`);
  return session;
}
