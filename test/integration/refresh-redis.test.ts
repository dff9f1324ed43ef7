import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { createStore } from '../../src/store/index.ts';
import type { RedisStore } from '../../src/store/redis.ts';
import { authorizationRequest, brokeredLogin, exchange, startFederation, type Federation, type FederationOptions } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { REDIS_URL } from '../support/redis-dump.ts';

/*
 * A refresh on Redis (issue 17, refresh vs bare oidc-provider): what one refresh of a session-bound
 * refresh token sends, by command and round, while rotation, reuse detection and revocation keep
 * working. Rounds: commands issued in one turn of the event loop leave together (auto-pipelining).
 */

/** The commands on a session's and its tokens' keys (under `prefix`) while `fn` runs, each as `{round} {command} {key kind}`. */
async function traced(store: RedisStore, prefix: string, fn: () => Promise<unknown>): Promise<string[]> {
  const client = store.client as unknown as { sendCommand: (command: { name: string; args: unknown[] }, ...rest: unknown[]) => unknown };
  const send = client.sendCommand;
  const seen: string[] = [];
  let round = 0;
  let open = false;
  client.sendCommand = function traced(this: unknown, command: { name: string; args: unknown[] }, ...rest: unknown[]) {
    const key = String(command.args[0] ?? '');
    if (key.startsWith(`${prefix}oidc`) || key.startsWith(`${prefix}tmp:session`)) {
      if (!open) {
        open = true;
        round++;
        setImmediate(() => (open = false));
      }
      const kind = key.slice(prefix.length).replace(/:[^:]*$/, '').replace(/\{.*\}$/, '');
      seen.push(`${round} ${command.name} ${kind}`);
    }
    return send.call(this, command, ...rest);
  };
  try {
    await fn();
  } finally {
    client.sendCommand = send;
  }
  return seen;
}

/** The refresh tokens' keys under `prefix` (SCAN). */
async function refreshTokenKeys(store: RedisStore, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await store.client.scan(cursor, 'MATCH', `${prefix}oidc:RefreshToken:*`, 'COUNT', 500);
    cursor = next;
    for (const key of found) keys.add(key);
  } while (cursor !== '0');
  return keys;
}

/** The one refresh token key under `prefix` that `fn` wrote. */
async function newRefreshTokenKey(store: RedisStore, prefix: string, fn: () => Promise<unknown>): Promise<string> {
  const before = await refreshTokenKeys(store, prefix);
  await fn();
  const added = [...(await refreshTokenKeys(store, prefix))].filter((key) => !before.has(key));
  assert.equal(added.length, 1, 'one refresh token written');
  return added[0]!;
}

/** A federation on its own Redis prefix for the tests of a describe block (started before them, closed after). */
function federationOnRedis(name: string, options: Omit<FederationOptions, 'store' | 'settings'> = {}) {
  const prefix = `${name}-${randomBytes(6).toString('hex')}:`;
  const ctx = { prefix } as { prefix: string; fed: Federation; store: RedisStore };
  before(async () => {
    ctx.store = (await createStore({ url: REDIS_URL, prefix })) as RedisStore;
    ctx.fed = await startFederation({ ...options, store: ctx.store, settings: { storePrefix: prefix, upstream: { healthInterval: 0 } } });
  });
  after(async () => {
    await ctx.fed.close();
    await dropRedisPrefix(prefix);
  });
  return ctx;
}

describe('a refresh on Redis: its commands and rounds', () => {
  const ctx = federationOnRedis('refresh-redis');

  it('reads in one round (the token, its grant, Session and session record together) and writes in one: 10 commands, one grant-index HSET', async () => {
    // Without offline_access: the refresh token ends with its session (oidc-provider reads the Session at each use).
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    const tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' }), auth);
    assert.ok(tokens.refresh_token, 'a refresh token');
    const refreshed: oidc.TokenEndpointResponse[] = [];
    const commands = await traced(ctx.store, ctx.prefix, async () => refreshed.push(await oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!)));
    // This instance issued the token (at the code exchange): its grant, Session and session record are read with it.
    assert.deepEqual(commands, [
      '1 get oidc:RefreshToken',
      '1 get oidc:Grant',
      '1 get oidc:Session',
      '1 get tmp:session',
      '2 set tmp:session-seen',
      '2 set oidc:RefreshToken',
      '2 hset oidc-grant',
      '2 pexpireat oidc-grant',
      '2 set oidc:RefreshToken',
      '2 set oidc:AccessToken',
    ]);
    // Rotation: the new refresh token works, the one used is consumed and its reuse revokes the grant.
    const next = await oidc.refreshTokenGrant(ctx.fed.rp, refreshed[0]!.refresh_token!);
    assert.ok(next.access_token && next.refresh_token);
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'a used refresh token is refused');
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, next.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'its reuse revoked the grant');
  });

  it('an instance that did not issue the token nor see its Session reads what the token names after it, and the Session by its uid index; the refresh works', async () => {
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    const tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' }), auth);
    // As another instance would be: no hints.
    const hints = ctx.store as unknown as Record<'sessionIds' | 'refreshTokenHints', unknown>;
    for (const field of ['sessionIds', 'refreshTokenHints'] as const) hints[field] = new (ctx.store.sessionIds.constructor as new (max: number) => unknown)(10);
    const refreshed: oidc.TokenEndpointResponse[] = [];
    const commands = await traced(ctx.store, ctx.prefix, async () => refreshed.push(await oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!)));
    assert.deepEqual(commands.filter((c) => !c.startsWith('4 ')), ['1 get oidc:RefreshToken', '2 get oidc:Grant', '2 get oidc-uid:Session', '2 get tmp:session', '3 get oidc:Session']);
    // Now this instance issued the token and found the Session: the next refresh reads all four at once.
    const next = await traced(ctx.store, ctx.prefix, () => oidc.refreshTokenGrant(ctx.fed.rp, refreshed[0]!.refresh_token!));
    assert.deepEqual(next.filter((c) => c.startsWith('1 ')), ['1 get oidc:RefreshToken', '1 get oidc:Grant', '1 get oidc:Session', '1 get tmp:session']);
  });

  it('a consumed refresh token keeps only what the refusal of its replay reads; its replay (with a scope) is still refused and revokes the grant', async () => {
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    let tokens!: oidc.TokenEndpointResponse;
    const key = await newRefreshTokenKey(ctx.store, ctx.prefix, async () => (tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' }), auth)));
    const whole = (await ctx.store.client.get(key))!;
    const refreshed = await oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!);
    const raw = (await ctx.store.client.get(key))!;
    assert.match(raw, /^c\d+\|\{/, 'consumed');
    const kept = JSON.parse(raw.slice(raw.indexOf('|') + 1)) as Record<string, unknown>;
    // The client, expiry, grant, scope, account and session (oidc-provider's checks, findAccount, the store's grant index and hints).
    assert.deepEqual(Object.keys(kept).sort(), ['a', 'c', 'exp', 'expiresWithSession', 'grantId', 's', 'sessionUid']);
    assert.deepEqual(kept, Object.fromEntries(Object.entries(JSON.parse(whole) as Record<string, unknown>).filter(([field]) => field in kept)), 'as it was issued');
    assert.ok(raw.length < whole.length - 100, `${raw.length} bytes consumed, ${whole.length} issued`);
    // The replay asks for a scope of the token's: the scope check passes, the consumed one refuses it and revokes the grant.
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!, { scope: 'openid email' }), (err: { error?: string }) => err.error === 'invalid_grant');
    assert.equal(await ctx.store.client.exists(ctx.store.keys.oidc('Grant', String(kept.grantId))), 0, 'the grant revoked');
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, refreshed.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant', 'the rotated token with it');
  });

  it('a refresh token consumed by the previous release (whole, long names) is refused when replayed, and its grant revoked', async () => {
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    let tokens!: oidc.TokenEndpointResponse;
    const key = await newRefreshTokenKey(ctx.store, ctx.prefix, async () => (tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' }), auth)));
    const short = JSON.parse((await ctx.store.client.get(key))!) as Record<string, unknown>;
    // The token as the previous release wrote it once consumed: every field, under oidc-provider's names.
    const long: Record<string, string> = { a: 'accountId', c: 'clientId', s: 'scope', r: 'acr', m: 'amr', t: 'authTime', n: 'nonce', u: 'resource' };
    const before: Record<string, unknown> = { kind: 'RefreshToken', rotations: 0, gty: 'authorization_code', iiat: short.iat, resource: ctx.fed.concord.issuer };
    for (const [field, value] of Object.entries(short)) before[long[field] ?? field] = value;
    assert.equal(await ctx.store.client.set(key, `c${Math.floor(Date.now() / 1000) - 60}|${JSON.stringify(before)}`, 'KEEPTTL', 'XX'), 'OK');
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant');
    assert.equal(await ctx.store.client.exists(ctx.store.keys.oidc('Grant', String(short.grantId))), 0, 'the grant revoked');
    assert.equal(await ctx.store.client.exists(key), 0, 'the token destroyed');
  });

  it('a session ended (logout, revocation) is no longer refreshed, whatever this instance knew of it', async () => {
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    const tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'carol@acme.example' }), auth);
    const first = await oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!);
    const sessions = ctx.fed.concord.concord.sessions;
    const [record] = await sessions.ofAccount(String(tokens.claims()!.sub));
    assert.ok(record, 'the session');
    await sessions.end(record.id, 'admin');
    await assert.rejects(oidc.refreshTokenGrant(ctx.fed.rp, first.refresh_token!), (err: { error?: string }) => err.error === 'invalid_grant');
  });
});

describe('a refresh that asks the upstream again (session.revalidateAfter 0) on Redis', () => {
  const ctx = federationOnRedis('refresh-recheck', { acme: { session: { revalidateAfter: 0 } }, partners: { partner: { refreshTokens: true } } });

  it('holds the lease, reads the record and its upstream state together, confirms, and gives the lease up with the refresh’s writes', async () => {
    const auth = await authorizationRequest(ctx.fed.rp, { scope: 'openid email profile' });
    const tokens = await exchange(ctx.fed.rp, await brokeredLogin(new Browser(), auth, { email: 'alice@acme.example' }), auth);
    const [before] = await ctx.fed.concord.concord.sessions.ofAccount(String(tokens.claims()!.sub));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a confirmation a second later than the login's
    const refreshed: oidc.TokenEndpointResponse[] = [];
    const commands = await traced(ctx.store, ctx.prefix, async () => refreshed.push(await oidc.refreshTokenGrant(ctx.fed.rp, tokens.refresh_token!)));
    const [after] = await ctx.fed.concord.concord.sessions.ofAccount(String(tokens.claims()!.sub));
    assert.ok(after!.confirmedAt > before!.confirmedAt, 'the upstream confirmed the session again');
    assert.deepEqual(commands, [
      '1 get oidc:RefreshToken',
      '1 get oidc:Grant',
      '1 get oidc:Session',
      '1 get tmp:session',
      '2 set tmp:session-lock',
      '3 get tmp:session-upstream',
      '3 get tmp:session',
      '4 get tmp:session',
      '5 set tmp:session',
      '5 set tmp:session-upstream',
      '6 del tmp:session-lock',
      '6 set tmp:session-seen',
      '6 set oidc:RefreshToken',
      '6 hset oidc-grant',
      '6 pexpireat oidc-grant',
      '6 set oidc:RefreshToken',
      '6 set oidc:AccessToken',
    ]);
    assert.equal(await ctx.store.client.exists(`${ctx.prefix}tmp:session-lock:${after!.id}`), 0, 'the lease is given up');
    // The next refresh asks again, with the upstream refresh token this one kept.
    const next = await oidc.refreshTokenGrant(ctx.fed.rp, refreshed[0]!.refresh_token!);
    assert.ok(next.access_token);
  });
});
