/**
 * The Redis store's per-request reads (src/store/request-reads.ts): within one request an
 * oidc-provider record is read from Redis once, the request's own writes are what it reads next,
 * and outside the request (or after it) every read goes to Redis.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createStore, noteSessionId, settleDeferredWrites, withRequestReads, type AdapterPayload, type Store } from '../../src/store/index.ts';
import { indexingAdapter } from '../../src/sessions/index.ts';
import { SessionStore } from '../../src/sessions/records.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import type { RedisStore } from '../../src/store/redis.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { REDIS_URL } from '../support/redis-dump.ts';

describe('Redis store: oidc-provider records read once per request', () => {
  const prefix = `store-reads-${randomBytes(6).toString('hex')}:`;
  let store: RedisStore;
  /** Writes behind the adapter's back, as another instance would. */
  const rawSet = (model: string, id: string, payload: Record<string, unknown>) => store.client.set(store.keys.oidc(model, id), JSON.stringify(payload), 'PX', 60_000);
  /** The keys a grant index names (a HASH of grantField -> ''), sorted. */
  const indexed = async (index: string) => (await store.client.hkeys(index)).map((field) => store.keys.grantFieldKey(field)!).sort();

  /** The keys GET reads from now on (in the order issued), until `restore`. */
  const spyGets = () => {
    const gets: string[] = [];
    const get = store.client.get.bind(store.client);
    (store.client as unknown as Record<string, unknown>).get = (key: string) => {
      gets.push(key);
      return get(key);
    };
    return { gets, restore: () => void ((store.client as unknown as Record<string, unknown>).get = get) };
  };

  before(async () => {
    store = (await createStore({ url: REDIS_URL, prefix })) as Store as RedisStore;
  });
  after(async () => {
    await store.close();
    await dropRedisPrefix(prefix);
  });

  it('a second read in the request answers what the first read, another request reads Redis', async () => {
    const adapter = store.adapter('Interaction');
    await rawSet('Interaction', 'i1', { n: 1 });
    await withRequestReads(async () => {
      const first = await adapter.find('i1');
      assert.deepEqual(first, { n: 1 });
      first!.n = 99; // a caller mutating what it got does not change what the next read answers
      await rawSet('Interaction', 'i1', { n: 2 });
      assert.deepEqual(await adapter.find('i1'), { n: 1 });
    });
    assert.deepEqual(await adapter.find('i1'), { n: 2 }, 'outside a request: Redis');
    await withRequestReads(async () => assert.deepEqual(await adapter.find('i1'), { n: 2 }));
  });

  it('the request reads its own upsert, destroy and consume', async () => {
    const adapter = store.adapter('AuthorizationCode');
    await withRequestReads(async () => {
      assert.equal(await adapter.find('c1'), undefined);
      await adapter.upsert('c1', { n: 1 } as AdapterPayload, 60);
      assert.deepEqual(await adapter.find('c1'), { n: 1 });
      await adapter.consume('c1');
      assert.equal(typeof (await adapter.find('c1'))?.consumed, 'number');
      await adapter.destroy('c1');
      assert.equal(await adapter.find('c1'), undefined);
    });
    assert.equal(await adapter.find('c1'), undefined);
  });

  it('a token bound to a grant and a session has its Grant and its session uid read with it: later finds answer what was read then', async () => {
    await rawSet('Grant', 'g1', { n: 1 });
    await store.client.set(store.keys.uid('Session', 'u1'), 's1', 'PX', 60_000);
    await rawSet('Session', 's1', { n: 1 });
    await rawSet('AuthorizationCode', 'c2', { grantId: 'g1', sessionUid: 'u1', expiresWithSession: true });
    await withRequestReads(async () => {
      assert.ok(await store.adapter('AuthorizationCode').find('c2'));
      // Behind the adapter's back, after the code's read (the same connection: after the reads it issued).
      await rawSet('Grant', 'g1', { n: 2 });
      await store.client.set(store.keys.uid('Session', 'u1'), 's2', 'PX', 60_000);
      assert.deepEqual(await store.adapter('Grant').find('g1'), { n: 1 }, 'the Grant was read with the code');
      assert.deepEqual(await store.adapter('Session').findByUid('u1'), { n: 1, jti: 's1' }, 'the session uid was read with the code (found by uid: its id as its jti)');
      // A write of the request is what it reads next.
      await store.adapter('Grant').upsert('g1', { n: 3 } as AdapterPayload, 60);
      assert.deepEqual(await store.adapter('Grant').find('g1'), { n: 3 });
    });
    assert.deepEqual(await store.adapter('Grant').find('g1'), { n: 3 });
    assert.equal(await store.client.get(store.keys.uid('Session', 'u1')), 's2');
  });

  it("a token of a grant the request knows goes into the grant's index with the grant's end; saving the grant again moves it; revoking reaches it", async () => {
    const grants = store.adapter('Grant');
    const index = store.keys.grant('g9');
    const exp = Math.floor(Date.now() / 1000) + 600;
    await withRequestReads(async () => {
      await grants.upsert('g9', { exp, clientId: 'c', accountId: 'a' } as AdapterPayload, 600);
      await store.adapter('AuthorizationCode').upsert('code9', { grantId: 'g9' } as AdapterPayload, 60);
      await store.adapter('RefreshToken').upsert('rt9', { grantId: 'g9' } as AdapterPayload, 3600);
    });
    const ends = Date.now() + (await store.client.pttl(index)); // PTTL: Redis 6.2 has no PEXPIRETIME
    assert.ok(Math.abs(ends - exp * 1000) <= 1000, `the index ends with the grant: ${ends} vs ${exp * 1000}`);
    assert.deepEqual(await indexed(index), [store.keys.oidc('AuthorizationCode', 'code9'), store.keys.oidc('RefreshToken', 'rt9')]);
    // Found and saved again in a request, for longer: the index follows.
    await withRequestReads(async () => {
      assert.ok(await grants.find('g9'));
      await grants.upsert('g9', { exp: exp + 1200, clientId: 'c', accountId: 'a' } as AdapterPayload, 1800);
    });
    assert.ok((await store.client.pttl(index)) > 1_200_000, 'the index lives as long as the grant saved again in a request');
    // Saved again outside a request, for longer still: the index follows.
    await grants.upsert('g9', { exp: exp + 3000, clientId: 'c', accountId: 'a' } as AdapterPayload, 3600);
    assert.ok((await store.client.pttl(index)) > 3_000_000, 'the index lives as long as the grant saved again');
    // Outside a request the grant is not known: the token's own lifetime, never shortening the index.
    await store.adapter('AccessToken').upsert('at9', { grantId: 'g9' } as AdapterPayload, 60);
    assert.ok((await store.client.pttl(index)) > 3_000_000);
    await store.adapter('AccessToken').revokeByGrantId('g9');
    for (const [model, tid] of [['AuthorizationCode', 'code9'], ['RefreshToken', 'rt9'], ['AccessToken', 'at9']] as const) {
      assert.equal(await store.adapter(model).find(tid), undefined, `${model} revoked`);
    }
  });

  it("an access token and a refresh token saved one after the other in a request (either order) go into their grant's index in one HSET; one saved alone is written by the request's end", async () => {
    const grants = store.adapter('Grant');
    const index = store.keys.grant('gb1');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const calls: string[] = [];
    const spy = (name: 'hset' | 'pexpireat') => {
      const original = store.client[name].bind(store.client) as (...args: unknown[]) => Promise<unknown>;
      (store.client as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.push(`${name} ${args.length - 1}`);
        return original(...args);
      };
      return () => ((store.client as unknown as Record<string, unknown>)[name] = original);
    };
    const restore = [spy('hset'), spy('pexpireat')];
    try {
      await withRequestReads(async () => {
        await grants.upsert('gb1', { exp, clientId: 'c', accountId: 'a' } as AdapterPayload, 600);
        calls.length = 0;
        await store.adapter('AccessToken').upsert('atb1', { grantId: 'gb1' } as AdapterPayload, 300);
        await store.adapter('RefreshToken').upsert('rtb1', { grantId: 'gb1' } as AdapterPayload, 600);
      });
      assert.deepEqual(calls, ['hset 4', 'pexpireat 1'], 'one HSET of both members, one PEXPIREAT');
      assert.deepEqual(await indexed(index), [store.keys.oidc('AccessToken', 'atb1'), store.keys.oidc('RefreshToken', 'rtb1')]);
      assert.ok(await store.client.exists(store.keys.oidc('AccessToken', 'atb1')));
      const ends = Date.now() + (await store.client.pttl(index));
      assert.ok(Math.abs(ends - exp * 1000) <= 1000, 'the index ends with the grant');
      calls.length = 0;
      await withRequestReads(async () => {
        assert.ok(await grants.find('gb1'));
        await store.adapter('AccessToken').upsert('atb2', { grantId: 'gb1' } as AdapterPayload, 300);
      });
      assert.deepEqual(calls, ['hset 2', 'pexpireat 1']);
      assert.ok(await store.client.exists(store.keys.oidc('AccessToken', 'atb2')), 'written by the request’s end');
      assert.ok((await indexed(index)).includes(store.keys.oidc('AccessToken', 'atb2')));
      // A refresh saves them the other way round: the rotated refresh token, then the access token.
      calls.length = 0;
      await withRequestReads(async () => {
        assert.ok(await grants.find('gb1'));
        await store.adapter('RefreshToken').upsert('rtb2', { grantId: 'gb1' } as AdapterPayload, 600);
        await store.adapter('AccessToken').upsert('atb3', { grantId: 'gb1' } as AdapterPayload, 300);
      });
      assert.deepEqual(calls, ['hset 4', 'pexpireat 1'], 'a refresh token and the access token saved after it: one HSET, one PEXPIREAT');
      assert.ok((await indexed(index)).includes(store.keys.oidc('RefreshToken', 'rtb2')) && (await indexed(index)).includes(store.keys.oidc('AccessToken', 'atb3')));
      assert.equal(await store.client.exists(store.keys.oidc('RefreshToken', 'rtb2'), store.keys.oidc('AccessToken', 'atb3')), 2, 'both written by the request’s end');
    } finally {
      for (const undo of restore) undo();
    }
    await store.adapter('AccessToken').revokeByGrantId('gb1');
    for (const [model, tid] of [['AccessToken', 'atb1'], ['RefreshToken', 'rtb1'], ['AccessToken', 'atb2'], ['RefreshToken', 'rtb2'], ['AccessToken', 'atb3']] as const) assert.equal(await store.adapter(model).find(tid), undefined, `${model} revoked`);
  });

  it('consuming what the request read writes its consumed form in place: TTL kept, nothing created when it is gone meanwhile', async () => {
    const codes = store.adapter('AuthorizationCode');
    await rawSet('AuthorizationCode', 'k1', { n: 1 });
    await withRequestReads(async () => {
      assert.deepEqual(await codes.find('k1'), { n: 1 });
      await codes.consume('k1');
      assert.equal(typeof (await codes.find('k1'))?.consumed, 'number');
      await codes.consume('k1'); // again, from its consumed form
    });
    const raw = await store.client.get(store.keys.oidc('AuthorizationCode', 'k1'));
    assert.match(raw!, /^c\d+\|\{"n":1\}$/);
    const ttl = await store.client.pttl(store.keys.oidc('AuthorizationCode', 'k1'));
    assert.ok(ttl > 50_000 && ttl <= 60_000, `the TTL is kept: ${ttl}`);
    await rawSet('AuthorizationCode', 'k2', { n: 2 });
    await withRequestReads(async () => {
      assert.ok(await codes.find('k2'));
      await store.client.del(store.keys.oidc('AuthorizationCode', 'k2')); // revoked meanwhile
      await codes.consume('k2');
      assert.equal(await codes.find('k2'), undefined);
    });
    assert.equal(await store.client.exists(store.keys.oidc('AuthorizationCode', 'k2')), 0, 'consuming a gone token creates nothing');
  });

  it('a consumed authorization code keeps what the refusal of its replay reads (client, expiry, grant, PKCE, redirect_uri), not the login it carried', async () => {
    const codes = store.adapter('AuthorizationCode');
    const code = {
      iat: 1, exp: 2, accountId: 'acme:u1', acr: 'urn:x', amr: ['pwd'], authTime: 1, codeChallenge: 'ch', codeChallengeMethod: 'S256', grantId: 'g1', nonce: 'n',
      redirectUri: 'https://rp.example/cb', resource: 'https://concord.example', scope: 'openid email', sessionUid: 'su', clientId: 'rp', expiresWithSession: true, dpopJkt: 'jkt',
    };
    await rawSet('AuthorizationCode', 'cc1', code);
    await withRequestReads(async () => {
      assert.ok(await codes.find('cc1'));
      await codes.consume('cc1');
    });
    const raw = (await store.client.get(store.keys.oidc('AuthorizationCode', 'cc1')))!;
    assert.match(raw, /^c\d+\|/);
    assert.deepEqual(JSON.parse(raw.slice(raw.indexOf('|') + 1)), { iat: 1, exp: 2, codeChallenge: 'ch', codeChallengeMethod: 'S256', grantId: 'g1', redirectUri: 'https://rp.example/cb', clientId: 'rp', dpopJkt: 'jkt' });
    const found = await codes.find('cc1');
    assert.equal(typeof found?.consumed, 'number');
    // Other models are consumed whole.
    await rawSet('RefreshToken', 'rc1', { exp: 2, accountId: 'acme:u1', grantId: 'g1' });
    await withRequestReads(async () => {
      assert.ok(await store.adapter('RefreshToken').find('rc1'));
      await store.adapter('RefreshToken').consume('rc1');
    });
    assert.match(String(await store.client.get(store.keys.oidc('RefreshToken', 'rc1'))), /^c\d+\|\{"exp":2,"accountId":"acme:u1","grantId":"g1"\}$/);
  });

  it("an Interaction's destroy is deferred to the request's next write, or its end; outside a request it is waited for", async () => {
    const interactions = store.adapter('Interaction');
    const key = (id: string) => store.keys.oidc('Interaction', id);
    await rawSet('Interaction', 'd1', { n: 1 });
    await rawSet('Interaction', 'd2', { n: 2 });
    await withRequestReads(async () => {
      await interactions.destroy('d1');
      assert.equal(await interactions.find('d1'), undefined, 'the request reads it gone');
      await store.adapter('Grant').upsert('dg', { n: 1 } as AdapterPayload, 60);
      assert.equal(await store.client.exists(key('d1')), 0, 'the next write waited for the delete');
      await interactions.destroy('d2');
    });
    assert.equal(await store.client.exists(key('d2')), 0, 'the end of the request waited for the delete');
    await rawSet('Interaction', 'd3', { n: 3 });
    await interactions.destroy('d3');
    assert.equal(await store.client.exists(key('d3')), 0);
  });

  it("a Session's, a Grant's, a refresh token's and an access token's saves are deferred within a request: settleDeferredWrites and the request's end wait for it", async () => {
    const sessionsIndexed = indexingAdapter(store, 'Session', 3600);
    await withRequestReads(async () => {
      await sessionsIndexed.upsert('sd1', { uid: 'ud1', accountId: 'acme:deferred' } as AdapterPayload, 600);
      await settleDeferredWrites();
      assert.equal(await store.client.exists(store.keys.oidc('Session', 'sd1')), 1, 'settled: written');
      assert.deepEqual(await store.setMembers('sessions-of-account:acme:deferred'), ['ud1']);
      await sessionsIndexed.upsert('sd2', { uid: 'ud2', accountId: 'acme:deferred' } as AdapterPayload, 600);
      // A Grant's save (through the account index) and an access token's are deferred alike; the request reads them.
      await indexingAdapter(store, 'Grant', 3600).upsert('gd1', { accountId: 'acme:deferred' } as AdapterPayload, 600);
      await store.adapter('RefreshToken').upsert('rtd1', { grantId: 'gd1' } as AdapterPayload, 600);
      await store.adapter('AccessToken').upsert('atd1', { grantId: 'gd1' } as AdapterPayload, 60);
      assert.deepEqual(await store.adapter('RefreshToken').find('rtd1'), { grantId: 'gd1' });
      assert.deepEqual(await store.adapter('AccessToken').find('atd1'), { grantId: 'gd1' });
    });
    for (const [model, id] of [['Session', 'sd2'], ['Grant', 'gd1'], ['RefreshToken', 'rtd1'], ['AccessToken', 'atd1']] as const) {
      assert.equal(await store.client.exists(store.keys.oidc(model, id)), 1, `the end of the request waited for the ${model}`);
    }
    assert.deepEqual(await indexed(store.keys.grant('gd1')), [store.keys.oidc('AccessToken', 'atd1'), store.keys.oidc('RefreshToken', 'rtd1')].sort());
    assert.deepEqual((await store.setMembers('sessions-of-account:acme:deferred')).sort(), ['g:gd1', 'ud1', 'ud2'], 'sessions by uid, grants by id, one index');
  });

  it("a refresh's writes leave in one round trip: the session's refresh note, the old refresh token's consume, the new one's save and the access token's (deferred)", async () => {
    await rawSet('RefreshToken', 'rto1', { grantId: 'gr1', accountId: 'acme:r' });
    // Writes to Redis: a round trip each (ioredis sends the commands of one tick in one write).
    const socket = (store.client as unknown as { stream: { write: (...args: unknown[]) => boolean } }).stream;
    const write = socket.write;
    let writes = 0;
    socket.write = function counted(this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    try {
      await withRequestReads(async () => {
        const refreshTokens = store.adapter('RefreshToken');
        assert.ok(await refreshTokens.find('rto1'));
        const before = writes;
        await new SessionStore(store, createSecretBox(undefined), 600).seen('su1', 1_700_000_000);
        await refreshTokens.consume('rto1');
        await refreshTokens.upsert('rtn1', { grantId: 'gr1', accountId: 'acme:r' } as AdapterPayload, 600);
        await store.adapter('AccessToken').upsert('atn1', { grantId: 'gr1', accountId: 'acme:r' } as AdapterPayload, 60);
        await settleDeferredWrites();
        assert.equal(writes - before, 1, 'one write for the four');
      });
    } finally {
      socket.write = write;
    }
    assert.equal(await store.client.exists(store.keys.oidc('RefreshToken', 'rtn1'), store.keys.oidc('AccessToken', 'atn1')), 2);
    assert.match(String(await store.client.get(store.keys.oidc('RefreshToken', 'rto1'))), /^c\d+\|/, 'consumed');
    assert.deepEqual(await store.getTemp('session-seen:su1'), { refreshedAt: 1_700_000_000 });
  });

  it('a set add the request already made (same member, as long a lifetime) is not sent again; a longer one, or another request, is', async () => {
    const key = `adds-${randomBytes(4).toString('hex')}`;
    const raw = store.keys.set(key);
    await withRequestReads(async () => {
      await store.addToSet(key, 'm', 600);
      await store.client.del(raw); // behind the store's back: a second send would write it again
      await store.addToSet(key, 'm', 600);
      assert.equal(await store.client.exists(raw), 0, 'the repeated add was sent');
      await store.addToSet(key, 'm', 300);
      assert.equal(await store.client.exists(raw), 0, 'a shorter add was sent');
      await store.addToSet(key, 'other', 600);
      assert.deepEqual(await store.setMembers(key), ['other'], 'another member is its own add');
      await store.addToSet(key, 'm', 3600);
      assert.deepEqual((await store.setMembers(key)).sort(), ['m', 'other'], 'a longer add is sent');
      const ttl = await store.client.pttl(raw);
      assert.ok(ttl > 600_000 && ttl <= 3_600_000, `the longer lifetime: ${ttl} ms`);
      await store.removeFromSet(key, 'm');
      await store.addToSet(key, 'm', 600);
      assert.deepEqual((await store.setMembers(key)).sort(), ['m', 'other'], 'an add after a removal is sent');
      await store.deleteSet(key);
      await store.addToSet(key, 'other', 600);
      assert.deepEqual(await store.setMembers(key), ['other'], 'an add after the set was deleted is sent');
    });
    await store.client.del(raw);
    await withRequestReads(async () => store.addToSet(key, 'm', 600));
    assert.deepEqual(await store.setMembers(key), ['m'], 'another request sends it');
    await store.client.del(raw);
    await store.addToSet(key, 'm', 600);
    assert.deepEqual(await store.setMembers(key), ['m'], 'outside a request it is sent');
  });

  it('another member added to a set the request made live as long is its add (HSET) and PEXPIRE NX: no GT; a set emptied meanwhile gets its lifetime again', async () => {
    const key = `lives-${randomBytes(4).toString('hex')}`;
    const raw = store.keys.set(key);
    await withRequestReads(async () => {
      await store.addToSet(key, 'a', 600);
      await store.client.pexpire(raw, 5_000); // behind the store's back: a GT would lengthen it again
      await store.addToSet(key, 'b', 600);
      const ttl = await store.client.pttl(raw);
      assert.ok(ttl > 0 && ttl <= 5_000, `no GT was sent: ${ttl} ms`);
      await store.addToSet(key, 'c', 3600);
      assert.ok((await store.client.pttl(raw)) > 600_000, 'a later end is asked in full');
      await store.client.del(raw); // as another request's SREMs emptying it
      await store.addToSet(key, 'd', 600);
      assert.deepEqual(await store.setMembers(key), ['d']);
      assert.ok((await store.client.pttl(raw)) > 0, 'the set made again has a lifetime');
      await store.removeFromSet(key, 'none');
      await store.client.pexpire(raw, 5_000);
      await store.addToSet(key, 'e', 600);
      const again = await store.client.pttl(raw);
      assert.ok(again > 500_000, `after a removal in the request, the add is sent in full: ${again} ms`);
    });
    await store.client.del(raw);
  });

  it("a code saved in a request that knows its Session names the Session's id: its use reads that Session with the Grant, not the uid index; a Session whose id changed is found by uid", async () => {
    const sessions = store.adapter('Session');
    const codes = store.adapter('AuthorizationCode');
    const uidKey = store.keys.uid('Session', 'hu1');
    await withRequestReads(async () => {
      await sessions.upsert('hs1', { uid: 'hu1', accountId: 'a' } as AdapterPayload, 60);
      await codes.upsert('hc1', { grantId: 'hg1', sessionUid: 'hu1', expiresWithSession: true } as AdapterPayload, 60);
      await store.adapter('RefreshToken').upsert('hr1', { grantId: 'hg1', sessionUid: 'hu1', expiresWithSession: true } as AdapterPayload, 60);
    });
    assert.match((await store.client.get(store.keys.oidc('AuthorizationCode', 'hc1')))!, /"sessionJti":"hs1"/, 'the code keeps its session’s id');
    assert.doesNotMatch((await store.client.get(store.keys.oidc('RefreshToken', 'hr1')))!, /sessionJti/, 'a refresh token, kept for weeks, does not');
    // Noted by whoever issues it (oidc-provider's session of the request), before the Session is saved.
    await withRequestReads(async () => {
      noteSessionId('hu2', 'hs2');
      await codes.upsert('hc2', { grantId: 'hg1', sessionUid: 'hu2', expiresWithSession: true } as AdapterPayload, 60);
    });
    assert.match((await store.client.get(store.keys.oidc('AuthorizationCode', 'hc2')))!, /"sessionJti":"hs2"/);
    await withRequestReads(async () => {
      const code = await codes.find('hc1');
      assert.deepEqual(code, { grantId: 'hg1', sessionUid: 'hu1', expiresWithSession: true }, 'the id is not handed out');
      // Behind the adapter's back, after the code's read: the uid index is not what answers.
      await store.client.set(uidKey, 'elsewhere', 'PX', 60_000);
      assert.deepEqual(await sessions.findByUid('hu1'), { uid: 'hu1', accountId: 'a', jti: 'hs1' }, 'the Session read with the code, by its id');
    });
    // The session's id changed since (oidc-provider gives a session a new id at a new login): found by uid.
    await store.client.del(store.keys.oidc('Session', 'hs1'));
    await rawSet('Session', 'hs1b', { uid: 'hu1', accountId: 'a', n: 2 });
    await store.client.set(uidKey, 'hs1b', 'PX', 60_000);
    await withRequestReads(async () => {
      assert.ok(await codes.find('hc1'));
      assert.deepEqual(await sessions.findByUid('hu1'), { uid: 'hu1', accountId: 'a', n: 2, jti: 'hs1b' });
    });
    // A Session under the named id with another uid is not this token's.
    await rawSet('Session', 'hs1', { uid: 'other', accountId: 'a' });
    await withRequestReads(async () => {
      assert.ok(await codes.find('hc1'));
      assert.deepEqual(await sessions.findByUid('hu1'), { uid: 'hu1', accountId: 'a', n: 2, jti: 'hs1b' });
    });
  });

  it("a refresh token whose Session this store saved or read before reads that Session by id with its Grant, not the uid index first; a hint that no longer holds falls back to the uid index", async () => {
    const sessions = store.adapter('Session');
    const refreshTokens = store.adapter('RefreshToken');
    const uidKey = store.keys.uid('Session', 'ku1');
    await sessions.upsert('ks1', { uid: 'ku1', accountId: 'a' } as AdapterPayload, 60);
    await rawSet('RefreshToken', 'kr1', { grantId: 'kg1', sessionUid: 'ku1', expiresWithSession: true });
    const { gets, restore } = spyGets();
    try {
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('kr1'));
        assert.deepEqual(gets.slice(1), [store.keys.oidc('Grant', 'kg1'), store.keys.oidc('Session', 'ks1')], 'issued as the token is read, together');
        assert.equal((await sessions.findByUid('ku1'))?.jti, 'ks1');
      });
      assert.ok(!gets.includes(uidKey), 'the uid index is not read');
      // The session got a new id (a new login in it), behind this store's back: the hint finds nothing, the uid index answers.
      await store.client.del(store.keys.oidc('Session', 'ks1'));
      await rawSet('Session', 'ks2', { uid: 'ku1', accountId: 'a' });
      await store.client.set(uidKey, 'ks2', 'PX', 60_000);
      gets.length = 0;
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('kr1'));
        assert.equal((await sessions.findByUid('ku1'))?.jti, 'ks2');
      });
      assert.deepEqual(gets.slice(2), [store.keys.oidc('Session', 'ks1'), uidKey, store.keys.oidc('Session', 'ks2')], 'the hinted id, then the uid index and what it names');
      // A Session under the hinted id that is another uid's does not count either.
      await rawSet('Session', 'ks2', { uid: 'other', accountId: 'a' });
      await rawSet('Session', 'ks3', { uid: 'ku1', accountId: 'a' });
      await store.client.set(uidKey, 'ks3', 'PX', 60_000);
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('kr1'));
        assert.equal((await sessions.findByUid('ku1'))?.jti, 'ks3');
      });
      // Now known: read by id again.
      gets.length = 0;
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('kr1'));
        assert.equal((await sessions.findByUid('ku1'))?.jti, 'ks3');
      });
      assert.ok(!gets.includes(uidKey) && gets.includes(store.keys.oidc('Session', 'ks3')));
      // Gone: no Session at all.
      await store.client.del(store.keys.oidc('Session', 'ks3'), uidKey);
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('kr1'));
        assert.equal(await sessions.findByUid('ku1'), undefined);
      });
    } finally {
      restore();
    }
  });

  it("a refresh token this store saved is read with its grant, its Session and its session's records (readSessionsWith); what the token names decides, and a consumed one is forgotten", async () => {
    const refreshTokens = store.adapter('RefreshToken');
    const named: string[] = [];
    store.readSessionsWith((uid) => named.push(uid));
    await store.adapter('Session').upsert('ts1', { uid: 'tu1', accountId: 'a' } as AdapterPayload, 60);
    await refreshTokens.upsert('tr1', { grantId: 'tg1', sessionUid: 'tu1', expiresWithSession: true } as AdapterPayload, 60);
    await refreshTokens.upsert('tr2', { grantId: 'tg2', sessionUid: 'tu2' } as AdapterPayload, 60);
    const { gets, restore } = spyGets();
    try {
      await withRequestReads(async () => {
        const found = refreshTokens.find('tr1');
        assert.deepEqual(gets, [store.keys.oidc('RefreshToken', 'tr1'), store.keys.oidc('Grant', 'tg1'), store.keys.oidc('Session', 'ts1')], 'issued with the token’s own read');
        assert.deepEqual(named, ['tu1']);
        assert.ok(await found);
      });
      // Not bound to its session (offline_access): its grant and its session's records, no Session.
      gets.length = 0;
      named.length = 0;
      await withRequestReads(async () => {
        const found = refreshTokens.find('tr2');
        assert.deepEqual(gets, [store.keys.oidc('RefreshToken', 'tr2'), store.keys.oidc('Grant', 'tg2')]);
        assert.deepEqual(named, ['tu2']);
        await found;
      });
      // Saved again by another instance with another grant: the hint's reads are extra, the token's own follow.
      await rawSet('RefreshToken', 'tr2', { grantId: 'tg3' });
      gets.length = 0;
      await withRequestReads(async () => {
        assert.equal((await refreshTokens.find('tr2'))?.grantId, 'tg3');
        assert.ok(gets.includes(store.keys.oidc('Grant', 'tg3')), 'the grant the token names is read');
      });
      // Consumed: forgotten (a reuse reads the token first, as any instance does).
      await withRequestReads(async () => {
        assert.ok(await refreshTokens.find('tr1'));
        await refreshTokens.consume('tr1');
      });
      gets.length = 0;
      await withRequestReads(async () => {
        const found = refreshTokens.find('tr1');
        assert.deepEqual(gets, [store.keys.oidc('RefreshToken', 'tr1')]);
        await found;
      });
      // Outside a request nothing is read ahead.
      gets.length = 0;
      await refreshTokens.find('tr2');
      assert.deepEqual(gets, [store.keys.oidc('RefreshToken', 'tr2')]);
    } finally {
      restore();
      store.readSessionsWith(() => {});
    }
  });

  it('work a request started that outlives it reads Redis', async () => {
    const adapter = store.adapter('Session');
    await rawSet('Session', 's1', { n: 1 });
    let later: Promise<AdapterPayload | undefined | void> | undefined;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await withRequestReads(async () => {
      assert.deepEqual(await adapter.find('s1'), { n: 1 });
      later = gate.then(() => adapter.find('s1'));
    });
    await rawSet('Session', 's1', { n: 2 });
    release();
    assert.deepEqual(await later, { n: 2 });
  });
});
