import type { OidcLogout } from '../../src/upstream/index.ts';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { hashedId } from '../../src/provider/hashed-ids.ts';
import { tokenIdKey } from '../../src/provider/index.ts';
import { createStore, type AdapterPayload } from '../../src/store/index.ts';
import { TEST_SECRETS_KEY } from '../support/concord.ts';
import { authorizationRequest, brokeredLogin, exchange, startFederation, type Federation } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { dumpRedis as dump, REDIS_URL } from '../support/redis-dump.ts';

/*
 * Issue 19 item 7 against real Redis: someone who can read the store (a replica, a backup, MONITOR)
 * finds no usable authorization code, refresh token or upstream ID token in it. Codes and refresh
 * tokens are stored under a keyed hash of their value and without the value; the upstream ID token
 * is sealed. Entries written before (under the value) keep working until they expire.
 */

describe('what a store reader gets', () => {
  const prefix = `store-secrets-${randomBytes(6).toString('hex')}:`;
  let fed: Federation;

  before(async () => {
    fed = await startFederation({ store: await createStore({ url: REDIS_URL, prefix }), settings: { storePrefix: prefix, upstream: { healthInterval: 0 } } });
  });
  after(async () => {
    await fed.close();
    await dropRedisPrefix(prefix);
  });

  it('finds no authorization code, refresh token or upstream ID token, and the tokens still work', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(browser, auth, { email: 'alice@acme.example' });
    const code = callback.searchParams.get('code')!;
    assert.ok(code.length >= 32);
    const beforeExchange = await dump(prefix);
    assert.ok(beforeExchange.includes('oidc:AuthorizationCode:h1.'), 'the code is stored, under its hash');
    assert.ok(!beforeExchange.includes(code), 'the code itself is nowhere in the store');

    const tokens = await exchange(fed.rp, callback, auth);
    const refreshToken = tokens.refresh_token!;
    const { sessions } = fed.concord.concord;
    const [session] = await sessions.ofAccount(String(tokens.claims()!.sub));
    const upstreamIdToken = session && ((await sessions.upstream(session.id)).logout as OidcLogout | undefined)?.idTokenHint;
    assert.ok(upstreamIdToken && upstreamIdToken.split('.').length === 3, 'the session still gives the upstream ID token to Concord');

    const afterExchange = await dump(prefix);
    for (const [what, value] of [['refresh token', refreshToken], ['upstream ID token', upstreamIdToken], ['its signature', upstreamIdToken.split('.')[2]!]] as const) {
      assert.ok(!afterExchange.includes(value), `the ${what} is in the store in the clear`);
    }
    const { store, secrets } = fed.concord.concord;
    // Written once, at the login's callback, under its own id, which the session's record names (sealed for that id and the account).
    const { k: stateId, ...record } = (await store.getTemp<{ k?: string; a: string }>(`session:${session.id}`))!;
    assert.match(stateId ?? '', /^[A-Za-z0-9_-]{22}$/, 'the record names its state');
    assert.equal(await store.getBytes(`session-upstream:${session.id}`), undefined, 'no second copy under the session');
    const sealed = (await store.getBytes(`session-upstream:${stateId}`))!;
    assert.equal(sealed[0], 0x13, 'the session keeps its upstream state sealed (compressed with the tokens\' dictionary: z3), as bytes, apart from its record');
    assert.throws(() => secrets.openBytes(sealed, `session-upstream:${stateId}:acme:someone-else`), Error, 'bound to its account');
    const state = secrets.openBytes(sealed, `session-upstream:${stateId}:${record.a}`);
    // The previous release's forms, under the session's uid, in a record that names no state of its own.
    await store.setTemp(`session:${session.id}`, record, 600);
    // The previous release's form: the sealed text (z2) as a JSON string, still opens.
    await store.setTemp(`session-upstream:${session.id}`, secrets.seal(state, `session:${session.id}:upstream`, { compress: true }), 600);
    assert.equal(((await sessions.upstream(session.id)).logout as OidcLogout | undefined)?.idTokenHint, upstreamIdToken, 'a z2 state opens');
    // A record of before: the state inline, sealed as before (v2, not compressed), still opens.
    const stored = (await store.getTemp<{ v: number; a: string; t: number; m: Record<string, unknown> }>(`session:${session.id}`))!;
    assert.equal(stored.v, 2, 'the record as written now (sessions/records.ts CompactSession)');
    await store.deleteTemp(`session-upstream:${session.id}`);
    const before = { v: 1, accountId: stored.a, participantId: stored.a.split(':')[0], startedAt: stored.t, confirmedAt: stored.t, claims: stored.m };
    await store.setTemp(`session:${session.id}`, { ...before, sealed: secrets.seal(state, `session:${session.id}:upstream`) }, 600);
    assert.match((await store.getTemp<{ sealed: string }>(`session:${session.id}`))!.sealed, /^v2\./);
    assert.equal(((await sessions.upstream(session.id)).logout as OidcLogout | undefined)?.idTokenHint, upstreamIdToken, 'a v2 record opens');

    // Still usable by its holder: refresh rotates, the old one is spent.
    const refreshed = await oidc.refreshTokenGrant(fed.rp, refreshToken);
    assert.ok(refreshed.access_token);
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, refreshToken), (err: { error?: string }) => err.error === 'invalid_grant');
  });

  it('reads the upstream ID token of accounts saved before the logout record existed (sealed, or older, in the clear) as their logout record', async () => {
    const { store, secrets, accounts } = fed.concord.concord;
    const base = { participantId: 'acme', upstreamIssuer: fed.acme.issuer, upstreamSubject: 'u', claims: {}, updatedAt: 1 };
    await store.setTemp('account:acme:legacy-sealed', { ...base, accountId: 'acme:legacy-sealed', sealedUpstreamIdToken: secrets.seal('a.b.c', 'account:acme:legacy-sealed:upstreamIdToken') }, 60);
    await store.setTemp('account:acme:legacy-clear', { ...base, accountId: 'acme:legacy-clear', upstreamIdToken: 'd.e.f' }, 60);
    assert.deepEqual((await accounts.find('acme:legacy-sealed'))?.upstreamLogout, { protocol: 'oidc', idTokenHint: 'a.b.c' });
    assert.deepEqual((await accounts.find('acme:legacy-clear'))?.upstreamLogout, { protocol: 'oidc', idTokenHint: 'd.e.f' });
    await Promise.all(['acme:legacy-sealed', 'acme:legacy-clear'].map((id) => store.deleteTemp(`account:${id}`)));
  });

  it('keeps a refresh token stored under its value (before this change) working until it expires', async () => {
    const { tokens } = await (async () => {
      const browser = new Browser();
      const auth = await authorizationRequest(fed.rp);
      const callback = await brokeredLogin(browser, auth, { email: 'alice@acme.example' });
      return { tokens: await exchange(fed.rp, callback, auth) };
    })();
    const value = tokens.refresh_token!;
    // Rewrite it as the old code stored it: under the value, with the value as jti.
    const adapter = fed.concord.concord.store.adapter('RefreshToken');
    const hashed = hashedId(tokenIdKey(TEST_SECRETS_KEY, ''), value);
    const payload = (await adapter.find(hashed)) as AdapterPayload;
    assert.ok(payload, 'found under its hash');
    assert.equal(payload.jti, undefined, 'the stored payload does not carry the value');
    await adapter.upsert(value, { ...payload, jti: value }, 3600);
    await adapter.destroy(hashed);
    assert.ok((await dump(prefix)).includes(value), 'the legacy entry is in place');

    const refreshed = await oidc.refreshTokenGrant(fed.rp, value);
    assert.ok(refreshed.refresh_token && refreshed.refresh_token !== value);
    // The rotated one is stored the new way; the legacy one is spent.
    assert.ok(!(await dump(prefix)).includes(refreshed.refresh_token));
    await assert.rejects(oidc.refreshTokenGrant(fed.rp, value), (err: { error?: string }) => err.error === 'invalid_grant');
  });
});
