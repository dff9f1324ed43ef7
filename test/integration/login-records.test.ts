import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { HELD_LOGIN, HeldLoginTaken } from '../../src/sessions/index.ts';
import { createStore, withRequestReads, type AdapterPayload } from '../../src/store/index.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { dumpRedis as dump, REDIS_URL } from '../support/redis-dump.ts';
import type { RedisStore } from '../../src/store/redis.ts';

/*
 * The short-lived records of a brokered login on Redis (issue 17, bytes and commands): the login a
 * callback finished rides to its resume in the interaction's result (no key of its own), bound once;
 * a login an earlier version's callback held under `session-pending:{uid}` is still bound; a
 * consumed code keeps what refusing its replay needs, and its replay still revokes the grant.
 */
describe('the short-lived records of a login (Redis)', () => {
  const prefix = `login-records-${randomBytes(6).toString('hex')}:`;
  let fed: Federation;

  before(async () => {
    fed = await startFederation({ store: await createStore({ url: REDIS_URL, prefix }), settings: { storePrefix: prefix, upstream: { healthInterval: 0 } } });
  });
  after(async () => {
    await fed.close();
    await dropRedisPrefix(prefix);
  });

  const login = (accountId: string) => ({ accountId, participantId: 'acme', claims: { email: `${accountId.slice(5)}@acme.example` }, upstream: {}, confirmedAt: Math.floor(Date.now() / 1000) });

  /** An Interaction as the callback leaves it: its result with the login, and (new form) the held login in it. */
  async function interactionWith(uid: string, result: Record<string, unknown>): Promise<void> {
    await fed.concord.concord.store.adapter('Interaction').upsert(uid, { exp: Math.floor(Date.now() / 1000) + 60, params: { client_id: 'rp' }, result } as AdapterPayload, 60);
  }

  /** A resume as oidc-provider makes it: the interaction destroyed, then the login bound to the session (trackSessions). */
  const resume = (uid: string, session: { uid: string; accountId: string }, result: Record<string, unknown>, made = false) =>
    withRequestReads(async () => {
      await fed.concord.concord.store.adapter('Interaction').destroy(uid);
      // A session oidc-provider made in this request (the browser had none): findAccount says so.
      if (made) fed.concord.concord.sessions.madeNow(session.uid);
      return fed.concord.concord.sessions.bind(uid, session, undefined, result);
    });

  it('a brokered login holds no key of its own between callback and resume, and its session gets the login', async () => {
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' });
    const keys = await dump(prefix);
    assert.ok(!keys.includes('session-pending:'), 'no session-pending key');
    const tokens = await exchange(fed.rp, callback, auth);
    assert.equal(tokens.claims()?.email, 'alice@acme.example', 'the session record gave the token its claims');
  });

  it("a session's long-lived records are in their compact forms, and its account is in its sessions' index (no key of its own), a small listpack", async () => {
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(new Browser(), auth, { email: 'carol@acme.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    assert.ok(tokens.refresh_token);
    const redis = (fed.concord.concord.store as RedisStore).client;
    const [accountId] = await fed.concord.concord.accounts.idsByEmail('carol@acme.example');
    assert.ok(accountId, 'the account, found by its email');
    const [session] = await fed.concord.concord.sessions.ofAccount(accountId);
    assert.ok(session, 'its session, found through its index');
    assert.equal(await redis.exists(`${prefix}tmp:account:${accountId}`), 0, 'no account key');
    const index = `${prefix}set:sessions-of-account:${accountId}`;
    assert.equal(await redis.object('ENCODING', index), 'listpack');
    const members = await redis.hgetall(index);
    assert.deepEqual(Object.keys(members).sort(), [session.id, 'a', `g:${session.clients[0]!.grantId}`, 'i'].sort());
    assert.deepEqual(JSON.parse(members.a!), [JSON.parse(members.a!)[0], 'carol@acme.example']);
    assert.equal((await fed.concord.concord.accounts.find(accountId))?.email, 'carol@acme.example');
    const json = async (key: string) => JSON.parse((await redis.get(key))!) as Record<string, unknown>;
    assert.equal((await json(`${prefix}tmp:session:${session.id}`)).v, 2, 'the session record (CompactSession)');
    const [grant] = await Promise.all([json(`${prefix}oidc:Grant:${session.clients[0]!.grantId}`)]);
    assert.equal(grant.c, RP.client_id, 'the Grant with one-letter fields');
    assert.equal(grant.clientId, undefined);
    const sessionKeys = await redis.keys(`${prefix}oidc:Session:*`);
    const live = await Promise.all(sessionKeys.map(json));
    const mine = live.find((p) => p.uid === session.id)!;
    assert.ok(mine.z && mine.authorizations === undefined && typeof mine.l === 'number', 'the oidc-provider Session with one-letter fields');
    const refresh = (await Promise.all((await redis.keys(`${prefix}oidc:RefreshToken:*`)).map(json))).find((p) => p.sessionUid === session.id)!;
    assert.equal(refresh.c, RP.client_id, 'the refresh token with one-letter fields');
    assert.equal(refresh.u, undefined, 'its resource, the issuer, left out');
    // All of them read back: the refresh token refreshes.
    const refreshed = await oidc.refreshTokenGrant(fed.rp, tokens.refresh_token);
    assert.ok(refreshed.access_token);
  });

  it('the upstream state is written once, at the callback, under its own key for the interaction’s lifetime; the interaction carries only its id; the session takes it over where it is', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const redis = (fed.concord.concord.store as RedisStore).client;
    const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
    const atResume = (u: URL) => u.origin === fed.concord.issuer && /^\/auth\/[^/]+$/.test(u.pathname);
    let page = await browser.get(auth.url, { stopAt: atRp });
    page = await browser.post(new URL(parseForm(page.body, '/login').action, page.url), { ...parseForm(page.body, '/login').fields, email: 'alice@acme.example' }, { stopAt: atRp });
    const form = parseForm(page.body, '/login');
    const states = async () => (await redis.keys(`${prefix}tmp:session-upstream:*`)).filter((k) => /:[A-Za-z0-9_-]{22}$/.test(k));
    const before = new Set(await states());
    const upTo = await browser.post(new URL(form.action, page.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt: atResume });
    assert.ok(upTo.stoppedAt, `stopped before the resume: ${upTo.status} at ${upTo.url.href}`);
    // Between the callback and the resume: one state, for the interaction's lifetime (a login never resumed leaves nothing longer).
    const written = (await states()).filter((k) => !before.has(k));
    assert.equal(written.length, 1, written.join(', '));
    const stateKey = written[0]!;
    const stateId = stateKey.slice(stateKey.lastIndexOf(':') + 1);
    const ttl = await redis.pttl(stateKey);
    assert.ok(ttl > 0 && ttl <= 600_000, `the interaction's lifetime: ${ttl} ms`);
    const uid = upTo.stoppedAt.pathname.split('/').pop()!;
    const interaction = (await redis.get(`${prefix}oidc:Interaction:${uid}`))!;
    const held = (JSON.parse(interaction) as { result: Record<string, string> }).result[HELD_LOGIN]!;
    const sealedState = (await redis.getBuffer(stateKey))!;
    assert.ok(held.length < sealedState.length, `the held login names the state, it does not carry it: ${held.length} vs ${sealedState.length} bytes`);
    assert.match(held, /^z3\./, 'sealed DEFLATEd with the claims’ dictionary');
    const done = await browser.get(upTo.stoppedAt, { stopAt: atRp });
    const tokens = await exchange(fed.rp, done.stoppedAt!, auth);
    const { sessions, store } = fed.concord.concord;
    const named = await Promise.all((await sessions.ofAccount(String(tokens.claims()!.sub))).map(async (one) => ({ one, stateId: (await store.getTemp<{ k?: string }>(`session:${one.id}`))?.k })));
    const session = named.find((n) => n.stateId === stateId)?.one;
    assert.ok(session, `a session names the state written at the callback: ${JSON.stringify(named.map((n) => n.stateId))}`);
    assert.deepEqual(await redis.getBuffer(stateKey), sealedState, 'not written again');
    assert.ok((await redis.pttl(stateKey)) > 3_600_000, 'its lifetime now the session’s');
    assert.equal(await redis.exists(`${prefix}tmp:session-upstream:${session!.id}`), 0, 'no second copy');
    assert.ok(((await sessions.upstream(session!.id)).logout as { idTokenHint?: string } | undefined)?.idTokenHint, 'the session gives its upstream logout hint');
    await sessions.end(session!.id, 'admin');
    assert.equal(await redis.exists(stateKey), 0, 'the state ends with the session');
  });

  it('a held login in the previous release’s form (the upstream state carried in it) is still bound, its state kept under the session', async () => {
    const { sessions, store } = fed.concord.concord;
    const logout = { protocol: 'oidc' as const, idTokenHint: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJvbGQifQ.sig' };
    const held = sessions.sealHeld('ip-1', { ...login('acme:previous'), upstream: { logout } });
    const result = { login: { accountId: 'acme:previous' }, select_account: {}, [HELD_LOGIN]: held };
    await interactionWith('ip-1', result);
    const bound = await resume('ip-1', { uid: 'sp-1', accountId: 'acme:previous' }, result, true);
    assert.equal(bound?.accountId, 'acme:previous');
    assert.equal((await store.getTemp<{ k?: string }>('session:sp-1'))?.k, undefined, 'its record names no state of its own (CompactSession k)');
    assert.ok(await store.getBytes('session-upstream:sp-1'), 'its state under the session, as before');
    assert.deepEqual((await sessions.upstream('sp-1')).logout, logout);
    await sessions.end('sp-1', 'admin');
  });

  it('a pending upstream login is stored without what its key says (state, interaction, callback URL, start); one stored whole (the previous release) still finishes', async () => {
    const { store } = fed.concord.concord;
    for (const whole of [false, true]) {
      const browser = new Browser();
      const auth = await authorizationRequest(fed.rp);
      const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
      let page = await browser.get(auth.url, { stopAt: atRp });
      page = await browser.post(new URL(parseForm(page.body, '/login').action, page.url), { ...parseForm(page.body, '/login').fields, email: 'alice@acme.example' }, { stopAt: atRp });
      const form = parseForm(page.body, '/login');
      const toBroker = await browser.post(new URL(form.action, page.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt: (u) => u.pathname === '/broker/acme/callback' });
      const state = toBroker.stoppedAt!.searchParams.get('state')!;
      const uid = state.split('.')[0]!;
      const stored = (await store.getTemp<Record<string, unknown> & { pending: Record<string, unknown> }>(`upstream-login:${state}`))!;
      assert.deepEqual(Object.keys(stored).sort(), ['clientId', 'participantId', 'pending'], JSON.stringify(stored));
      assert.deepEqual(Object.keys(stored.pending).sort(), ['codeVerifier', 'createdAt', 'nonce', 'protocol'], JSON.stringify(stored.pending));
      if (whole) {
        const redirectUri = `${fed.concord.issuer}/broker/acme/callback`;
        await store.setTemp(`upstream-login:${state}`, { interactionUid: uid, ...stored, pending: { ...stored.pending, state, redirectUri }, startedAt: Date.now() }, 600);
      }
      const done = await browser.get(toBroker.stoppedAt!, { stopAt: atRp });
      assert.ok(done.stoppedAt?.searchParams.get('code'), `${whole ? 'whole' : 'compact'}: ${done.status} at ${done.url.href}`);
      assert.deepEqual(await store.getTemp(`upstream-login:${state}`), { taken: '' }, 'the mark: the state names its interaction');
    }
  });

  it('two resumes of one finished sign-in at once (the same browser): one code reaches the service, and it works', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
    const atResume = (u: URL) => u.origin === fed.concord.issuer && /^\/auth\/[^/]+$/.test(u.pathname);
    let page = await browser.get(auth.url, { stopAt: atRp });
    page = await browser.post(new URL(parseForm(page.body, '/login').action, page.url), { ...parseForm(page.body, '/login').fields, email: 'alice@acme.example' }, { stopAt: atRp });
    const form = parseForm(page.body, '/login');
    const upTo = await browser.post(new URL(form.action, page.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt: atResume });
    assert.ok(upTo.stoppedAt, `stopped before the resume: ${upTo.status} at ${upTo.url.href}`);
    const answers = await Promise.all([browser.get(upTo.stoppedAt, { stopAt: atRp }), browser.get(upTo.stoppedAt, { stopAt: atRp })]);
    const codes = answers.flatMap((a) => (a.stoppedAt?.searchParams.get('code') ? [a.stoppedAt] : []));
    assert.equal(codes.length, 1, `one code: ${answers.map((a) => `${a.status} ${a.stoppedAt?.href ?? a.url.href}`).join(', ')}`);
    const tokens = await exchange(fed.rp, codes[0]!, auth);
    assert.equal(tokens.claims()?.email, 'alice@acme.example');
    // The browser keeps the session the code was issued in: single sign-on gives a code that works.
    const again = await authorizationRequest(fed.rp);
    const sso = await browser.get(again.url, { stopAt: atRp });
    assert.ok(sso.stoppedAt?.searchParams.get('code'), `single sign-on: ${sso.status} at ${sso.url.href}`);
    assert.equal((await exchange(fed.rp, sso.stoppedAt!, again)).claims()?.email, 'alice@acme.example');
  });

  it('the login an interaction carries is bound by the one resume whose destroy found the interaction: not by a second, nor by a request that did not destroy it', async () => {
    const { sessions } = fed.concord.concord;
    const held = sessions.sealHeld('ic-1', login('acme:carried'));
    const result = { login: { accountId: 'acme:carried' }, select_account: {}, [HELD_LOGIN]: held };
    await interactionWith('ic-1', result);
    const notDestroyed = await withRequestReads(() => sessions.bind('ic-1', { uid: 'sc-0', accountId: 'acme:carried' }, undefined, result));
    assert.equal(notDestroyed, undefined, 'a request that did not destroy the interaction binds nothing');
    const both = await Promise.allSettled([resume('ic-1', { uid: 'sc-1', accountId: 'acme:carried' }, result, true), resume('ic-1', { uid: 'sc-2', accountId: 'acme:carried' }, result, true)]);
    const bound = both.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
    const refused = both.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    assert.equal(bound.length, 1, 'bound once');
    assert.equal(refused.length, 1, 'the other resume is refused');
    assert.ok(refused[0] instanceof HeldLoginTaken, String(refused[0]));
    assert.deepEqual(bound[0]!.claims, { email: 'carried@acme.example' });
    const loser = both[0]!.status === 'rejected' ? 'sc-1' : 'sc-2';
    assert.equal(await sessions.get(loser), undefined, 'what the refused resume wrote for its new session is gone again');
    assert.equal((await sessions.get(bound[0]!.id))?.accountId, 'acme:carried');
    // Another account's session, or a login sealed for another interaction: nothing.
    await interactionWith('ic-2', result);
    assert.equal(await resume('ic-2', { uid: 'sc-3', accountId: 'acme:carried' }, result), undefined, 'sealed for ic-1: does not open for ic-2');
    await interactionWith('ic-3', { ...result, [HELD_LOGIN]: sessions.sealHeld('ic-3', login('acme:carried')) });
    assert.equal(await resume('ic-3', { uid: 'sc-4', accountId: 'acme:someone-else' }, { ...result, [HELD_LOGIN]: sessions.sealHeld('ic-3', login('acme:carried')) }), undefined, 'another account');
    await sessions.end('sc-1', 'admin');
    await sessions.end('sc-2', 'admin');
  });

  it('a login an earlier version held under its own key (session-pending) is still bound at the resume; a consent resume does not look for one', async () => {
    const { sessions, store } = fed.concord.concord;
    await sessions.hold('io-1', login('acme:older'), 60);
    const result = { login: { accountId: 'acme:older' }, select_account: {} };
    await interactionWith('io-1', result);
    await sessions.hold('io-2', login('acme:older'), 60);
    const consent = await withRequestReads(() => sessions.bind('io-2', { uid: 'so-2', accountId: 'acme:older' }, undefined, { ...result, consent: { grantId: 'g' } }));
    assert.equal(consent, undefined, 'a consent result: its login was bound at the login’s resume');
    assert.ok(await store.getTemp('session-pending:io-2'), 'not taken');
    const bound = await resume('io-1', { uid: 'so-1', accountId: 'acme:older' }, result);
    assert.equal(bound?.accountId, 'acme:older');
    assert.deepEqual(bound?.claims, { email: 'older@acme.example' });
    assert.equal(await store.getTemp('session-pending:io-1'), undefined, 'taken: single use');
    await sessions.end(bound!.id, 'admin');
  });

  it('a replayed code is refused and revokes its grant, from the consumed code’s short form', async () => {
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(new Browser(), auth, { email: 'carol@acme.example' });
    const tokens = await exchange(fed.rp, callback, auth);
    const redis = (fed.concord.concord.store as RedisStore).client;
    const keys = await redis.keys(`${prefix}oidc:AuthorizationCode:*`);
    // The codes exchanged so far, consumed (a code issued and never delivered, as the refused one of two resumes, stays as it was).
    const codes = (await Promise.all(keys.map((key) => redis.get(key)))).filter((code): code is string => code !== null && code.startsWith('c'));
    assert.ok(codes.length >= 2, `the codes exchanged are kept consumed: ${codes.join(' / ')}`);
    assert.ok(codes.every((code) => /^c\d+\|\{/.test(code) && !code.includes('accountId') && !code.includes('nonce') && code.includes('grantId')), `without the login they carried: ${codes.join(' / ')}`);
    await assert.rejects(exchange(fed.rp, callback, auth), (err: { error?: string }) => err.error === 'invalid_grant');
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the grant is revoked');
  });
});
