/**
 * A session follows the partner's truth (issue 13): what a login keeps belongs to its session (two
 * devices of one user each keep theirs), a refresh asks the partner's IdP again by the participant's
 * session policy, and the partner's back-channel logout ends the right sessions and reaches their
 * services. Real partner IdPs (oidc-provider, demo/partner-idp.ts), real HTTP listeners for the
 * services' back-channel logout endpoints, which verify what they get with jose against Concord's JWKS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.ts';
import { freePort } from '../support/ports.ts';
import { eventually, metricValue, partnerLogoutToken, postLogoutToken, RP2, rp2Of, sessionOf, ssoToRp2, upstreamIdTokenOf, usersOf } from '../support/sessions.ts';
import type { PartnerUser } from '../../demo/partner-idp.ts';
import { indexingAdapter } from '../../src/sessions/index.ts';
import { withRequestReads, type AdapterPayload } from '../../src/store/index.ts';

const ALICE = 'alice@acme.example';
const ADMIN_TOKEN = 'test-admin-token-0123456789';
const BIN = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'concord.js');
const invalidGrant = (err: { error?: string }) => err.error === 'invalid_grant';
const userinfo = async (fed: Federation, accessToken: string) => {
  const res = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: res.status, body: res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined };
};

/** A refresh at Concord's token endpoint as RP, read as it came (status, JSON, Retry-After). */
async function rawRefresh(fed: Federation, refreshToken: string) {
  const res = await fetch(`${fed.concord.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: res.status, body: (await res.json()) as { error?: string; access_token?: string }, retryAfter: res.headers.get('retry-after') };
}

interface Setup {
  fed: Federation;
  acmeUsers: PartnerUser[];
  rpLogouts: LogoutReceiver;
  rp2Logouts: LogoutReceiver;
  rp2: oidc.Configuration;
  close(): Promise<void>;
}

/** A federation whose partners issue refresh tokens and send Concord logout tokens; RP and RP2 have back-channel logout endpoints. */
async function setup(options: { acme?: Record<string, unknown>; globex?: Record<string, unknown>; settings?: Record<string, unknown>; now?: () => number } = {}): Promise<Setup> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const rpLogouts = await startLogoutReceiver({ issuer, clientId: RP.client_id });
  const rp2Logouts = await startLogoutReceiver({ issuer, clientId: RP2.client_id });
  const acmeUsers = usersOf('acme.example');
  const fed = await startFederation({
    port,
    acmeUsers,
    partners: { partner: { refreshTokens: true }, backchannelLogout: true },
    clients: [
      { ...RP, backchannel_logout_uri: rpLogouts.uri, backchannel_logout_session_required: true },
      { ...RP2, backchannel_logout_uri: rp2Logouts.uri, backchannel_logout_session_required: true },
    ],
    ...(options.acme ? { acme: options.acme } : {}),
    ...(options.globex ? { globex: options.globex } : {}),
    ...(options.settings ? { settings: options.settings } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    fed,
    acmeUsers,
    rpLogouts,
    rp2Logouts,
    rp2: await rp2Of(fed),
    async close() {
      await fed.close();
      await Promise.all([rpLogouts.close(), rp2Logouts.close()]);
    },
  };
}

describe('per-session state: two devices of one user', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(() => s.close());

  it('each device keeps its own claims (refresh, userinfo, access token) and its own upstream hint (logout)', async () => {
    const { fed, acmeUsers } = s;
    const alice = acmeUsers.find((u) => u.email === ALICE)!;
    const deviceA = await signedIn(fed, ALICE);
    assert.deepEqual(deviceA.tokens.claims()!.groups, ['engineering', 'all-staff']);
    // Acme changes alice's groups; she then signs in on a second device.
    alice.groups = ['all-staff'];
    const deviceB = await signedIn(fed, ALICE);
    assert.deepEqual(deviceB.tokens.claims()!.groups, ['all-staff']);
    assert.equal(deviceA.tokens.claims()!.sub, deviceB.tokens.claims()!.sub, 'one account');

    // A refresh on device A gives device A's login's claims (within revalidateAfter: not asked again).
    const refreshedA = await oidc.refreshTokenGrant(fed.rp, deviceA.tokens.refresh_token!);
    assert.deepEqual(refreshedA.claims()!.groups, ['engineering', 'all-staff']);
    assert.deepEqual(decodeJwt(refreshedA.access_token).groups, ['engineering', 'all-staff']);
    const refreshedB = await oidc.refreshTokenGrant(fed.rp, deviceB.tokens.refresh_token!);
    assert.deepEqual(refreshedB.claims()!.groups, ['all-staff']);
    // Userinfo answers each access token with its own session's claims (found by the token's sid).
    assert.equal(decodeJwt(refreshedA.access_token).sid, deviceA.tokens.claims()!.sid);
    assert.deepEqual((await userinfo(fed, refreshedA.access_token)).body?.groups, ['engineering', 'all-staff']);
    assert.deepEqual((await userinfo(fed, refreshedB.access_token)).body?.groups, ['all-staff']);

    // Two sessions, each with its own upstream ID token as logout hint.
    const [sessionA, sessionB] = [await sessionOf(fed, deviceA.tokens), await sessionOf(fed, deviceB.tokens)];
    assert.notEqual(sessionA.id, sessionB.id);
    const hintA = await upstreamIdTokenOf(fed, sessionA.id);
    const hintB = await upstreamIdTokenOf(fed, sessionB.id);
    assert.ok(hintA && hintB && hintA !== hintB);
    assert.notEqual(decodeJwt(hintA).sid, decodeJwt(hintB).sid, 'two upstream sessions');

    // Signing out on device A sends Acme device A's hint, not the last login's (device B's).
    const page = await deviceA.browser.get(oidc.buildEndSessionUrl(fed.rp, { id_token_hint: deviceA.tokens.id_token! }), { stopAt: (u) => u.origin === new URL(fed.acme.issuer).origin });
    const form = parseForm(page.body, '/session/end/confirm');
    const toAcme = await deviceA.browser.post(new URL(form.action, page.url), form.fields, { stopAt: (u) => u.origin === new URL(fed.acme.issuer).origin });
    assert.equal(toAcme.stoppedAt?.searchParams.get('id_token_hint'), hintA);
    // Device A's session ended (its refresh token with it); device B's lives on.
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, refreshedA.refresh_token!), invalidGrant);
    assert.equal((await userinfo(fed, refreshedA.access_token)).status, 401, 'userinfo refuses a token of an ended session');
    assert.ok((await oidc.refreshTokenGrant(fed.rp, refreshedB.refresh_token!)).access_token);
    // The RP was told of device A's session only.
    const [told] = await s.rpLogouts.waitFor(1);
    assert.equal(told!.payload.sid, deviceA.tokens.claims()!.sid);
  });
});

describe('re-check on refresh (revalidateAfter 0: every refresh asks the partner)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({
      acme: { session: { revalidateAfter: 0 } },
      // Globex: only members of /globex/sales may sign in; a re-check applies the rule again.
      globex: { session: { revalidateAfter: '15m' }, mapping: { rules: [{ require: "claims.groups.exists(g, g == '/globex/sales')", message: 'sales only' }] } },
    });
  });
  after(() => s.close());

  it('a group removed upstream is gone from the next access token and ID token', async () => {
    const { fed, acmeUsers } = s;
    const carol = acmeUsers.find((u) => u.email === 'carol@acme.example')!;
    const { tokens } = await signedIn(fed, carol.email);
    assert.deepEqual(decodeJwt(tokens.access_token).groups, ['finance', 'all-staff']);
    const before = await metricValue(fed, 'concord_session_rechecks_total', { participant: 'acme', outcome: 'confirmed' });
    carol.groups = ['all-staff'];
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    assert.deepEqual(decodeJwt(refreshed.access_token).groups, ['all-staff']);
    assert.deepEqual(refreshed.claims()!.groups, ['all-staff']);
    assert.equal(await metricValue(fed, 'concord_session_rechecks_total', { participant: 'acme', outcome: 'confirmed' }), before + 1);
    // And it stays so: the session keeps the fresh claims.
    const again = await oidc.refreshTokenGrant(fed.rp, refreshed.refresh_token!);
    assert.deepEqual(decodeJwt(again.access_token).groups, ['all-staff']);
  });

  it('a user removed upstream loses access at the next refresh: invalid_grant, the session ends, its services are told', async () => {
    const { fed, acmeUsers } = s;
    const user: PartnerUser = { sub: 'acme-leaver', email: 'leaver@acme.example', name: 'Leaver', groups: ['engineering'] };
    acmeUsers.push(user);
    const { browser, tokens } = await signedIn(fed, user.email);
    const rp2Tokens = await ssoToRp2(s.rp2, browser);
    assert.ok((await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!)).access_token, 'the partner still vouches for the user');
    const session = await sessionOf(fed, tokens);
    acmeUsers.splice(acmeUsers.indexOf(user), 1);

    await assert.rejects(oidc.refreshTokenGrant(s.rp2, rp2Tokens.refresh_token!), invalidGrant);
    assert.equal(await fed.concord.concord.sessions.get(session.id), undefined, 'the session ended');
    // Its other service's refresh token went with it.
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), invalidGrant);
    // Both services are sent a logout token for their part in the session.
    await s.rpLogouts.waitFor(1);
    await s.rp2Logouts.waitFor(1);
    assert.ok(s.rpLogouts.received.some((r) => r.payload.sid === tokens.claims()!.sid && r.payload.sub === tokens.claims()!.sub));
    assert.ok(s.rp2Logouts.received.some((r) => r.payload.sid === rp2Tokens.claims()!.sid));
    assert.ok(await metricValue(fed, 'concord_sessions_ended_total', { participant: 'acme', cause: 'upstream_revoked' }) >= 1);
  });

  it('within revalidateAfter the partner is not asked; a require rule the fresh claims fail ends the session', async () => {
    const { fed } = s;
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const fresh = await metricValue(fed, 'concord_session_rechecks_total', { participant: 'globex', outcome: 'fresh' });
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    assert.equal(await metricValue(fed, 'concord_session_rechecks_total', { participant: 'globex', outcome: 'fresh' }), fresh + 1, 'not asked: confirmed less than revalidateAfter ago');
    // The participant now asks at every refresh, and bob's groups no longer pass its rule.
    const globex = fed.concord.concord.registry.participant('globex')!.config;
    fed.concord.concord.registry.setParticipant({ ...globex, session: { ...globex.session, revalidateAfter: 0 } });
    const bob = fed.globex.users.find((u) => u.email === 'bob@globex.example')!;
    const groups = bob.groups;
    bob.groups = ['/globex/staff'];
    try {
      await assert.rejects(oidc.refreshTokenGrant(fed.rp, refreshed.refresh_token!), invalidGrant);
    } finally {
      bob.groups = groups;
    }
    assert.ok(await metricValue(fed, 'concord_sessions_ended_total', { participant: 'globex', cause: 'mapping_rejected' }) >= 1);
  });
});

describe('sessions that cannot be asked again are bounded by session.maxAge', () => {
  let s: Setup;
  let offset = 0;
  before(async () => {
    s = await setup({ acme: { session: { revalidateAfter: 'off', maxAge: '1h' } }, now: () => Date.now() + offset });
  });
  after(() => s.close());

  it('refreshes within maxAge, then invalid_grant once the login is older', async () => {
    const { fed } = s;
    const { tokens } = await signedIn(fed, ALICE);
    // No re-check will ask the partner: the session keeps its logout hint, not the partner's refresh token.
    const upstream = await fed.concord.concord.sessions.upstream((await sessionOf(fed, tokens)).id);
    assert.equal(upstream.logout?.protocol, 'oidc');
    assert.equal(upstream.refresh, undefined, 'no re-check state kept under revalidateAfter: off');
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    offset = 2 * 3600 * 1000;
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, refreshed.refresh_token!), invalidGrant);
    assert.ok(await metricValue(fed, 'concord_sessions_ended_total', { participant: 'acme', cause: 'max_age' }) >= 1);
  });
});

describe('an upstream that is down, under both onUpstreamDown policies', () => {
  let s: Setup;
  let offset = 0;
  before(async () => {
    s = await setup({
      acme: { session: { revalidateAfter: 0, onUpstreamDown: 'allow', maxStaleness: '24h' } },
      globex: { session: { revalidateAfter: 0, onUpstreamDown: 'deny' } },
      now: () => Date.now() + offset,
    });
  });
  after(() => s.close());

  it('allow: the refresh goes on with the last claims while they are fresh enough; deny: 503, and the session stays', async () => {
    const { fed } = s;
    const acme = await signedIn(fed, ALICE);
    const globex = await signedIn(fed, 'bob@globex.example');
    await fed.acme.close();
    await fed.globex.close();

    const allowed = await oidc.refreshTokenGrant(fed.rp, acme.tokens.refresh_token!);
    assert.deepEqual(decodeJwt(allowed.access_token).groups, ['engineering', 'all-staff'], 'the claims last confirmed');
    assert.ok(await metricValue(fed, 'concord_session_rechecks_total', { participant: 'acme', outcome: 'down_allowed' }) >= 1);

    const denied = await rawRefresh(fed, globex.tokens.refresh_token!);
    assert.equal(denied.status, 503);
    assert.equal(denied.body.error, 'temporarily_unavailable');
    assert.ok(denied.retryAfter, 'Retry-After');
    assert.ok(await fed.concord.concord.sessions.get((await sessionOf(fed, globex.tokens)).id), 'the session stays');

    // Past maxStaleness, allow refuses too (and the refresh token stays usable for later).
    offset = 25 * 3600 * 1000;
    assert.equal((await rawRefresh(fed, allowed.refresh_token!)).body.error, 'temporarily_unavailable');
    assert.ok(await metricValue(fed, 'concord_session_rechecks_total', { participant: 'acme', outcome: 'down_refused' }) >= 1);
    assert.equal(s.rpLogouts.received.length, 0, 'no session ended');
  });
});

describe('back-channel logout from the partner', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(() => s.close());

  it('the partner’s logout ends the Concord sessions of its session; both services get verified logout tokens; another device’s session lives on', async () => {
    const { fed } = s;
    const deviceA = await signedIn(fed, ALICE);
    const rp2A = await ssoToRp2(s.rp2, deviceA.browser);
    const deviceB = await signedIn(fed, ALICE);
    const before = { rp: s.rpLogouts.received.length, rp2: s.rp2Logouts.received.length };

    // Alice signs out at Acme itself, in device A's browser: Acme tells Concord by the back channel.
    const acmeLogout = await deviceA.browser.get(`${fed.acme.issuer}/session/end`);
    const form = parseForm(acmeLogout.body, '/session/end/confirm');
    await deviceA.browser.post(new URL(form.action, acmeLogout.url), { ...form.fields, logout: 'yes' });

    const [toRp] = (await s.rpLogouts.waitFor(before.rp + 1)).slice(before.rp);
    const [toRp2] = (await s.rp2Logouts.waitFor(before.rp2 + 1)).slice(before.rp2);
    assert.equal(toRp!.payload.sid, deviceA.tokens.claims()!.sid);
    assert.equal(toRp!.payload.sub, deviceA.tokens.claims()!.sub);
    assert.equal(toRp!.header.typ, 'logout+jwt');
    assert.equal(toRp2!.payload.sid, rp2A.claims()!.sid);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, deviceA.tokens.refresh_token!), invalidGrant);
    await assert.rejects(oidc.refreshTokenGrant(s.rp2, rp2A.refresh_token!), invalidGrant);
    // Device B's session is another upstream session: untouched.
    assert.ok((await oidc.refreshTokenGrant(fed.rp, deviceB.tokens.refresh_token!)).access_token);
    assert.equal(s.rpLogouts.received.length, before.rp + 1, 'only device A’s session was ended');
    assert.ok(await metricValue(fed, 'concord_upstream_logout_total', { participant: 'acme', outcome: 'accepted' }) >= 1);
    assert.ok(await metricValue(fed, 'concord_backchannel_logout_total', { client: RP2.client_id, outcome: 'delivered' }) >= 1);
  });

  it('a logout token with sub alone ends every session of that user at the participant, and no one else’s', async () => {
    const { fed } = s;
    const one = await signedIn(fed, 'carol@acme.example');
    const two = await signedIn(fed, 'carol@acme.example');
    const alice = await signedIn(fed, ALICE);
    const carolSub = fed.acme.users.find((u) => u.email === 'carol@acme.example')!.sub;
    const res = await postLogoutToken(fed, 'acme', await partnerLogoutToken(fed.acme, { sub: carolSub }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, one.tokens.refresh_token!), invalidGrant);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, two.tokens.refresh_token!), invalidGrant);
    assert.ok((await oidc.refreshTokenGrant(fed.rp, alice.tokens.refresh_token!)).access_token);
    // The same subject at another participant is another user: Globex's path cannot end Acme's sessions.
    const three = await signedIn(fed, 'carol@acme.example');
    assert.equal((await postLogoutToken(fed, 'globex', await partnerLogoutToken(fed.acme, { sub: carolSub }))).status, 400, 'signed by Acme, sent to Globex');
    assert.ok((await oidc.refreshTokenGrant(fed.rp, three.tokens.refresh_token!)).access_token);
  });

  it('refuses (400, logged and counted) replayed, unsigned, wrongly addressed and malformed logout tokens, and ends nothing', async () => {
    const { fed } = s;
    const { tokens } = await signedIn(fed, ALICE);
    const sub = fed.acme.users.find((u) => u.email === ALICE)!.sub;
    // A key of no one's, under the kid of Acme's own.
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const forger = { ...fed.acme, signingJwk: { ...(await exportJWK(privateKey)), alg: 'RS256', kid: fed.acme.signingJwk.kid } };
    {
      const cases: Array<[string, () => Promise<string>, string]> = [
        ['unsigned (alg none)', async () => `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: fed.acme.issuer, aud: 'concord', iat: Math.floor(Date.now() / 1000), jti: 'x', sub, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })).toString('base64url')}.`, 'algorithm'],
        ['signed by another key', () => partnerLogoutToken(forger, { sub }), 'signature'],
        ['addressed to another client (aud)', () => partnerLogoutToken(fed.acme, { sub, aud: 'someone-else' }), 'audience'],
        ['from another issuer (iss)', () => partnerLogoutToken(fed.acme, { sub, iss: 'https://evil.example' }), 'issuer'],
        ['expired', () => partnerLogoutToken(fed.acme, { sub, iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 300 }), 'expired'],
        ['with a nonce (an ID token in disguise)', () => partnerLogoutToken(fed.acme, { sub, nonce: 'n' }), 'nonce'],
        ['without the back-channel logout event', () => partnerLogoutToken(fed.acme, { sub, events: { 'http://schemas.openid.net/event/other': {} } }), 'events'],
        ['with neither sub nor sid', () => partnerLogoutToken(fed.acme, {}), 'no_subject'],
        ['typed as something else', () => partnerLogoutToken(fed.acme, { sub }, { typ: 'at+jwt' }), 'type'],
        ['not a JWT', async () => 'not-a-token', 'malformed'],
      ];
      for (const [what, make, reason] of cases) {
        const before = await metricValue(fed, 'concord_upstream_logout_total', { participant: 'acme', outcome: reason });
        const res = await postLogoutToken(fed, 'acme', await make());
        assert.equal(res.status, 400, what);
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_request', what);
        assert.equal(await metricValue(fed, 'concord_upstream_logout_total', { participant: 'acme', outcome: reason }), before + 1, `${what}: counted as ${reason}`);
      }
      // Replayed: the first use is accepted (it names a session no one has), the second refused.
      const once = await partnerLogoutToken(fed.acme, { sid: 'no-such-upstream-session' });
      assert.equal((await postLogoutToken(fed, 'acme', once)).status, 200);
      const replay = await postLogoutToken(fed, 'acme', once);
      assert.equal(replay.status, 400);
      assert.ok(await metricValue(fed, 'concord_upstream_logout_total', { participant: 'acme', outcome: 'replayed' }) >= 1);
      // No form, or a GET: refused as well, without a page.
      const empty = await fetch(`${fed.concord.issuer}/broker/acme/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
      assert.equal(empty.status, 400);
      const get = await fetch(`${fed.concord.issuer}/broker/acme/backchannel-logout`);
      assert.equal(get.status, 405);
      assert.match(get.headers.get('content-type') ?? '', /json/);
      // Alice's session survived all of it.
      assert.ok((await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!)).access_token);
      const lines = fed.concord.logs.filter((l) => l.msg === 'upstream back-channel logout refused');
      assert.ok(lines.length >= 11 && lines.every((l) => typeof l.outcome === 'string'));
      assert.ok(!fed.concord.rawLogs().includes(once), 'a logout token in the log');
    }
  });
});

describe('administrators see and end sessions (admin API and CLI)', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });
  after(() => s.close());

  const api = (method: string, path: string) =>
    fetch(`${s.fed.concord.adminUrl}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then(async (res) => ({ status: res.status, body: (await res.json()) as any }));
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, CONCORD_ADMIN_URL: s.fed.concord.adminUrl, CONCORD_ADMIN_TOKEN: ADMIN_TOKEN };
      execFile(process.execPath, [BIN, ...args], { env, timeout: 30_000 }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? -1) : 0, stdout, stderr }));
    });

  it('lists a user’s sessions (participant, clients, started, last refreshed, last confirmed upstream), by id or by email', async () => {
    const { fed } = s;
    const a = await signedIn(fed, 'carol@acme.example');
    const atRp2 = await ssoToRp2(s.rp2, a.browser);
    // A service added to the session after its record (not in the record): its access token still
    // carries its own sid, though the code exchange read the session without that set.
    assert.equal(decodeJwt(atRp2.access_token).sid, atRp2.claims()!.sid);
    const b = await signedIn(fed, 'carol@acme.example');
    await oidc.refreshTokenGrant(fed.rp, b.tokens.refresh_token!);
    const user = String(a.tokens.claims()!.sub);

    const listed = await api('GET', `/users/${encodeURIComponent(user)}/sessions`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.user, user);
    assert.equal(listed.body.sessions.length, 2);
    // (Oldest first; two logins in the same second are in either order.)
    const first = listed.body.sessions.find((x: { clients: unknown[] }) => x.clients.length === 2);
    const second = listed.body.sessions.find((x: { clients: unknown[] }) => x.clients.length === 1);
    assert.ok(first && second);
    assert.equal(first.participant, 'acme');
    assert.deepEqual(first.clients.map((c: { clientId: string }) => c.clientId).sort(), [RP.client_id, RP2.client_id]);
    assert.deepEqual(first.clients.find((c: { clientId: string }) => c.clientId === RP2.client_id).name, RP2.client_name);
    assert.deepEqual(second.clients.map((c: { clientId: string }) => c.clientId), [RP.client_id]);
    assert.equal(first.lastRefreshedAt, null, 'device A never refreshed');
    assert.ok(Date.parse(second.lastRefreshedAt) >= Date.parse(second.startedAt), 'device B refreshed');
    for (const session of listed.body.sessions) {
      assert.ok(Number.isFinite(Date.parse(session.startedAt)) && Number.isFinite(Date.parse(session.lastConfirmedAt)));
      assert.equal(session.upstreamSession, true, 'the partner named its session (sid)');
    }
    const one = await api('GET', `/sessions/${first.id}`);
    assert.deepEqual(one.body, first);

    const byEmail = await api('GET', `/users?email=${encodeURIComponent('Carol@Acme.example')}`);
    assert.deepEqual(byEmail.body.users.map((u: { id: string; sessions: number }) => [u.id, u.sessions]), [[user, 2]]);
    const viaCli = await cli(['sessions', 'list', '--email', 'carol@acme.example', '--json']);
    assert.equal(viaCli.code, 0, viaCli.stderr);
    assert.deepEqual(new Set(JSON.parse(viaCli.stdout).sessions.map((x: { id: string }) => x.id)), new Set([first.id, second.id]));
    const table = await cli(['sessions', 'list', user]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID\s+USER\s+PARTICIPANT\s+CLIENTS\s+STARTED\s+REFRESHED\s+CONFIRMED/);
    assert.ok(table.stdout.includes(first.id) && table.stdout.includes(second.id));
    // At a refresh too (a refresh token names no sid: the session's part for RP2 does, in the set).
    assert.ok(atRp2.refresh_token, 'RP2 gets a refresh token');
    assert.equal(decodeJwt((await oidc.refreshTokenGrant(s.rp2, atRp2.refresh_token!)).access_token).sid, atRp2.claims()!.sid, 'RP2’s refreshed access token has its sid');

    assert.equal((await api('GET', '/users/acme%3Anobody/sessions')).status, 404);
    assert.equal((await api('GET', '/sessions/no-such-session')).status, 404);
    assert.equal((await api('GET', '/users')).status, 400, 'email or participant is needed');
  });

  it('ends one session (CLI) or all of a user’s (API): their services are told, the other user’s session lives on; each action audited', async () => {
    const { fed } = s;
    const a = await signedIn(fed, ALICE);
    const rp2A = await ssoToRp2(s.rp2, a.browser);
    const b = await signedIn(fed, ALICE);
    const c = await signedIn(fed, ALICE);
    const carol = await signedIn(fed, 'carol@acme.example');
    const user = String(a.tokens.claims()!.sub);
    const sessionA = await sessionOf(fed, a.tokens);
    const before = { rp: s.rpLogouts.received.length, rp2: s.rp2Logouts.received.length };

    const ended = await cli(['sessions', 'end', '--', sessionA.id]);
    assert.equal(ended.code, 0, ended.stderr);
    assert.match(ended.stdout, new RegExp(`session ${sessionA.id} of ${user} ended`));
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, a.tokens.refresh_token!), invalidGrant);
    await assert.rejects(oidc.refreshTokenGrant(s.rp2, rp2A.refresh_token!), invalidGrant);
    assert.ok((await oidc.refreshTokenGrant(fed.rp, b.tokens.refresh_token!)).access_token, 'another session of the user lives on');
    await s.rpLogouts.waitFor(before.rp + 1);
    await s.rp2Logouts.waitFor(before.rp2 + 1);
    assert.equal(s.rpLogouts.received.at(-1)!.payload.sid, a.tokens.claims()!.sid);
    assert.equal((await cli(['sessions', 'end', '--', sessionA.id])).code, 1, 'an ended session is not found again');

    const all = await api('POST', `/users/${encodeURIComponent(user)}/revoke-sessions`);
    assert.equal(all.status, 200);
    assert.equal(all.body.ended.length, 2);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, b.tokens.refresh_token!), invalidGrant);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, c.tokens.refresh_token!), invalidGrant);
    assert.ok((await oidc.refreshTokenGrant(fed.rp, carol.tokens.refresh_token!)).access_token, 'another user is untouched');
    const told = await s.rpLogouts.waitFor(before.rp + 3);
    assert.deepEqual(new Set(told.slice(before.rp + 1).map((r) => r.payload.sid)), new Set([b.tokens.claims()!.sid, c.tokens.claims()!.sid]));
    assert.deepEqual((await api('GET', `/users/${encodeURIComponent(user)}/sessions`)).body.sessions, []);

    const audit = (await api('GET', '/audit?limit=10')).body.entries as Array<{ action: string; object: { type: string; id: string }; actor: string; result?: Record<string, unknown> }>;
    const revoke = audit.find((e) => e.action === 'user.revoke_sessions');
    assert.deepEqual(revoke?.object, { type: 'user', id: user });
    assert.equal(revoke?.result?.sessions, 2);
    const end = audit.find((e) => e.action === 'session.end');
    assert.deepEqual(end?.object, { type: 'session', id: sessionA.id });
    assert.equal(end?.actor, 'admin');
    assert.deepEqual(new Set(end?.result?.clients as string[]), new Set([RP.client_id, RP2.client_id]));
  });

  it('a session oidc-provider saved that never got its Concord record is ended with the rest of its user’s', async () => {
    const { fed } = s;
    const carol = await signedIn(fed, 'carol@acme.example');
    const user = String(carol.tokens.claims()!.sub);
    const listed = (await api('GET', `/users/${encodeURIComponent(user)}/sessions`)).body.sessions.length as number;
    assert.ok(listed >= 1);
    // As oidc-provider saves a Session through Concord's adapter, when the login that made it was lost on the way.
    const { store } = fed.concord.concord;
    const uid = `unbound-${Date.now()}`;
    await indexingAdapter(store, 'Session').upsert(`jti-${uid}`, { kind: 'Session', jti: `jti-${uid}`, uid, accountId: user, loginTs: Math.floor(Date.now() / 1000) } as AdapterPayload, 3600);
    assert.equal((await api('GET', `/users/${encodeURIComponent(user)}/sessions`)).body.sessions.length, listed, 'only bound sessions are listed');

    const all = await api('POST', `/users/${encodeURIComponent(user)}/revoke-sessions`);
    assert.equal(all.status, 200);
    assert.ok((all.body.ended as Array<{ id: string }>).some((e) => e.id === uid), 'the unbound session is ended');
    assert.equal(all.body.ended.length, listed + 1);
    assert.equal(await store.adapter('Session').find(`jti-${uid}`), undefined);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, carol.tokens.refresh_token!), invalidGrant);
  });

  it('grants no session names any more are revoked with their user’s: from the account’s index, and from the index of before (account-grants)', async () => {
    // (With offline_access a grant and its refresh tokens outlive the session; here the grant alone does.)
    const { fed } = s;
    const { store } = fed.concord.concord;
    const one = await signedIn(fed, 'carol@acme.example');
    const two = await signedIn(fed, 'carol@acme.example');
    const user = String(one.tokens.claims()!.sub);
    const grantIds: string[] = [];
    // Both sessions gone as when they expire before their grants (offline refresh tokens live on):
    // the record and oidc-provider's Session; only the account's index still names the grants.
    for (const { tokens } of [one, two]) {
      const session = await sessionOf(fed, tokens);
      grantIds.push(session.clients.find((c) => c.clientId === RP.client_id)!.grantId!);
      await store.deleteTemp(`session:${session.id}`);
      const live = await store.adapter('Session').findByUid(session.id);
      if (live?.jti) await store.adapter('Session').destroy(String(live.jti));
    }
    assert.ok((await store.setMembers(`sessions-of-account:${user}`)).includes(`g:${grantIds[0]}`), 'a grant is in its account’s index');
    // The second grant as an earlier version indexed it.
    await store.removeFromSet(`sessions-of-account:${user}`, `g:${grantIds[1]}`);
    await store.addToSet(`account-grants:${user}`, grantIds[1]!, 3600);
    for (const grantId of grantIds) assert.ok(await store.adapter('Grant').find(grantId), 'the grant outlived its session');

    const all = await api('POST', `/users/${encodeURIComponent(user)}/revoke-sessions`);
    assert.equal(all.status, 200);
    for (const grantId of grantIds) assert.equal(await store.adapter('Grant').find(grantId), undefined, 'revoked');
    assert.deepEqual((await store.setMembers(`sessions-of-account:${user}`)).filter((m) => m.startsWith('g:')), [], 'the revoked grants left the index');
    assert.deepEqual(await store.setMembers(`account-grants:${user}`), []);
  });

  it('a session read ahead in a request answers its first get there; a write of a session in the request, or another get, reads the store again', async () => {
    const { fed } = s;
    const { tokens } = await signedIn(fed, 'carol@acme.example');
    const { sessions, store } = fed.concord.concord;
    const session = await sessionOf(fed, tokens);
    const stored = await store.getTemp(`session:${session.id}`);
    assert.ok(stored);
    try {
      await withRequestReads(async () => {
        sessions.readAhead(session.id);
        await store.deleteTemp(`session:${session.id}`); // behind its back, after the read left
        const ahead = await sessions.get(session.id);
        assert.equal(ahead?.id, session.id, 'the read ahead answers');
        assert.equal(ahead?.clientsInRecordOnly, true, 'read without the set of services added later (one command fewer)');
        assert.deepEqual(ahead?.clients.map((c) => c.clientId), [RP.client_id], 'the record keeps the first service');
        assert.equal(await sessions.get(session.id), undefined, 'taken once: the next get reads the store');
      });
      await store.setTemp(`session:${session.id}`, stored, 60);
      await withRequestReads(async () => {
        sessions.readAhead(session.id);
        await store.deleteTemp(`session:${session.id}`);
        await sessions.addClient(session.id, { clientId: RP.client_id });
        assert.equal(await sessions.get(session.id), undefined, 'a write dropped the read ahead');
      });
      sessions.readAhead(session.id); // outside a request: nothing
      await store.setTemp(`session:${session.id}`, stored, 60);
    } finally {
      await store.setTemp(`session:${session.id}`, stored, 60);
    }
    assert.equal((await sessions.get(session.id))?.id, session.id);
  });

  it('a held login taken ahead in a request is the one bind uses there; bound as another account, or not bound at all, it is held again', async () => {
    const { sessions, store } = s.fed.concord.concord;
    const login = { accountId: 'acme:ahead', participantId: 'acme', claims: { email: 'ahead@acme.example' }, upstream: {}, confirmedAt: sessions.nowSeconds() };
    await sessions.hold('ia-1', login, 60);
    const bound = await withRequestReads(async () => {
      sessions.takeAhead('ia-1');
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await store.getTemp('session-pending:ia-1'), undefined, 'taken ahead, single use');
      return sessions.bind('ia-1', { uid: 'sa-1', accountId: 'acme:ahead' });
    });
    assert.equal(bound?.accountId, 'acme:ahead');
    assert.deepEqual(bound?.claims, login.claims);
    await sessions.hold('ia-2', login, 60);
    const other = await withRequestReads(async () => {
      sessions.takeAhead('ia-2');
      return sessions.bind('ia-2', { uid: 'sa-x', accountId: 'acme:someone-else' });
    });
    assert.equal(other, undefined, 'not bound to another account’s session');
    const own = await withRequestReads(async () => sessions.bind('ia-2', { uid: 'sa-2', accountId: 'acme:ahead' }));
    assert.equal(own?.accountId, 'acme:ahead', 'held again by the other account’s bind, then bound to its own');
    // Taken ahead and never bound (the resume ended another way): held again as the request settles.
    await sessions.hold('ia-3', login, 60);
    await withRequestReads(async () => {
      sessions.takeAhead('ia-3');
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(await store.getTemp('session-pending:ia-3'), undefined, 'taken ahead');
      await sessions.settleTakes();
    });
    const later = await withRequestReads(async () => sessions.bind('ia-3', { uid: 'sa-3', accountId: 'acme:ahead' }));
    assert.equal(later?.accountId, 'acme:ahead', 'held again by settleTakes, then bound');
    await sessions.end('sa-1', 'admin');
    await sessions.end('sa-2', 'admin');
    await sessions.end('sa-3', 'admin');
  });

  it('the resume that finishes a login binds the login its interaction carries (no key of its own) and reads no account, nor a record of the session oidc-provider just made', async () => {
    const { fed } = s;
    const { browser } = await signedIn(fed, 'carol@acme.example');
    const resume = browser.history.find((hop) => hop.url.origin === new URL(fed.concord.issuer).origin && /^\/auth\/[^/]+$/.test(hop.url.pathname));
    assert.ok(resume, 'the login resumed at /auth/{uid}');
    const request = fed.concord.logs.find((l) => l.msg === 'request' && l.url === resume.url.pathname);
    assert.ok(request, 'the resume is logged');
    const calls = fed.concord.logs.filter((l) => l.msg === 'store call' && l.requestId === request.requestId).map((l) => `${String(l.op)} ${String(l.target ?? '')}`);
    assert.deepEqual(calls.filter((c) => /session-pending/.test(c)), [], `the held login came with the interaction: ${calls.join(', ')}`);
    assert.deepEqual(calls.filter((c) => /^(getTemp (account|session)|setMembers session-clients)$/.test(c)), [], calls.join(', '));
    const paths = new Set(browser.history.map((hop) => hop.url.pathname));
    const ofLogin = new Set(fed.concord.logs.filter((l) => l.msg === 'request' && paths.has(String(l.url).replace(/\?.*/, ''))).map((l) => l.requestId));
    const urls = fed.concord.logs.filter((l) => l.msg === 'request' && ofLogin.has(l.requestId)).map((l) => String(l.url).replace(/\?.*/, ''));
    assert.ok(urls.some((u) => /^\/interaction\/[^/]+\/callback$/.test(u)), `the callback is among the login's requests: ${urls.join(', ')}`);
    const apart = fed.concord.logs.filter((l) => l.msg === 'store call' && ofLogin.has(l.requestId) && /session-pending/.test(String(l.target ?? '')));
    assert.deepEqual(apart, [], 'nor did its callback hold it apart');
  });

  it('a session record the request found absent is written by its bind without being read again; a write of it in the request, or another request, reads it', async () => {
    const { sessions, store } = s.fed.concord.concord;
    const login = { accountId: 'acme:absent', participantId: 'acme', claims: { email: 'absent@acme.example' }, upstream: {}, confirmedAt: sessions.nowSeconds() };
    const planted = { v: 1, accountId: 'acme:absent', participantId: 'acme', startedAt: 1, confirmedAt: 1, claims: {}, clients: ['["planted",null,null]'] };
    await sessions.hold('iab-1', login, 60);
    const bound = await withRequestReads(async () => {
      assert.equal(await sessions.get('sab-1'), undefined);
      await store.setTemp('session:sab-1', planted, 60); // behind its back, after the read
      return sessions.bind('iab-1', { uid: 'sab-1', accountId: 'acme:absent' });
    });
    assert.deepEqual(bound?.clients, [], 'known absent: not read again');
    await store.setTemp('session:sab-2', planted, 60);
    await sessions.hold('iab-2', login, 60);
    const read = await withRequestReads(async () => sessions.bind('iab-2', { uid: 'sab-2', accountId: 'acme:absent' }));
    assert.deepEqual(read?.clients.map((c) => c.clientId), ['planted'], 'not looked at in the request: read');
    await sessions.end('sab-1', 'admin');
    await sessions.end('sab-2', 'admin');
  });

  it('a participant’s view names where its IdP sends logout tokens', async () => {
    const res = await api('GET', '/participants/acme');
    assert.equal(res.body.registration.backchannelLogoutUri, `${s.fed.concord.issuer}/broker/acme/backchannel-logout`);
    assert.equal(res.body.registration.redirectUri, `${s.fed.concord.issuer}/broker/acme/callback`);
  });
});
