/**
 * The storage conformance suite: one list of cases, run against every backend (memory, a
 * standalone Redis, a 3-master Redis Cluster, and a primary with a replica behind a Sentinel, all
 * started here on loopback ports). A backend is done when this passes. Then fault tests of the Redis
 * backend: Redis going away (SIGTERM), hanging (SIGSTOP), coming back on the same port, a Sentinel
 * failover and a Cluster failover.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { createSecretBox } from '../../src/secrets/index.ts';
import { SessionStore } from '../../src/sessions/records.ts';
import { createStore, MemoryStore, withRequestReads, type Store } from '../../src/store/index.ts';
import { CLUSTER_SLOTS_REFRESH_MS, createRedisStore, RedisStore } from '../../src/store/redis.ts';
import { startRedis, startRedisCluster, startRedisSentinel, type RedisSentinel, type RedisServer } from '../support/redis-server.ts';

interface Ctx {
  store: Store;
  /** A second instance on the same backend (the same object for memory, which cannot share). */
  other: Store;
}

interface Backend {
  name: 'memory' | 'redis' | 'redis-cluster' | 'redis-sentinel';
  open(): Promise<Ctx & { close(): Promise<void> }>;
}

const id = (label = 'x') => `${label}-${randomUUID().slice(0, 8)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds; fails after `timeoutMs`. */
async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 6000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** OBJECT ENCODING and MEMORY USAGE of a key, through a script on it (so a Cluster client sends it to the key's node). */
const encodingOf = (store: RedisStore, key: string) => store.client.eval("return redis.call('OBJECT', 'ENCODING', KEYS[1])", 1, key) as Promise<string>;
const memoryOf = async (store: RedisStore, key: string) => Number(await store.client.eval("return redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', 0)", 1, key));

const byId = <T extends { id: string }>(rows: T[]) => [...rows].sort((a, b) => a.id.localeCompare(b.id));

const cases: Array<{ name: string; run(ctx: Ctx): Promise<void> }> = [
  {
    name: 'records: put, get, overwrite, list, delete',
    async run({ store, other }) {
      const col = id('col');
      assert.equal(await store.getRecord(col, 'a'), undefined);
      assert.deepEqual(await store.listRecords(col), []);
      await store.putRecord(col, 'a', { n: 1, tags: ['x'], nested: { ok: true } });
      await store.putRecord(col, 'b', { n: 2, tags: [], nested: null });
      assert.deepEqual(await store.getRecord(col, 'a'), { n: 1, tags: ['x'], nested: { ok: true } });
      assert.deepEqual(await other.getRecord(col, 'b'), { n: 2, tags: [], nested: null });
      await store.putRecord(col, 'a', { n: 3 });
      assert.deepEqual(await store.getRecord(col, 'a'), { n: 3 });
      assert.deepEqual(byId(await store.listRecords(col)), [
        { id: 'a', value: { n: 3 } },
        { id: 'b', value: { n: 2, tags: [], nested: null } },
      ]);
      assert.equal(await store.deleteRecord(col, 'a'), true);
      assert.equal(await store.deleteRecord(col, 'a'), false);
      assert.equal(await store.getRecord(col, 'a'), undefined);
      assert.deepEqual(await store.listRecords(col), [{ id: 'b', value: { n: 2, tags: [], nested: null } }]);
      // Collections are apart, whatever their names.
      const odd = `${col}{with}braces}`;
      await store.putRecord(odd, 'a', 'string value');
      assert.equal(await store.getRecord(odd, 'a'), 'string value');
      assert.equal(await store.getRecord(col, 'a'), undefined);
      assert.deepEqual(await store.listRecords(odd), [{ id: 'a', value: 'string value' }]);
    },
  },
  {
    name: 'records: values are copies',
    async run({ store }) {
      const col = id('col');
      const value = { list: [1] };
      await store.putRecord(col, 'a', value);
      value.list.push(2);
      const read = await store.getRecord<{ list: number[] }>(col, 'a');
      assert.deepEqual(read, { list: [1] });
      read!.list.push(3);
      assert.deepEqual(await store.getRecord(col, 'a'), { list: [1] });
    },
  },
  {
    name: 'temp: set, get, take, delete',
    async run({ store, other }) {
      const key = id('tmp');
      assert.equal(await store.getTemp(key), undefined);
      await store.setTemp(key, { state: 's', at: 1 }, 60);
      assert.deepEqual(await other.getTemp(key), { state: 's', at: 1 });
      await store.setTemp(key, { state: 't' }, 60);
      assert.deepEqual(await store.takeTemp(key), { state: 't' });
      assert.equal(await store.takeTemp(key), undefined);
      assert.equal(await store.getTemp(key), undefined);
      await store.setTemp(key, 'v', 60);
      await store.deleteTemp(key);
      assert.equal(await store.getTemp(key), undefined);
      await store.deleteTemp(key); // deleting what is not there is fine
      await store.setTemp(key, 'already expired', 0);
      assert.equal(await store.getTemp(key), undefined);
    },
  },
  {
    name: 'temp: gone after its TTL, others stay',
    async run({ store }) {
      const short = id('short');
      const long = id('long');
      await store.setTemp(short, 'short', 1);
      await store.setTemp(long, 'long', 60);
      assert.equal(await store.getTemp(short), 'short');
      await eventually(async () => (await store.getTemp(short)) === undefined, 6000, 'expiry of a 1 s temp value');
      assert.equal(await store.takeTemp(short), undefined);
      assert.equal(await store.getTemp(long), 'long');
    },
  },
  {
    name: 'temp: takeTemp is atomic (N parallel takes on two instances, one value)',
    async run({ store, other }) {
      for (let round = 0; round < 5; round++) {
        const key = id('once');
        await store.setTemp(key, { round }, 60);
        const takes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).takeTemp(key)));
        const got = takes.filter((t) => t !== undefined);
        assert.deepEqual(got, [{ round }], `round ${round}: ${got.length} takers got the value`);
      }
    },
  },
  {
    name: 'temp: swapTemp sets a value and answers the one it replaced, atomically (N parallel swaps on two instances, one gets the value)',
    async run({ store, other }) {
      for (let round = 0; round < 5; round++) {
        const key = id('swap');
        await store.setTemp(key, { round }, 60);
        const swaps = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).swapTemp(key, { taken: i }, 60)));
        assert.deepEqual(swaps.filter((s) => s !== undefined && !('taken' in (s as object))), [{ round }], `round ${round}: the value went to one swap`);
        assert.equal(swaps.filter((s) => s === undefined).length, 0, 'every other swap got the marker of the one before it');
        assert.ok('taken' in ((await other.getTemp<object>(key)) ?? {}), 'a marker stays');
      }
      const absent = id('swap');
      assert.equal(await store.swapTemp(absent, 'marker', 1), undefined, 'nothing was there');
      assert.equal(await other.getTemp(absent), 'marker');
      await eventually(async () => (await store.getTemp(absent)) === undefined, 6000, 'expiry of a 1 s marker');
      const taken = id('swap');
      await store.setTemp(taken, 'v', 60);
      assert.equal(await store.swapTemp(taken, 'marker', 0), 'v', 'no lifetime: taken');
      assert.equal(await other.getTemp(taken), undefined);
    },
  },
  {
    name: 'temp: claimTemp sets only an absent key, atomically (N parallel claims on two instances, one winner), and frees it after its TTL',
    async run({ store, other }) {
      for (let round = 0; round < 5; round++) {
        const key = id('lease');
        const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).claimTemp(key, { holder: i }, 60)));
        assert.equal(claims.filter(Boolean).length, 1, `round ${round}: ${claims.filter(Boolean).length} claimants won`);
        assert.deepEqual(await store.getTemp(key), { holder: claims.indexOf(true) });
        // Held: nobody else gets it, and the holder's value stays.
        assert.equal(await other.claimTemp(key, { holder: 'late' }, 60), false);
        assert.deepEqual(await other.getTemp(key), { holder: claims.indexOf(true) });
        await store.deleteTemp(key);
        assert.equal(await other.claimTemp(key, { holder: 'next' }, 60), true);
        assert.deepEqual(await store.getTemp(key), { holder: 'next' });
      }
      const short = id('lease');
      assert.equal(await store.claimTemp(short, 'first', 1), true);
      await eventually(async () => (await store.getTemp(short)) === undefined, 6000, 'expiry of a 1 s lease');
      assert.equal(await other.claimTemp(short, 'after expiry', 60), true);
      assert.equal(await store.claimTemp(id('lease'), 'no lifetime', 0), false);
    },
  },
  {
    name: 'counters: incr and getCounter, concurrent increments are distinct',
    async run({ store, other }) {
      const key = id('ctr');
      assert.equal(await store.getCounter(key), 0);
      assert.equal(await store.incr(key), 1);
      assert.equal(await other.incr(key), 2);
      assert.equal(await store.getCounter(key), 2);
      const values = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? other : store).incr(key)));
      assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 3));
      assert.equal(await other.getCounter(key), 42);
    },
  },
  {
    name: 'logs: append numbers entries, page goes newest first and backwards',
    async run({ store }) {
      const log = id('log');
      assert.deepEqual(await store.page(log, { limit: 10 }), []);
      for (let i = 1; i <= 25; i++) assert.equal(await store.append(log, { i }), i);
      const seqs = (page: Array<{ seq: number; entry: unknown }>) => page.map((e) => e.seq);
      const first = await store.page<{ i: number }>(log, { limit: 10 });
      assert.deepEqual(seqs(first), [25, 24, 23, 22, 21, 20, 19, 18, 17, 16]);
      assert.deepEqual(first.map((e) => e.entry.i), seqs(first));
      const second = await store.page(log, { before: 16, limit: 10 });
      assert.deepEqual(seqs(second), [15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
      const third = await store.page(log, { before: 6, limit: 10 });
      assert.deepEqual(seqs(third), [5, 4, 3, 2, 1]);
      assert.deepEqual(third.at(-1), { seq: 1, entry: { i: 1 } });
      assert.deepEqual(await store.page(log, { before: 1, limit: 10 }), []);
      assert.deepEqual(seqs(await store.page(log, { before: 1000, limit: 3 })), [25, 24, 23]);
      assert.deepEqual(await store.page(log, { limit: 0 }), []);
      assert.deepEqual(await store.page(id('log'), { before: 5, limit: 3 }), []);
    },
  },
  {
    name: 'logs: concurrent appends get distinct, gapless sequence numbers',
    async run({ store, other }) {
      const log = id('log');
      const seqs = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? other : store).append(log, { i })));
      assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1));
      const page = await store.page<{ i: number }>(log, { limit: 100 });
      assert.equal(page.length, 30);
      for (const { seq, entry } of page) assert.equal(seqs[entry.i], seq);
    },
  },
  {
    name: 'temp bytes: kept as they are (every byte value), with a lifetime; a value setTemp wrote reads as its JSON text',
    async run({ store, other }) {
      const key = id('bytes');
      const bytes = Buffer.from([0x13, 0x00, 0xff, 0x22, 0x80, ...Buffer.from('é 💡', 'utf8'), ...Array.from({ length: 600 }, (_, i) => i % 256)]);
      assert.equal(await store.getBytes(key), undefined);
      await store.setBytes(key, bytes, 60);
      assert.deepEqual(await other.getBytes(key), bytes);
      await store.setTemp(key, 'z2.text', 60);
      assert.deepEqual(await other.getBytes(key), Buffer.from('"z2.text"', 'utf8'));
      await store.setBytes(key, bytes, 0);
      assert.equal(await store.getBytes(key), undefined, 'a lifetime of 0 deletes');
      await store.setBytes(key, bytes, 1);
      await store.setBytes(`${key}-kept`, bytes, 60);
      await eventually(async () => (await store.getBytes(key)) === undefined, 6000, 'expiry of a 1 s value');
      await other.deleteTemp(`${key}-kept`);
      assert.equal(await store.getBytes(`${key}-kept`), undefined);
    },
  },
  {
    name: 'temp lifetime: expireTemp lengthens or shortens a value (bytes or JSON) without rewriting it; a missing key is not made',
    async run({ store, other }) {
      const key = id('expire');
      assert.equal(await store.expireTemp(key, 60), false, 'nothing there');
      assert.equal(await other.getBytes(key), undefined, 'and nothing made');
      const bytes = Buffer.from([0x13, 0x00, 0xff, 0x80]);
      await store.setBytes(key, bytes, 1);
      assert.equal(await other.expireTemp(key, 60), true);
      await sleep(1500);
      assert.deepEqual(await store.getBytes(key), bytes, 'lengthened: still there after its first lifetime');
      await store.setTemp(`${key}-json`, { a: 1 }, 60);
      assert.equal(await store.expireTemp(`${key}-json`, 1), true);
      await eventually(async () => (await other.getTemp(`${key}-json`)) === undefined, 6000, 'shortened to 1 s');
      await store.deleteTemp(key);
    },
  },
  {
    name: 'sets: add, remove, members, delete',
    async run({ store, other }) {
      const key = id('set');
      assert.deepEqual(await store.setMembers(key), []);
      await store.addToSet(key, 'a');
      await store.addToSet(key, 'b');
      await other.addToSet(key, 'a');
      assert.deepEqual((await other.setMembers(key)).sort(), ['a', 'b']);
      await store.removeFromSet(key, 'a');
      await store.removeFromSet(key, 'missing');
      assert.deepEqual(await store.setMembers(key), ['b']);
      await store.deleteSet(key);
      assert.deepEqual(await store.setMembers(key), []);
      await store.deleteSet(key);
    },
  },
  {
    name: 'sets with values: putInSet adds members with a value and sets the lifetime it asks; setValues reads them, removeFromSet removes them',
    async run({ store, other }) {
      const key = id('set-values');
      await store.addToSet(key, 'plain', 60);
      assert.equal(await store.putInSet(key, { a: '[1,"ada@acme.example"]', i: 'https://idp.example' }, 2), true);
      assert.deepEqual((await other.setMembers(key)).sort(), ['a', 'i', 'plain'], 'listed with the others');
      assert.deepEqual(await other.setValues(key, ['a', 'i', 'plain', 'missing']), ['[1,"ada@acme.example"]', 'https://idp.example', '', undefined]);
      await other.putInSet(key, { a: '[2]' }, 2);
      assert.deepEqual(await store.setValues(key, ['a', 'i']), ['[2]', 'https://idp.example'], 'replaced');
      await store.removeFromSet(key, 'i');
      assert.deepEqual(await store.setValues(key, ['i']), [undefined]);
      assert.deepEqual(await store.setValues(id('none'), ['a']), [undefined]);
      // Its lifetime is the one it asks, from now: the set's 60 s became 2 s.
      await eventually(async () => (await store.setMembers(key)).length === 0, 8000, 'the lifetime putInSet set');
    },
  },
  {
    name: 'sets with a lifetime: gone after it, lengthened by a longer one, never shortened',
    async run({ store, other }) {
      const short = id('set-short');
      const kept = id('set-kept');
      const permanent = id('set-permanent');
      await store.addToSet(short, 'a', 2);
      await store.addToSet(kept, 'a', 2);
      // A later, shorter lifetime does not cut the longer one; a longer one extends it.
      await other.addToSet(kept, 'b', 60);
      await other.addToSet(kept, 'c', 2);
      // A set made without a lifetime gets the one an add asks (Redis: PEXPIRE NX), and an add
      // without one leaves a set's lifetime alone.
      await store.addToSet(permanent, 'old');
      await other.addToSet(permanent, 'new', 2);
      await store.addToSet(permanent, 'newer');
      assert.deepEqual((await store.setMembers(short)).sort(), ['a']);
      await eventually(async () => (await store.setMembers(short)).length === 0, 8000, 'expiry of a 2 s set');
      assert.deepEqual((await store.setMembers(kept)).sort(), ['a', 'b', 'c']);
      await eventually(async () => (await other.setMembers(permanent)).length === 0, 8000, 'a set without a lifetime takes the one asked');
      // A set that expired starts again empty, with the new member only.
      await store.addToSet(short, 'z', 60);
      assert.deepEqual(await other.setMembers(short), ['z']);
    },
  },
  {
    name: 'pub/sub: one instance publishes, the other receives; unsubscribe stops delivery',
    async run({ store, other }) {
      const channel = id('chan');
      const got1: string[] = [];
      const got2: string[] = [];
      const elsewhere: string[] = [];
      const unsub1 = await other.subscribe(channel, (m) => got1.push(m));
      const unsub2 = await other.subscribe(channel, (m) => got2.push(m));
      const unsubElsewhere = await other.subscribe(id('chan'), (m) => elsewhere.push(m));
      await store.publish(channel, 'one');
      await eventually(() => got1.length === 1 && got2.length === 1, 5000, 'delivery');
      assert.deepEqual([got1, got2], [['one'], ['one']]);
      await unsub1();
      await unsub1(); // twice is fine
      await store.publish(channel, 'two');
      await eventually(() => got2.length === 2, 5000, 'delivery to the remaining handler');
      await sleep(50);
      assert.deepEqual([got1, got2], [['one'], ['one', 'two']]);
      await unsub2();
      await store.publish(channel, 'three');
      await sleep(200);
      assert.deepEqual(got2, ['one', 'two']);
      assert.deepEqual(elsewhere, []);
      await unsubElsewhere();
      // Subscribing again after everything was unsubscribed works.
      const again: string[] = [];
      const unsubAgain = await other.subscribe(channel, (m) => again.push(m));
      await store.publish(channel, 'four');
      await eventually(() => again.length === 1, 5000, 'delivery after resubscribe');
      await unsubAgain();
    },
  },
  {
    name: 'adapter: upsert, find (a copy), TTL',
    async run({ store, other }) {
      const at = store.adapter('AccessToken');
      const key = id('at');
      const payload = { jti: key, kind: 'AccessToken', accountId: 'p:1', scope: 'openid', exp: 123, extra: { a: [1, 2] } };
      await at.upsert(key, payload, 60);
      assert.deepEqual(await other.adapter('AccessToken').find(key), payload);
      assert.equal(await store.adapter('RefreshToken').find(key), undefined, 'models are apart');
      const found = await at.find(key);
      found!.scope = 'changed';
      assert.equal((await at.find(key))!.scope, 'openid');
      await at.upsert(key, { ...payload, scope: 'openid email' }, 60);
      assert.equal((await at.find(key))!.scope, 'openid email');
      assert.equal(await at.find(id('missing')), undefined);
      const short = id('at');
      await at.upsert(short, { jti: short, kind: 'AccessToken' }, 1);
      assert.ok(await at.find(short));
      await eventually(async () => (await at.find(short)) === undefined, 6000, 'expiry of a 1 s token');
      assert.ok(await at.find(key));
    },
  },
  {
    name: 'adapter: consume sets consumed; upsert replaces it; consuming nothing creates nothing',
    async run({ store, other }) {
      const codes = store.adapter('AuthorizationCode');
      const key = id('code');
      await codes.upsert(key, { jti: key, kind: 'AuthorizationCode', grantId: id('g') }, 60);
      assert.equal((await codes.find(key))!.consumed, undefined);
      const before = Math.floor(Date.now() / 1000);
      await other.adapter('AuthorizationCode').consume(key);
      const consumed = (await codes.find(key))!.consumed;
      assert.equal(typeof consumed, 'number');
      assert.ok((consumed as number) >= before && (consumed as number) <= Math.ceil(Date.now() / 1000));
      // Consumed again (a replay's check): still the same payload.
      await codes.consume(key);
      assert.equal((await codes.find(key))!.kind, 'AuthorizationCode');
      await codes.upsert(key, { jti: key, kind: 'AuthorizationCode' }, 60);
      assert.equal((await codes.find(key))!.consumed, undefined);
      const nothing = id('code');
      await codes.consume(nothing);
      assert.equal(await codes.find(nothing), undefined);
    },
  },
  {
    name: 'adapter: findByUid, findByUserCode, destroy',
    async run({ store, other }) {
      const sessions = store.adapter('Session');
      const sid = id('sess');
      const uid = id('uid');
      await sessions.upsert(sid, { jti: sid, uid, kind: 'Session', accountId: 'p:1' }, 60);
      assert.deepEqual(await other.adapter('Session').findByUid(uid), { jti: sid, uid, kind: 'Session', accountId: 'p:1' });
      assert.equal(await sessions.findByUid(id('uid')), undefined);
      const devices = store.adapter('DeviceCode');
      const did = id('dev');
      const userCode = `${id('UC')}`.toUpperCase();
      await devices.upsert(did, { jti: did, userCode, kind: 'DeviceCode' }, 60);
      assert.deepEqual(await other.adapter('DeviceCode').findByUserCode(userCode), { jti: did, userCode, kind: 'DeviceCode' });
      assert.equal(await devices.findByUserCode('NOPE-NOPE'), undefined);
      await sessions.destroy(sid);
      assert.equal(await sessions.find(sid), undefined);
      assert.equal(await sessions.findByUid(uid), undefined);
      await devices.destroy(did);
      assert.equal(await devices.findByUserCode(userCode), undefined);
      await devices.destroy(did); // twice is fine
    },
  },
  {
    name: 'adapter: revokeByGrantId removes every token of the grant, and only those',
    async run({ store, other }) {
      const models = ['AccessToken', 'RefreshToken', 'AuthorizationCode'] as const;
      const redis = store instanceof RedisStore ? store : undefined;
      const cluster = redis?.client instanceof Cluster ? redis.client : undefined;
      const nodeOf = async (key: string) => {
        const slot = (await cluster!.cluster('KEYSLOT', key)) as number;
        return cluster!.slots[slot]?.[0];
      };
      // In the cluster, the point of the exercise: grant indexes and their tokens spread over every node.
      const grants: string[] = [];
      const indexNodes = new Set<string | undefined>();
      while (grants.length < 8 || (cluster && indexNodes.size < 3 && grants.length < 100)) {
        const grantId = id('grant');
        grants.push(grantId);
        if (cluster) indexNodes.add(await nodeOf(redis!.keys.grant(grantId)));
      }
      const tokens: Array<{ model: string; id: string; grantId: string | undefined }> = [];
      for (const grantId of [...grants, undefined]) {
        for (const model of models) {
          for (let n = 0; n < 2; n++) {
            const tid = id(model);
            await store.adapter(model).upsert(tid, { jti: tid, kind: model, ...(grantId ? { grantId } : {}) }, 60);
            tokens.push({ model, id: tid, grantId });
          }
        }
      }
      if (cluster) {
        assert.equal(indexNodes.size, 3, `grant indexes on ${indexNodes.size} node(s)`);
        const tokenNodes = new Set(await Promise.all(tokens.map((t) => nodeOf(redis!.keys.oidc(t.model, t.id)))));
        assert.equal(tokenNodes.size, 3, `tokens on ${tokenNodes.size} node(s)`);
      }
      const revoked = new Set(grants.filter((_, i) => i % 2 === 0));
      for (const [i, grantId] of [...revoked].entries()) {
        // Any model's adapter revokes the whole grant, from either instance.
        await (i % 2 ? other : store).adapter(models[i % models.length]!).revokeByGrantId(grantId);
      }
      for (const t of tokens) {
        const found = await store.adapter(t.model).find(t.id);
        if (t.grantId && revoked.has(t.grantId)) assert.equal(found, undefined, `${t.model} of revoked ${t.grantId}`);
        else assert.ok(found, `${t.model} ${t.id} of ${t.grantId ?? 'no grant'} must stay`);
      }
      await store.adapter('AccessToken').revokeByGrantId(id('unknown-grant'));
      await store.adapter('AccessToken').revokeByGrantId(grants[0]!); // again: nothing left to do
    },
  },
  {
    name: "adapter: a grant's index lives as long as its longest token",
    async run({ store }) {
      const at = store.adapter('AccessToken');
      const rt = store.adapter('RefreshToken');
      const longFirst = id('grant');
      const shortFirst = id('grant');
      const ids = { a: id('at'), b: id('rt'), c: id('at'), d: id('rt') };
      await rt.upsert(ids.b, { jti: ids.b, grantId: longFirst }, 60);
      await at.upsert(ids.a, { jti: ids.a, grantId: longFirst }, 1);
      await at.upsert(ids.c, { jti: ids.c, grantId: shortFirst }, 1);
      await rt.upsert(ids.d, { jti: ids.d, grantId: shortFirst }, 60);
      await eventually(async () => (await at.find(ids.a)) === undefined && (await at.find(ids.c)) === undefined, 6000, 'expiry of the short tokens');
      assert.ok(await rt.find(ids.b));
      assert.ok(await rt.find(ids.d));
      await at.revokeByGrantId(longFirst);
      await at.revokeByGrantId(shortFirst);
      assert.equal(await rt.find(ids.b), undefined, 'a shorter token must not shorten the index');
      assert.equal(await rt.find(ids.d), undefined, 'a longer token must extend the index');
    },
  },
];

// ---------------------------------------------------------------------------------------------

const prefix = () => `concord-test-${randomUUID().slice(0, 8)}:`;

async function redisPair(url: string) {
  const p = prefix();
  const store = await createRedisStore({ url, prefix: p });
  const other = await createRedisStore({ url, prefix: p });
  return { store, other, close: () => Promise.all([store.close(), other.close()]).then(() => {}) };
}

let standalone: RedisServer | undefined;
let cluster: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
/** A master, its replica and one Sentinel: Concord finds the master through the Sentinel. */
let sentinelled: { master: RedisServer; replica: RedisServer; sentinel: RedisSentinel } | undefined;

async function startSentinelled() {
  const master = await startRedis();
  const replica = await startRedis({ args: ['--replicaof', master.host, String(master.port)] });
  const sentinel = await startRedisSentinel({ master });
  return { master, replica, sentinel, stop: () => Promise.all([sentinel.stop(), replica.stop(), master.stop()]).then(() => {}) };
}

const backends: Backend[] = [
  {
    name: 'memory',
    async open() {
      const store = new MemoryStore();
      return { store, other: store, close: () => store.close() };
    },
  },
  {
    name: 'redis',
    async open() {
      standalone = await startRedis();
      return redisPair(standalone.url);
    },
  },
  {
    name: 'redis-cluster',
    async open() {
      cluster = await startRedisCluster();
      return redisPair(cluster.url);
    },
  },
  {
    name: 'redis-sentinel',
    async open() {
      sentinelled = await startSentinelled();
      return redisPair(sentinelled.sentinel.url);
    },
  },
];

after(async () => {
  await standalone?.stop();
  await cluster?.stop();
  if (sentinelled) await Promise.all([sentinelled.sentinel.stop(), sentinelled.replica.stop(), sentinelled.master.stop()]);
});

for (const backend of backends) {
  describe(`store conformance: ${backend.name}`, { concurrency: true }, () => {
    const ctx = {} as Ctx & { close(): Promise<void> };
    before(async () => Object.assign(ctx, await backend.open()));
    after(() => ctx.close?.());

    it('has the kind of its backend', () => {
      assert.equal(ctx.store.kind, backend.name);
    });
    for (const c of cases) it(c.name, () => c.run(ctx));
    if (backend.name !== 'memory') {
      it('sets: kept as a small HASH (a listpack, not the hashtable Redis 7.0 makes of a SET of strings); a SET written by an earlier version is still read, added to, removed from and deleted', async () => {
        const store = ctx.store as RedisStore;
        const key = id('hset');
        const raw = store.keys.set(key);
        await store.addToSet(key, 'acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001', 600);
        await ctx.other.addToSet(key, 'g:9dXnWANGnZ32dvR82oWYMJIsAki6D-yDw4SbBoqO2mZ');
        assert.equal(await store.client.type(raw), 'hash');
        assert.equal(await encodingOf(store, raw), 'listpack');
        const asHash = await memoryOf(store, raw);
        const old = id('old-set');
        const oldRaw = store.keys.set(old);
        await store.client.sadd(oldRaw, 'acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001', 'g:9dXnWANGnZ32dvR82oWYMJIsAki6D-yDw4SbBoqO2mZ');
        assert.ok(asHash < await memoryOf(store, oldRaw), 'smaller than the SET of the same members');
        // The earlier form, as an instance of an earlier version wrote it.
        await store.client.pexpire(oldRaw, 60_000);
        assert.deepEqual((await ctx.other.setMembers(old)).sort(), ['acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001', 'g:9dXnWANGnZ32dvR82oWYMJIsAki6D-yDw4SbBoqO2mZ']);
        await store.addToSet(old, 'u1', 600);
        await ctx.other.addToSet(old, 'u2');
        await store.removeFromSet(old, 'g:9dXnWANGnZ32dvR82oWYMJIsAki6D-yDw4SbBoqO2mZ');
        assert.equal(await store.client.type(oldRaw), 'set', 'stays a SET until it expires');
        assert.deepEqual((await store.setMembers(old)).sort(), ['acme:5f0c1a52-8d1e-4b7a-9f0e-000000000001', 'u1', 'u2']);
        assert.ok((await store.client.pttl(oldRaw)) > 60_000, 'lengthened as a HASH is');
        await ctx.other.deleteSet(old);
        assert.deepEqual(await store.setMembers(old), []);
        await store.deleteSet(key);
      });
      it('sets with values: a SET written by an earlier version takes the members without their values (putInSet answers false), and reads them as added without one', async () => {
        const store = ctx.store as RedisStore;
        const old = id('old-set-values');
        await store.client.sadd(store.keys.set(old), 'u1');
        assert.equal(await store.putInSet(old, { a: '[1]' }, 60), false);
        assert.deepEqual((await ctx.other.setMembers(old)).sort(), ['a', 'u1']);
        assert.deepEqual(await ctx.other.setValues(old, ['a', 'u1', 'missing']), ['', '', undefined]);
        assert.ok((await store.client.pttl(store.keys.set(old))) > 50_000);
        await store.deleteSet(old);
      });
      it("adapter: a grant index is a small HASH of the tokens' short names; one written before as a SET of their keys is still added to and revoked", async () => {
        const store = ctx.store as RedisStore;
        const [grant, before] = [id('g'), id('g-before')];
        const hashed = (n: string) => `h1.${n.padEnd(43, 'x')}`;
        await store.adapter('RefreshToken').upsert(hashed('rt1'), { grantId: grant }, 600);
        await ctx.other.adapter('AccessToken').upsert(hashed('at1'), { grantId: grant }, 60);
        await store.adapter('AuthorizationCode').upsert(hashed('c1'), { grantId: grant }, 60);
        const index = store.keys.grant(grant);
        assert.equal(await encodingOf(store, index), 'listpack');
        assert.deepEqual((await store.client.hkeys(index)).sort(), [`A:${hashed('at1')}`, `C:${hashed('c1')}`, `R:${hashed('rt1')}`]);
        assert.ok(await memoryOf(store, index) <= 400, 'three tokens in about 300 bytes (a SET of their keys: about 570)');
        // An index written before: a SET of the tokens' keys.
        const oldIndex = store.keys.grant(before);
        await store.adapter('RefreshToken').upsert(hashed('rt0'), { n: 0 }, 600);
        await store.client.sadd(oldIndex, store.keys.oidc('RefreshToken', hashed('rt0')));
        await store.client.pexpire(oldIndex, 600_000);
        await ctx.other.adapter('RefreshToken').upsert(hashed('rt2'), { grantId: before }, 600);
        assert.equal(await store.client.type(oldIndex), 'set');
        await ctx.other.adapter('AccessToken').revokeByGrantId(before);
        await store.adapter('RefreshToken').revokeByGrantId(grant);
        for (const [model, tid] of [['RefreshToken', 'rt0'], ['RefreshToken', 'rt2'], ['RefreshToken', 'rt1'], ['AccessToken', 'at1'], ['AuthorizationCode', 'c1']] as const) {
          assert.equal(await store.adapter(model).find(hashed(tid)), undefined, `${model} ${tid} revoked`);
        }
        assert.equal((await store.client.exists(index)) + (await store.client.exists(oldIndex)), 0, 'both indexes dropped');
      });
      it('adapter: a payload written as a HASH by an earlier version is still read and consumed', async () => {
        const store = ctx.store as RedisStore;
        const jti = id('old');
        const key = store.keys.oidc('AuthorizationCode', jti);
        await store.client.hset(key, 'payload', JSON.stringify({ jti, kind: 'AuthorizationCode', accountId: 'p:1' }));
        await store.client.pexpire(key, 60_000);
        const codes = ctx.other.adapter('AuthorizationCode');
        assert.deepEqual(await codes.find(jti), { jti, kind: 'AuthorizationCode', accountId: 'p:1' });
        await codes.consume(jti);
        const consumed = await store.adapter('AuthorizationCode').find(jti);
        assert.equal(typeof consumed?.consumed, 'number');
        assert.ok((await store.client.pttl(key)) > 0, 'the TTL stays');
        // A new write replaces it in today's encoding.
        await codes.upsert(jti, { jti, kind: 'AuthorizationCode', accountId: 'p:2' }, 60);
        assert.deepEqual(await store.adapter('AuthorizationCode').find(jti), { jti, kind: 'AuthorizationCode', accountId: 'p:2' });
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------

const assertUnavailable = async (what: string, promise: Promise<unknown>, withinMs = 3000) => {
  const started = Date.now();
  await assert.rejects(promise, (err: { code?: string }) => err.code === 'store_unavailable', `${what} must fail with store_unavailable`);
  // Fails fast: no offline queue, no retry loop. (Generous bound; it is milliseconds in practice.)
  assert.ok(Date.now() - started < withinMs, `${what} took ${Date.now() - started} ms to fail`);
};

describe('redis store: faults', () => {
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(() => server?.stop());

  it('createStore picks the backend by URL and keeps deployments apart by prefix', async () => {
    const a = await createStore({ url: server.url, prefix: prefix() });
    const b = await createStore({ url: `${server.url}/0`, prefix: prefix() });
    try {
      assert.equal(a.kind, 'redis');
      assert.ok((a as RedisStore).client);
      await a.putRecord('c', 'x', 1);
      assert.equal(await b.getRecord('c', 'x'), undefined);
      const c = await createStore({ url: `${server.url}/3`, prefix: 'same:' });
      const d = await createStore({ url: `${server.url}/4`, prefix: 'same:' });
      await c.setTemp('k', 'db3', 60);
      assert.equal(await d.getTemp('k'), undefined, 'the /db of the URL is honoured');
      await Promise.all([c.close(), d.close()]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a Redis that is not there at startup: StoreUnavailableError, not a hang', async () => {
    const gone = await startRedis();
    const url = gone.url;
    await gone.stop();
    await assertUnavailable('createRedisStore', createRedisStore({ url, startupTimeoutMs: 500 }));
  });

  it('Redis goes away (SIGTERM): requests fail fast, ping throws; it comes back: the same store recovers, pub/sub too', async () => {
    const p = prefix();
    const store = await createRedisStore({ url: server.url, prefix: p, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    const other = await createRedisStore({ url: server.url, prefix: p, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    try {
      const received: string[] = [];
      await other.subscribe('events', (m) => received.push(m));
      await store.setTemp('k', 'v', 60);
      await store.ping();

      await server.terminate();
      await assertUnavailable('ping', store.ping());
      await assertUnavailable('getTemp', store.getTemp('k'));
      await assertUnavailable('setTemp', store.setTemp('k', 'v', 60));
      await assertUnavailable('takeTemp', store.takeTemp('k'));
      await assertUnavailable('putRecord', store.putRecord('c', 'x', 1));
      await assertUnavailable('append', store.append('log', 1));
      await assertUnavailable('incr', store.incr('n'));
      await assertUnavailable('publish', store.publish('events', 'lost'));
      await assertUnavailable('subscribe', other.subscribe('more', () => {}));
      await assertUnavailable('adapter.find', store.adapter('Session').find('s'));
      await assertUnavailable('adapter.upsert', store.adapter('Session').upsert('s', { uid: 'u', grantId: 'g' }, 60));
      await assertUnavailable('adapter.consume', store.adapter('AuthorizationCode').consume('c'));
      await assertUnavailable('revokeByGrantId', store.adapter('AccessToken').revokeByGrantId('g'));
      await assertUnavailable('raw client', store.run((c) => c.get('x')));

      await server.start();
      await eventually(() => store.ping().then(() => true, () => false), 10_000, 'recovery of the store');
      await store.setTemp('k', 'after', 60);
      assert.equal(await store.getTemp('k'), 'after');
      assert.equal(await store.incr('n'), 1);
      // The subscriber connection came back and subscribed again on its own.
      await eventually(async () => {
        await store.publish('events', 'again').catch(() => {});
        return received.includes('again');
      }, 10_000, 'pub/sub after reconnect');
      assert.ok(!received.includes('lost'));
    } finally {
      await Promise.all([store.close(), other.close()]);
    }
  });

  it('Redis hangs (SIGSTOP): requests time out as StoreUnavailableError; it resumes: the store works', async () => {
    const store = await createRedisStore({ url: server.url, prefix: prefix(), commandTimeoutMs: 300, connectTimeoutMs: 300 });
    try {
      await store.setTemp('k', 'v', 60);
      server.pause();
      try {
        await assertUnavailable('getTemp on a hung Redis', store.getTemp('k'));
        await assertUnavailable('ping on a hung Redis', store.ping());
      } finally {
        server.resume();
      }
      await eventually(() => store.getTemp('k').then((v) => v === 'v', () => false), 10_000, 'recovery after SIGCONT');
    } finally {
      await store.close();
    }
  });

  it('close(): later requests fail with StoreUnavailableError; close twice is fine', async () => {
    const store = await createRedisStore({ url: server.url, prefix: prefix() });
    await store.close();
    await store.close();
    await assertUnavailable('getTemp after close', store.getTemp('k'));
    await assertUnavailable('ping after close', store.ping());
  });
});

describe('redis store: Sentinel failover', () => {
  let nodes: Awaited<ReturnType<typeof startSentinelled>>;
  before(async () => {
    nodes = await startSentinelled();
  });
  after(() => nodes?.stop());

  it('loses the master: fails fast meanwhile, then serves from the promoted replica, what was written still there', async () => {
    const p = prefix();
    const store = await createRedisStore({ url: nodes.sentinel.url, prefix: p, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    // The other through createStore, as Concord opens CONCORD_STORE.
    const other = await createStore({ url: nodes.sentinel.url, prefix: p });
    try {
      assert.equal(store.kind, 'redis-sentinel');
      assert.equal(other.kind, 'redis-sentinel');
      assert.equal(await nodes.sentinel.masterAddress(), `${nodes.master.host}:${nodes.master.port}`);
      const received: string[] = [];
      await other.subscribe('events', (m) => received.push(m));
      await store.putRecord('participants', 'acme', { id: 'acme', version: 1 });
      await store.adapter('Grant').upsert('grant-1', { accountId: 'acme:alice', grantId: 'grant-1' }, 3600);
      // On the replica before the master goes: a failover keeps what was replicated.
      await eventually(async () => {
        const link = String(await nodes.replica.command('INFO', 'replication'));
        return link.includes('master_link_status:up') && (await nodes.replica.command('DBSIZE')) === (await nodes.master.command('DBSIZE'));
      }, 20_000, 'replication to the replica');
      // The Sentinel learns of replicas from the primary's INFO (every 10 s): it can only promote one it knows.
      await eventually(async () => {
        const replicas = (await nodes.sentinel.server.command('SENTINEL', 'REPLICAS', nodes.sentinel.name)) as string[][];
        return replicas.some((fields) => {
          const info = new Map<string, string>();
          for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i]!, fields[i + 1]!);
          return info.get('port') === String(nodes.replica.port) && !/s_down|disconnected/.test(info.get('flags') ?? '');
        });
      }, 20_000, 'the Sentinel knowing the replica');

      await nodes.master.kill();
      await assertUnavailable('putRecord without a master', store.putRecord('participants', 'globex', { id: 'globex' }));

      await eventually(async () => (await nodes.sentinel.masterAddress()) === `${nodes.replica.host}:${nodes.replica.port}`, 20_000, 'the Sentinel promoting the replica');
      await eventually(() => store.ping().then(() => true, () => false), 20_000, 'the store reconnecting to the new master');
      assert.deepEqual(await store.getRecord('participants', 'acme'), { id: 'acme', version: 1 });
      assert.deepEqual(await other.adapter('Grant').find('grant-1'), { accountId: 'acme:alice', grantId: 'grant-1' });
      await store.putRecord('participants', 'globex', { id: 'globex' });
      assert.deepEqual(await other.getRecord('participants', 'globex'), { id: 'globex' });
      assert.equal(String(await nodes.replica.command('ROLE')).split(',')[0], 'master', 'the writes went to the promoted replica');
      await eventually(async () => {
        await store.publish('events', 'after failover').catch(() => {});
        return received.includes('after failover');
      }, 20_000, 'pub/sub through the new master');
    } finally {
      await Promise.all([store.close(), other.close()]);
    }
  });
});

describe('redis store: Cluster failover', () => {
  let nodes: Awaited<ReturnType<typeof startRedisCluster>>;
  before(async () => {
    nodes = await startRedisCluster({ masters: 3, replicas: 1 });
  });
  after(() => nodes?.stop());

  /** Whether every master's replica has caught up with it (INFO replication offsets). */
  async function replicated(): Promise<boolean> {
    for (const node of nodes.nodes.filter((n) => n.running)) {
      const info = String(await node.command('INFO', 'replication'));
      if (!info.includes('role:master')) continue;
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
      const replica = /slave0:[^\r\n]*state=online,offset=(\d+)/.exec(info)?.[1];
      if (offset === undefined || replica !== offset) return false;
    }
    return true;
  }

  it('reads the slot map again every few seconds, so a topology change its pipelines miss is seen anyway (redis/ioredis#2075)', async () => {
    const store = await createRedisStore({ url: nodes.url, prefix: prefix() });
    try {
      assert.ok(CLUSTER_SLOTS_REFRESH_MS > 0 && CLUSTER_SLOTS_REFRESH_MS <= 10_000);
      assert.equal((store.client as Cluster).options.slotsRefreshInterval, CLUSTER_SLOTS_REFRESH_MS);
    } finally {
      await store.close();
    }
  });

  it('loses a master: its replica takes over, and the same store serves every slot again with what was replicated', async () => {
    const store = await createRedisStore({ url: nodes.url, prefix: prefix(), commandTimeoutMs: 500, connectTimeoutMs: 500 });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      for (const [i, key] of keys.entries()) await store.setTemp(key, { i }, 600);
      await eventually(replicated, 20_000, 'replication to every replica');

      // A master that holds some of them goes away for good.
      const masters = [];
      for (const node of nodes.nodes) if (String(await node.command('INFO', 'replication')).includes('role:master')) masters.push(node);
      const sizes = await Promise.all(masters.map(async (m) => Number(await m.command('DBSIZE'))));
      const victim = masters[sizes.findIndex((n) => n > 0)]!;
      await victim.kill();
      // Until then, the keys of its slots fail fast as unavailable; the others are served.
      const during = await Promise.allSettled(keys.map((key) => store.getTemp(key)));
      const failed = during.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.ok(failed.length > 0 && failed.length < keys.length, `${failed.length} of ${keys.length} reads failed`);
      for (const f of failed) assert.equal((f.reason as { code?: string }).code, 'store_unavailable');

      // Its replica is promoted (cluster-node-timeout 2 s); ioredis follows the new slot map by itself.
      // Seconds on a quiet machine; a loaded one (CI beside other jobs) once took over 30 s.
      await eventually(async () => {
        try {
          const values = await Promise.all(keys.map((key) => store.getTemp<{ i: number }>(key)));
          return values.every((v, i) => v?.i === i);
        } catch {
          return false;
        }
      }, 60_000, 'every key readable after the failover');
      for (const key of keys) await store.setTemp(`${key}-after`, 'written after the failover', 600);
      assert.equal(await store.getTemp('k7-after'), 'written after the failover');
      await store.ping();
    } finally {
      await store.close();
    }
  });
});

/** Counts the writes to a Cluster store's master sockets while `fn` runs, each with its round (writes in one turn of the event loop share one). */
async function roundsOfWrites(client: Cluster, fn: () => Promise<void>): Promise<number[]> {
  const writes: number[] = [];
  let round = 0;
  let open = false;
  const restore: Array<() => void> = [];
  for (const node of client.nodes('master')) {
    const socket = (node as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
    const write = socket.write;
    socket.write = (...args: unknown[]) => {
      if (!open) {
        open = true;
        round++;
        setImmediate(() => (open = false));
      }
      writes.push(round);
      return write.apply(socket, args);
    };
    restore.push(() => void (socket.write = write));
  }
  try {
    await fn();
  } finally {
    for (const r of restore) r();
  }
  return writes;
}

describe('redis store: one round of writes per upsert on a Cluster', () => {
  before(async () => {
    cluster ??= await startRedisCluster();
  });

  it("a token's grant index and its record, on different nodes, are written in the same turn of the event loop, not one after the other", async () => {
    const store = await createRedisStore({ url: cluster!.url, prefix: prefix() });
    try {
      const client = store.client as Cluster;
      const nodeOf = async (key: string) => client.slots[(await client.cluster('KEYSLOT', key)) as number]?.[0];
      const at = store.adapter('AccessToken');
      // Connections to every node, and the slot map, before counting.
      for (let i = 0; i < 6; i++) await at.upsert(id('warm'), { jti: 'w', grantId: id('grant') }, 60);
      const grantId = id('grant');
      let tokenId = id('at');
      while ((await nodeOf(store.keys.grant(grantId))) === (await nodeOf(store.keys.oidc('AccessToken', tokenId)))) tokenId = id('at');

      const writes = await roundsOfWrites(client, () => at.upsert(tokenId, { jti: tokenId, grantId }, 60));
      assert.equal(writes.length, 2, `one write to the index's node, one to the record's: ${writes.length}`);
      assert.equal(new Set(writes).size, 1, `both in one round, not ${new Set(writes).size}`);
      // And the token is in its grant's index: revoking the grant reaches it.
      assert.ok(await at.find(tokenId));
      await at.revokeByGrantId(grantId);
      assert.equal(await at.find(tokenId), undefined);
    } finally {
      await store.close();
    }
  });

  it("a new session's record, its upstream state and its account's index, on different nodes, are written in one round", async () => {
    const store = await createRedisStore({ url: cluster!.url, prefix: prefix() });
    try {
      const client = store.client as Cluster;
      const nodeOf = async (key: string) => client.slots[(await client.cluster('KEYSLOT', key)) as number]?.[0];
      const sessions = new SessionStore(store, createSecretBox(randomBytes(32).toString('base64')), 3600);
      const login = (accountId: string) => ({ accountId, participantId: 'acme', claims: {}, upstream: { logout: { protocol: 'oidc' as const, idTokenHint: 'a.b.c' } }, confirmedAt: 1_800_000_000 });
      for (let i = 0; i < 6; i++) await sessions.put(id('warm'), login(id('acme:warm')), 1_800_000_000);
      let uid = id('uid');
      const accountId = id('acme:u');
      const indexNode = await nodeOf(store.keys.set(`sessions-of-account:${accountId}`));
      while ((await nodeOf(store.keys.temp(`session:${uid}`))) === indexNode) uid = id('uid');
      const writes = await roundsOfWrites(client, () =>
        withRequestReads(async () => {
          sessions.markAbsent(uid);
          await sessions.put(uid, login(accountId), 1_800_000_000);
        }),
      );
      assert.ok(writes.length >= 2, `writes to at least two nodes: ${writes.length}`);
      assert.equal(new Set(writes).size, 1, `all in one round, not ${new Set(writes).size}`);
      assert.equal((await sessions.get(uid))?.accountId, accountId);
      assert.deepEqual(await store.setMembers(`sessions-of-account:${accountId}`), [uid]);
    } finally {
      await store.close();
    }
  });
});
