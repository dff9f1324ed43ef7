import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createSecretBox } from '../../src/secrets/index.ts';
import { refreshWorthKeeping } from '../../src/sessions/recheck.ts';
import { SessionStore, type PendingSessionLogin } from '../../src/sessions/records.ts';
import { indexingAdapter, liveSessions } from '../../src/sessions/oidc-index.ts';
import { MemoryStore, withRequestReads, type AdapterPayload, type Store } from '../../src/store/index.ts';

/** A compact JWS as an IdP issues one: RS256 over its header and payload. */
function idToken(claims: Record<string, unknown>): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}

describe('session records: the sealed upstream state', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const box = createSecretBox(randomBytes(32).toString('base64'));
  const sessions = new SessionStore(store, box, 3600);
  const claims = { sub: 'u1', email: 'ada@acme.example', name: 'Ada Lovelace', groups: ['engineering', 'all-staff'], nonce: randomBytes(16).toString('base64url') };
  const token = idToken({ iss: 'https://idp.acme.example', aud: 'concord', ...claims, iat: 1_800_000_000, exp: 1_800_000_600 });
  const login = (upstream: PendingSessionLogin['upstream']): PendingSessionLogin => ({ accountId: 'acme:u1', participantId: 'acme', claims: { email: claims.email }, upstream, confirmedAt: 1_800_000_000 });

  it('gives back the upstream tokens byte for byte, through the held login and the session record', async () => {
    const upstream = {
      logout: { protocol: 'oidc' as const, idTokenHint: token, sid: 's1' },
      refresh: { protocol: 'oidc' as const, refreshToken: idToken({ sub: 'u1', typ: 'Refresh' }), accessToken: 'opaque-access-token', claims },
    };
    await sessions.hold('i1', login(upstream), 60);
    const taken = await sessions.take('i1', 'acme:u1');
    assert.deepEqual(taken?.upstream, upstream);
    await sessions.put('uid-1', taken!, 1_800_000_000);
    assert.deepEqual(await sessions.upstream('uid-1'), upstream);
  });

  it('keeps the ID token as the text of its parts, so its claims and the re-check claims beside it are stored about once', async () => {
    const upstream = { logout: { protocol: 'oidc' as const, idTokenHint: token }, refresh: { protocol: 'oidc' as const, accessToken: 'at', claims } };
    await sessions.put('uid-2', login(upstream), 1_800_000_000);
    // The state has a key of its own; the record, read at every code exchange and refresh, does not carry it.
    assert.equal((await store.getTemp<{ sealed?: string }>('session:uid-2'))!.sealed, undefined);
    const packed = (await store.getBytes('session-upstream:uid-2'))!;
    assert.equal(packed[0], 0x13, "DEFLATEd with the tokens' dictionary (z3), as bytes");
    const plain = box.openBytes(packed, 'session:uid-2:upstream');
    assert.ok(plain.includes(JSON.stringify(claims.email)), 'the payload as text');
    assert.ok(!plain.includes(token), 'not its base64url form');
    // Sealed as before (the token as a string): about one more copy of the claims.
    const before = box.seal(JSON.stringify(upstream), 'session:uid-2:upstream', { compress: true });
    assert.ok(packed.length < before.length - JSON.stringify(claims).length / 2, `${packed.length} vs ${before.length}`);
  });

  it('leaves strings that only look like a JWS as they are (parts that do not decode to text, non-canonical base64url)', async () => {
    const odd = [`${Buffer.from([0xff, 0xfe, 0x80, 0x81]).toString('base64url').repeat(8)}.eyJhIjoxfQ.sig`, `eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfR.${'s'.repeat(60)}`, 'not.a.jws'];
    for (const [i, value] of odd.entries()) {
      const upstream = { logout: { protocol: 'oidc' as const, idTokenHint: value } };
      await sessions.put(`uid-odd-${i}`, login(upstream), 1_800_000_000);
      assert.deepEqual(await sessions.upstream(`uid-odd-${i}`), upstream);
    }
  });

  it('opens a state sealed before tokens were packed (a record of the previous release)', async () => {
    const upstream = { logout: { protocol: 'oidc' as const, idTokenHint: token, sid: 's1' } };
    await store.setTemp('session:uid-3', { v: 1, accountId: 'acme:u1', participantId: 'acme', startedAt: 1, confirmedAt: 1, claims: {}, sealed: box.seal(JSON.stringify(upstream), 'session:uid-3:upstream', { compress: true }) }, 60);
    assert.deepEqual(await sessions.upstream('uid-3'), upstream);
    // Its next login, or a re-check, moves the state to its own key.
    await sessions.confirm('uid-3', { claims: {}, confirmedAt: 2, upstream });
    assert.equal((await store.getTemp<{ sealed?: string }>('session:uid-3'))!.sealed, undefined);
    assert.deepEqual(await sessions.upstream('uid-3'), upstream);
  });

  it('a state kept at the callback (holdAtCallback): the held login names it, the session takes it over, a re-check rewrites it there, the session’s end deletes it', async () => {
    const upstream = { logout: { protocol: 'oidc' as const, idTokenHint: token, sid: 's1' }, refresh: { protocol: 'oidc' as const, refreshToken: 'rt-1', claims } };
    const { held, written } = sessions.holdAtCallback('i9', login(upstream), 60);
    await written;
    const opened = sessions.openHeld('i9', held)!;
    assert.deepEqual(opened.upstream, {}, 'the held login does not carry the state');
    assert.match(opened.stateId ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.equal(sessions.openHeld('i10', held), undefined, 'sealed for its interaction');
    const stateKey = `session-upstream:${opened.stateId}`;
    const kept = (await store.getBytes(stateKey))!;
    await sessions.put('uid-9', opened, 1_800_000_000);
    assert.deepEqual(await store.getBytes(stateKey), kept, 'taken over as it is');
    assert.equal(await store.getBytes('session-upstream:uid-9'), undefined);
    assert.deepEqual(await sessions.upstream('uid-9'), upstream);
    // Another session naming it (a copied record) of another account: does not open.
    await store.setTemp('session:uid-x', { ...(await store.getTemp<object>('session:uid-9')), a: 'acme:u2' }, 60);
    assert.deepEqual(await sessions.upstream('uid-x'), {});
    const next = { ...upstream, refresh: { ...upstream.refresh, refreshToken: 'rt-2' } };
    await sessions.confirm('uid-9', { claims: {}, confirmedAt: 1_800_000_900, upstream: next });
    assert.deepEqual(await sessions.upstream('uid-9'), next, 'a re-check rewrites it where the record names it');
    assert.equal(await store.getBytes('session-upstream:uid-9'), undefined);
    await sessions.remove('uid-9');
    assert.equal(await store.getBytes(stateKey), undefined, 'ends with the session');
  });

  it('a new login in the session without upstream state leaves none of the previous one', async () => {
    await sessions.put('uid-4', login({ logout: { protocol: 'oidc' as const, idTokenHint: token } }), 1_800_000_000);
    await sessions.put('uid-4', login({}), 1_800_000_100);
    assert.deepEqual(await sessions.upstream('uid-4'), {});
    await sessions.remove('uid-4');
    assert.equal(await store.getBytes('session-upstream:uid-4'), undefined);
  });
});

describe('session records: the services of a session', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const sessions = new SessionStore(store, createSecretBox(randomBytes(32).toString('base64')), 3600);
  const login: PendingSessionLogin = { accountId: 'acme:u1', participantId: 'acme', claims: {}, upstream: {}, confirmedAt: 1_800_000_000 };
  const rp = { clientId: 'rp', sid: 'sid-rp', grantId: 'grant-rp' };
  const other = { clientId: 'other', sid: 'sid-other', grantId: 'grant-other' };

  it('keeps the service of the binding request in the record (no set), and those added later in the set', async () => {
    const record = await sessions.put('s1', login, 1_800_000_000, rp);
    assert.deepEqual(record.clients, [rp]);
    assert.deepEqual((await sessions.get('s1'))?.clients, [rp]);
    assert.deepEqual(await store.setMembers('session-clients:s1'), []);
    await sessions.addClient('s1', other);
    assert.deepEqual((await sessions.get('s1'))?.clients, [rp, other]);
    // Another login in the same session keeps them all.
    await sessions.put('s1', login, 1_800_000_100, rp);
    assert.deepEqual((await sessions.get('s1'))?.clients, [rp, other]);
  });

  it('removes a service wherever it is kept', async () => {
    await sessions.put('s2', login, 1_800_000_000, rp);
    await sessions.addClient('s2', other);
    await sessions.removeClient('s2', rp);
    assert.deepEqual((await sessions.get('s2'))?.clients, [other]);
    await sessions.removeClient('s2', other);
    assert.deepEqual((await sessions.get('s2'))?.clients, []);
  });

  it('reads a record of the previous release, whose services are all in the set', async () => {
    await store.setTemp('session:s3', { v: 1, accountId: 'acme:u1', participantId: 'acme', startedAt: 1, confirmedAt: 1, claims: {} }, 60);
    await store.addToSet('session-clients:s3', JSON.stringify(['rp', 'sid-rp', 'grant-rp']), 60);
    assert.deepEqual((await sessions.get('s3'))?.clients, [rp]);
  });
});

describe('session records: the stored form', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const sessions = new SessionStore(store, createSecretBox(randomBytes(32).toString('base64')), 3600);
  const claims = { email: 'ada@acme.example', groups: ['engineering'] };
  const rp = { clientId: 'rp', sid: 'sid-rp', grantId: 'grant-rp' };

  it('writes a record with one-letter fields, without its participant, its confirmation when it is its start, nor its services as text', async () => {
    const login: PendingSessionLogin = { accountId: 'acme:u1', participantId: 'acme', claims, upstream: {}, confirmedAt: 1_800_000_000 };
    const record = await sessions.put('f1', login, 1_800_000_000, rp);
    assert.deepEqual(await store.getTemp('session:f1'), { v: 2, a: 'acme:u1', t: 1_800_000_000, m: claims, s: [['rp', 'sid-rp', 'grant-rp']] });
    assert.deepEqual(await sessions.get('f1'), { ...record, clients: [rp] });
    assert.equal(record.participantId, 'acme');
    assert.equal(record.confirmedAt, 1_800_000_000);
  });

  it('keeps a later confirmation as seconds after the start, and the upstream session index as its hash', async () => {
    const login: PendingSessionLogin = { accountId: 'acme:u2', participantId: 'acme', claims, upstream: {}, upstreamSessionId: 'idp-sid-1', confirmedAt: 1_800_000_050 };
    await sessions.put('f2', login, 1_800_000_000);
    const stored = await store.getTemp<Record<string, unknown>>('session:f2');
    assert.equal(stored?.c, 50);
    assert.match(String(stored?.u), /^[A-Za-z0-9_-]{43}$/);
    const record = await sessions.get('f2');
    assert.equal(record?.confirmedAt, 1_800_000_050);
    assert.equal(record?.upstreamSession, true);
    assert.deepEqual(await sessions.ofUpstreamSession('acme', 'idp-sid-1'), ['f2']);
    await sessions.remove('f2');
    assert.deepEqual(await sessions.ofUpstreamSession('acme', 'idp-sid-1'), [], 'its end leaves the index the hash names');
  });

  it('reads a record of the previous release (v 1, long names, services as text), and writes it anew in the compact form', async () => {
    const upstreamKey = 'sessions-of-upstream:acme:' + 'h'.repeat(43);
    await store.setTemp('session:f3', { v: 1, accountId: 'acme:u3', participantId: 'acme', startedAt: 5, confirmedAt: 7, claims, clients: [JSON.stringify(['rp', 'sid-rp', 'grant-rp'])], upstreamKey }, 60);
    await store.addToSet(upstreamKey, 'f3', 60);
    const record = await sessions.get('f3');
    assert.deepEqual(record, { id: 'f3', accountId: 'acme:u3', participantId: 'acme', startedAt: 5, confirmedAt: 7, claims, clients: [rp], upstreamSession: true });
    await sessions.confirm('f3', { claims: { email: 'new@acme.example' }, confirmedAt: 9, upstream: {} });
    assert.deepEqual(await store.getTemp('session:f3'), { v: 2, a: 'acme:u3', t: 5, c: 4, m: { email: 'new@acme.example' }, s: [['rp', 'sid-rp', 'grant-rp']], u: 'h'.repeat(43) });
    await sessions.remove('f3');
    assert.deepEqual(await store.setMembers(upstreamKey), [], 'the index named by a record of before is left');
  });

  it('writes a record the compact form cannot say (a participant that does not head its account id) as before', async () => {
    const login: PendingSessionLogin = { accountId: 'other:u4', participantId: 'acme', claims, upstream: {}, confirmedAt: 1_800_000_000 };
    await sessions.put('f4', login, 1_800_000_000);
    assert.equal((await store.getTemp<{ v: number }>('session:f4'))?.v, 1);
    assert.equal((await sessions.get('f4'))?.participantId, 'acme');
  });
});

describe('oidc-provider Sessions as stored (oidc-index.ts)', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const adapter = indexingAdapter(store, 'Session', 3600);
  const session = {
    iat: 1_800_000_010, exp: 1_800_028_810, uid: 'u-1', accountId: 'acme:u1', loginTs: 1_800_000_000, amr: ['pwd'], acr: 'urn:acr',
    authorizations: { rp: { grantId: 'g-1', sid: 'sid-1' }, other: { sid: 'sid-2', persistsLogout: true } },
  } as unknown as AdapterPayload;

  it('keeps a Session with one-letter fields, its login time as seconds before its iat, and gives it back as saved, by id and by uid', async () => {
    await adapter.upsert('j-1', { ...session }, 60);
    assert.deepEqual(await store.adapter('Session').find('j-1'), {
      iat: 1_800_000_010, exp: 1_800_028_810, uid: 'u-1', accountId: 'acme:u1', l: 10, m: ['pwd'], r: 'urn:acr',
      z: { rp: { g: 'g-1', s: 'sid-1' }, other: { s: 'sid-2', persistsLogout: true } },
    });
    assert.deepEqual(await adapter.find('j-1'), session);
    assert.deepEqual(await adapter.findByUid('u-1'), { ...session, jti: 'j-1' });
    assert.deepEqual(await liveSessions(store.adapter('Session')).findByUid('u-1'), { ...session, jti: 'j-1' }, 'what Concord reads of a live Session itself');
    assert.deepEqual(await store.setMembers('sessions-of-account:acme:u1'), ['u-1'], 'indexed by its account');
  });

  it('reads a Session of the previous release (long names) as it is', async () => {
    await store.adapter('Session').upsert('j-2', { ...session, uid: 'u-2' }, 60);
    assert.deepEqual(await adapter.find('j-2'), { ...session, uid: 'u-2' });
    assert.deepEqual(await liveSessions(store.adapter('Session')).find('j-2'), { ...session, uid: 'u-2' });
  });
});

describe('session records: the re-check state worth keeping (refreshWorthKeeping)', () => {
  const claims = { sub: 'u1' };
  const at = 1_800_000_000;
  const accessOnly = (expiresIn: number) => ({ protocol: 'oidc' as const, accessToken: 'opaque', accessTokenExpiresAt: at + expiresIn, claims });

  it('keeps a refresh token, and an access token that outlives the first re-check', () => {
    const refresh = { protocol: 'oidc' as const, refreshToken: 'rt', claims };
    assert.equal(refreshWorthKeeping(refresh, { revalidateAfter: 900 }, at), refresh);
    assert.deepEqual(refreshWorthKeeping(accessOnly(3600), { revalidateAfter: 900 }, at), accessOnly(3600));
    assert.equal(refreshWorthKeeping(undefined, { revalidateAfter: 900 }, at), undefined);
  });

  it('drops an access token alone that expires before the first re-check is due, and everything under revalidateAfter: off', () => {
    assert.equal(refreshWorthKeeping(accessOnly(600), { revalidateAfter: 900 }, at), undefined);
    assert.equal(refreshWorthKeeping(accessOnly(900), { revalidateAfter: 900 }, at), undefined);
    assert.equal(refreshWorthKeeping({ protocol: 'oidc', refreshToken: 'rt', claims }, { revalidateAfter: 'off' }, at), undefined);
  });
});

describe('session records: a new session whose index cannot be written', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  // The store as it is, except that adding to the account's index fails (its node gone, say).
  const failingIndex = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'addToSet') return (key: string, ...rest: unknown[]) => (key.startsWith('sessions-of-account:') ? Promise.reject(new Error('index write failed')) : (target.addToSet as (...a: unknown[]) => Promise<void>).call(target, key, ...rest));
      const value = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  const sessions = new SessionStore(failingIndex, createSecretBox(randomBytes(32).toString('base64')), 3600);
  const login: PendingSessionLogin = { accountId: 'acme:u1', participantId: 'acme', claims: {}, upstream: { logout: { protocol: 'oidc', idTokenHint: 'a.b.c' } }, confirmedAt: 1_800_000_000 };

  it('fails, and leaves neither its record nor its upstream state (written with the index, in the same round): no session that revocation cannot find', async () => {
    await assert.rejects(
      withRequestReads(async () => {
        sessions.markAbsent('new-1');
        await sessions.put('new-1', login, 1_800_000_000);
      }),
      /index write failed/,
    );
    assert.equal(await store.getTemp('session:new-1'), undefined);
    assert.equal(await store.getBytes('session-upstream:new-1'), undefined);
  });

  it('fails for a session that had a record too, leaving that record as it was', async () => {
    await store.setTemp('session:old-1', { v: 1, accountId: 'acme:u1', participantId: 'acme', startedAt: 1, confirmedAt: 1, claims: { before: true } }, 60);
    await assert.rejects(withRequestReads(() => sessions.put('old-1', login, 1_800_000_000)), /index write failed/);
    assert.deepEqual((await store.getTemp<{ claims: unknown }>('session:old-1'))?.claims, { before: true });
  });
});
