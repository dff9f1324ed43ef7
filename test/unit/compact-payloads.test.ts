import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { compactPayloads } from '../../src/provider/compact-payloads.ts';
import { randomBytes } from 'node:crypto';
import { HELD_LOGIN } from '../../src/sessions/index.ts';
import { createStore, MemoryStore, withRequestReads, type AdapterPayload } from '../../src/store/index.ts';
import { REDIS_URL } from '../support/redis-dump.ts';

const ISSUER = 'https://concord.example';

describe('oidc-provider records without their model and id', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());

  it('stores a Grant and an Interaction without kind and jti, and gives them back with both', async () => {
    for (const name of ['Grant', 'Interaction']) {
      const adapter = compactPayloads(store.adapter(name), name, ISSUER);
      const payload = { kind: name, jti: `id-${name}`, iat: 1, exp: 2, clientId: 'rp', accountId: 'acme:u1', ...(name === 'Interaction' ? { returnTo: `${ISSUER}/auth/id-${name}` } : {}) } as AdapterPayload;
      await adapter.upsert(`id-${name}`, payload, 60);
      const stored = (await store.adapter(name).find(`id-${name}`)) as AdapterPayload;
      assert.equal(stored.kind, undefined);
      assert.equal(stored.jti, undefined);
      assert.equal(stored.returnTo, undefined, 'the resume URL is the id’s');
      // An Interaction's iat is not kept (its exp says when it ends).
      const { iat, ...rest } = payload;
      assert.deepEqual(await adapter.find(`id-${name}`), name === 'Interaction' ? rest : { ...rest, iat });
    }
  });

  it('stores a Session without its jti too, and gives it back with it found by id or by uid (memory and Redis stores), a Session stored with it as it is', async () => {
    const redis = await createStore({ url: REDIS_URL, prefix: `compact-${randomBytes(4).toString('hex')}:` });
    try {
      for (const backend of [store, redis]) {
        const adapter = compactPayloads(backend.adapter('Session'), 'Session', ISSUER);
        const payload = { kind: 'Session', jti: 'j1', uid: 'u1', accountId: 'acme:u1', exp: 2 } as AdapterPayload;
        await adapter.upsert('j1', payload, 60);
        const stored = (await backend.adapter('Session').find('j1')) as AdapterPayload;
        assert.equal(stored.kind, undefined);
        assert.equal(stored.jti, undefined, `${backend.kind}: stored without its jti`);
        assert.deepEqual(await adapter.find('j1'), payload);
        assert.deepEqual(await adapter.findByUid('u1'), payload);
        assert.deepEqual(await withRequestReads(() => adapter.findByUid('u1')), payload, 'within a request too');
        // A Session of the previous release, stored with its jti.
        const before = { kind: 'Session', jti: 'j2', uid: 'u2', accountId: 'acme:u1', exp: 2 } as AdapterPayload;
        await backend.adapter('Session').upsert('j2', before, 60);
        assert.deepEqual(await adapter.findByUid('u2'), before);
      }
    } finally {
      await redis.close();
    }
  });

  it("stores a refresh token without what oidc-provider's first issue of it says (rotations 0, gty authorization_code, iiat = iat), and gives it back with them; a rotated one keeps them", async () => {
    const adapter = compactPayloads(store.adapter('RefreshToken'), 'RefreshToken', ISSUER);
    const first = { kind: 'RefreshToken', jti: 'r1', iat: 1_800_000_000, exp: 1_801_000_000, iiat: 1_800_000_000, rotations: 0, gty: 'authorization_code', grantId: 'g1', accountId: 'acme:u1' } as AdapterPayload;
    await adapter.upsert('r1', first, 60);
    const stored = (await store.adapter('RefreshToken').find('r1')) as AdapterPayload & Record<string, unknown>;
    for (const field of ['rotations', 'gty', 'iiat']) assert.equal(stored[field], undefined, `${field} left out`);
    assert.deepEqual(await adapter.find('r1'), first);
    const rotated = { ...first, jti: 'r2', iat: 1_800_003_600, rotations: 1, gty: 'authorization_code refresh_token' } as AdapterPayload;
    await adapter.upsert('r2', rotated, 60);
    const kept = (await store.adapter('RefreshToken').find('r2')) as AdapterPayload & Record<string, unknown>;
    assert.deepEqual([kept.rotations, kept.gty, kept.iiat], [1, 'authorization_code refresh_token', 1_800_000_000]);
    assert.deepEqual(await adapter.find('r2'), rotated);
  });

  it('stores a refresh token and a Grant with one-letter field names and the issuer as its resource left out, and gives them back as they were', async () => {
    const tokens = compactPayloads(store.adapter('RefreshToken'), 'RefreshToken', ISSUER);
    const token = {
      kind: 'RefreshToken', jti: 'r5', iat: 1_800_000_000, exp: 1_801_000_000, iiat: 1_800_000_000, rotations: 0, gty: 'authorization_code',
      accountId: 'acme:u1', acr: 'urn:acr', amr: ['pwd'], authTime: 1_799_999_990, expiresWithSession: true, grantId: 'g5', nonce: 'n-1',
      resource: ISSUER, scope: 'openid email', sessionUid: 'su-1', clientId: 'rp',
    } as AdapterPayload;
    await tokens.upsert('r5', token, 60);
    const stored = (await store.adapter('RefreshToken').find('r5')) as AdapterPayload;
    assert.deepEqual(stored, { iat: 1_800_000_000, exp: 1_801_000_000, a: 'acme:u1', r: 'urn:acr', m: ['pwd'], t: 1_799_999_990, expiresWithSession: true, grantId: 'g5', n: 'n-1', s: 'openid email', sessionUid: 'su-1', c: 'rp', jti: 'r5' }, 'what the store reads (grantId, sessionUid, expiresWithSession) keeps its name');
    assert.deepEqual(await tokens.find('r5'), token);
    // Another resource, and none.
    for (const [id, resource] of [['r6', 'https://api.example'], ['r7', undefined]] as const) {
      const other = { ...token, jti: id, resource } as AdapterPayload;
      if (resource === undefined) delete other.resource;
      await tokens.upsert(id, other, 60);
      assert.deepEqual(await tokens.find(id), other);
    }
    // A refresh token of the previous release: long names, read as they are.
    const before = { iat: 1, exp: 2, accountId: 'acme:u1', clientId: 'rp', resource: 'https://api.example', scope: 'openid', grantId: 'g5' } as AdapterPayload;
    await store.adapter('RefreshToken').upsert('h-r8', before, 60);
    assert.deepEqual(await compactPayloads(store.adapter('RefreshToken'), 'RefreshToken', ISSUER).find('h-r8'), { ...before, kind: 'RefreshToken', rotations: 0, gty: 'authorization_code', iiat: 1 });

    const grants = compactPayloads(store.adapter('Grant'), 'Grant', ISSUER);
    const grant = { kind: 'Grant', jti: 'g5', iat: 1, exp: 2, clientId: 'rp', accountId: 'acme:u1', openid: { scope: 'openid email' }, resources: { [ISSUER]: 'openid email', 'https://api.example': 'read' } } as AdapterPayload;
    await grants.upsert('g5', grant, 60);
    assert.deepEqual(await store.adapter('Grant').find('g5'), { iat: 1, exp: 2, c: 'rp', accountId: 'acme:u1', o: { scope: 'openid email' }, r: { '': 'openid email', 'https://api.example': 'read' } }, 'the account index reads accountId');
    assert.deepEqual(await grants.find('g5'), grant);
    // A login's Grant: the issuer alone, with the OpenID scope: no `r` at all.
    const login = { ...grant, jti: 'g7', resources: { [ISSUER]: 'openid email' } } as AdapterPayload;
    await grants.upsert('g7', login, 60);
    assert.equal(((await store.adapter('Grant').find('g7')) as Record<string, unknown>).r, undefined);
    assert.deepEqual(await grants.find('g7'), login);
    // Others: another resource alone, the issuer with another scope, no resources at all, no OpenID scope.
    const others = [
      { ...grant, jti: 'g6', resources: { 'https://api.example': 'read' } },
      { ...grant, jti: 'g8', resources: { [ISSUER]: 'openid' } },
      { kind: 'Grant', jti: 'g9', iat: 1, exp: 2, clientId: 'rp', accountId: 'acme:u1', openid: { scope: 'openid' } },
      { kind: 'Grant', jti: 'g10', iat: 1, exp: 2, clientId: 'rp', accountId: 'acme:u1', resources: { [ISSUER]: 'read' } },
    ] as AdapterPayload[];
    for (const other of others) {
      await grants.upsert(String(other.jti), other, 60);
      assert.deepEqual(await grants.find(String(other.jti)), other, String(other.jti));
    }
  });

  it('writes a consumed refresh token again with only what the refusal of its replay reads (memory and Redis stores), one of the previous release (long names) too', async () => {
    const redis = await createStore({ url: REDIS_URL, prefix: `compact-${randomBytes(4).toString('hex')}:` });
    try {
      for (const backend of [store, redis]) {
        const tokens = compactPayloads(backend.adapter('RefreshToken'), 'RefreshToken', ISSUER);
        const token = {
          kind: 'RefreshToken', jti: 'rc1', iat: 1_800_000_000, exp: 1_801_000_000, iiat: 1_799_000_000, rotations: 3, gty: 'authorization_code refresh_token',
          accountId: 'acme:u1', acr: 'urn:acr', amr: ['pwd'], authTime: 1_799_999_990, expiresWithSession: true, grantId: 'g5', nonce: 'n-1', claims: { id_token: { email: null } },
          resource: 'https://api.example', scope: 'openid email', sessionUid: 'su-1', sid: 'sid-1', clientId: 'rp', jkt: 'thumb', 'x5t#S256': 'cert', attestationJkt: 'att',
        } as AdapterPayload;
        // Previous release: long names, and `kind` (a store of then kept it).
        const before = { iat: 1, exp: 1_801_000_000, accountId: 'acme:u1', acr: 'urn:acr', amr: ['pwd'], authTime: 1, clientId: 'rp', grantId: 'g6', nonce: 'n', resource: ISSUER, scope: 'openid', sessionUid: 'su-2', expiresWithSession: false, kind: 'RefreshToken', rotations: 0, gty: 'authorization_code', iiat: 1 } as AdapterPayload;
        await tokens.upsert('rc1', token, 60);
        await backend.adapter('RefreshToken').upsert('rc2', before, 60);
        await withRequestReads(async () => {
          for (const id of ['rc1', 'rc2']) {
            assert.ok(await tokens.find(id));
            await tokens.consume(id);
          }
        });
        const stored = (id: string) => backend.adapter('RefreshToken').find(id) as Promise<Record<string, unknown>>;
        const { consumed, ...kept } = await stored('rc1');
        assert.equal(typeof consumed, 'number', `${backend.kind}: consumed`);
        assert.deepEqual(kept, { exp: 1_801_000_000, a: 'acme:u1', c: 'rp', s: 'openid email', grantId: 'g5', sessionUid: 'su-1', expiresWithSession: true, jkt: 'thumb', 'x5t#S256': 'cert', attestationJkt: 'att', jti: 'rc1' }, backend.kind);
        const { consumed: consumedBefore, ...keptBefore } = await stored('rc2');
        assert.equal(typeof consumedBefore, 'number');
        assert.deepEqual(keptBefore, { exp: 1_801_000_000, accountId: 'acme:u1', clientId: 'rp', grantId: 'g6', scope: 'openid', sessionUid: 'su-2', expiresWithSession: false, kind: 'RefreshToken' }, `${backend.kind}: the previous release's names`);
        // What oidc-provider reads of it before its `consumed` (grants/refresh_token.js), under its names.
        const found = (await tokens.find('rc1')) as Record<string, unknown>;
        for (const field of ['clientId', 'exp', 'grantId', 'scope', 'accountId', 'sessionUid', 'expiresWithSession', 'jkt', 'x5t#S256', 'attestationJkt', 'consumed']) {
          assert.deepEqual(found[field], field === 'consumed' ? consumed : token[field], `${backend.kind}: ${field}`);
        }
      }
    } finally {
      await redis.close();
    }
  });

  it('keeps what differs from the place (another kind, another jti) and reads records written with both', async () => {
    const interactions = compactPayloads(store.adapter('Interaction'), 'Interaction', ISSUER);
    const elsewhere = { kind: 'Interaction', jti: 'i2', returnTo: 'https://elsewhere.example/auth/i2', exp: 2 } as AdapterPayload;
    await interactions.upsert('i2', elsewhere, 60);
    assert.deepEqual(await interactions.find('i2'), elsewhere);
    const adapter = compactPayloads(store.adapter('Grant'), 'Grant', ISSUER);
    const odd = { kind: 'Other', jti: 'not-the-id', exp: 2 } as AdapterPayload;
    await adapter.upsert('g2', odd, 60);
    assert.deepEqual(await adapter.find('g2'), odd);
    const before = { kind: 'Grant', jti: 'g3', exp: 2, clientId: 'rp' } as AdapterPayload;
    await store.adapter('Grant').upsert('g3', before, 60);
    assert.deepEqual(await adapter.find('g3'), before);
    assert.equal(await adapter.find('absent'), undefined);
  });

  it('stores an Interaction without its cid, its iat and its empty prompt details, and gives the details back; details that say something stay', async () => {
    const interactions = compactPayloads(store.adapter('Interaction'), 'Interaction', ISSUER);
    const login = { kind: 'Interaction', jti: 'i4', returnTo: `${ISSUER}/auth/i4`, iat: 1, exp: 2, cid: 'correlation-id-0123456789', prompt: { name: 'login', reasons: ['no_session'], details: {} }, params: { client_id: 'rp' } } as unknown as AdapterPayload;
    await interactions.upsert('i4', login, 60);
    const stored = (await store.adapter('Interaction').find('i4')) as AdapterPayload;
    assert.equal(stored.cid, undefined, 'no cid');
    assert.equal(stored.iat, undefined, 'no iat');
    assert.deepEqual(stored.prompt, { name: 'login', reasons: ['no_session'] }, 'no empty details');
    const { cid: _cid, iat: _iat, ...withoutCid } = login;
    assert.deepEqual(await interactions.find('i4'), withoutCid, 'oidc-provider makes a cid anew when the next interaction needs one, an iat at its next save');
    const consent = { kind: 'Interaction', jti: 'i5', returnTo: `${ISSUER}/auth/i5`, exp: 2, prompt: { name: 'consent', reasons: ['op_scopes_missing'], details: { missingOIDCScope: ['openid'] } } } as unknown as AdapterPayload;
    await interactions.upsert('i5', consent, 60);
    assert.deepEqual(((await store.adapter('Interaction').find('i5')) as AdapterPayload).prompt, consent.prompt);
    assert.deepEqual(await interactions.find('i5'), consent);
    // Written by an earlier version, with both: read as it is.
    const before = { exp: 2, cid: 'c', prompt: { name: 'login', reasons: [], details: {} } } as unknown as AdapterPayload;
    await store.adapter('Interaction').upsert('i6', before, 60);
    assert.deepEqual(await interactions.find('i6'), { ...before, kind: 'Interaction', jti: 'i6', returnTo: `${ISSUER}/auth/i6` });
  });

  it('stores an Interaction’s parameters under short names, a resource that is the issuer as "", and gives them back; parameters stored before, or one named like a short name, read as they are', async () => {
    const interactions = compactPayloads(store.adapter('Interaction'), 'Interaction', ISSUER);
    const params = {
      client_id: 'rp', code_challenge: 'Z8YUml4Z15lnsGs3hIptajCb-AkZoozH8A-za-UYVc4', code_challenge_method: 'S256', nonce: 'n0', redirect_uri: 'https://rp.example/cb',
      response_type: 'code', scope: 'openid email', state: 's0', resource: ISSUER, login_hint: 'ada@acme.example', max_age: 300, custom_param: 'kept',
    };
    const payload = { kind: 'Interaction', jti: 'ip1', returnTo: `${ISSUER}/auth/ip1`, exp: 2, prompt: { name: 'login', reasons: ['no_session'], details: {} }, params } as unknown as AdapterPayload;
    await interactions.upsert('ip1', payload, 60);
    const stored = (await store.adapter('Interaction').find('ip1')) as AdapterPayload & { p?: Record<string, unknown> };
    assert.equal(stored.params, undefined);
    assert.deepEqual(stored.p, { c: 'rp', cc: params.code_challenge, cm: 'S256', n: 'n0', r: 'https://rp.example/cb', t: 'code', s: 'openid email', st: 's0', rs: '', lh: 'ada@acme.example', ma: 300, custom_param: 'kept' });
    assert.ok(JSON.stringify(stored).length < JSON.stringify({ ...stored, p: undefined, params }).length - 100, 'about 100 bytes shorter');
    assert.deepEqual(await interactions.find('ip1'), payload);
    // Another resource stays as it is.
    await interactions.upsert('ip2', { ...payload, jti: 'ip2', returnTo: `${ISSUER}/auth/ip2`, params: { ...params, resource: 'https://api.example' } } as AdapterPayload, 60);
    assert.equal(((await store.adapter('Interaction').find('ip2')) as { p: { rs: unknown } }).p.rs, 'https://api.example');
    assert.equal(((await interactions.find('ip2'))!.params as { resource: unknown }).resource, 'https://api.example');
    // Stored before (as params): read as it is.
    await store.adapter('Interaction').upsert('ip3', { exp: 2, params } as unknown as AdapterPayload, 60);
    assert.deepEqual((await interactions.find('ip3'))!.params, params);
    // A parameter already named like a short name: stored as it is.
    await interactions.upsert('ip4', { ...payload, jti: 'ip4', returnTo: `${ISSUER}/auth/ip4`, params: { ...params, cc: 'odd' } } as AdapterPayload, 60);
    assert.deepEqual(((await store.adapter('Interaction').find('ip4')) as AdapterPayload).params, { ...params, cc: 'odd' });
    assert.deepEqual((await interactions.find('ip4'))!.params, { ...params, cc: 'odd' });
  });

  it('does not carry a resumed login’s sealed held login on into the next interaction’s lastSubmission; its result keeps it', async () => {
    const interactions = compactPayloads(store.adapter('Interaction'), 'Interaction', ISSUER);
    const next = { kind: 'Interaction', jti: 'i7', returnTo: `${ISSUER}/auth/i7`, exp: 2, lastSubmission: { login: { accountId: 'acme:u1' }, select_account: {}, [HELD_LOGIN]: 'z2.sealed' } } as unknown as AdapterPayload;
    await interactions.upsert('i7', next, 60);
    assert.deepEqual((await interactions.find('i7'))?.lastSubmission, { login: { accountId: 'acme:u1' }, select_account: {} });
    const finished = { kind: 'Interaction', jti: 'i8', returnTo: `${ISSUER}/auth/i8`, exp: 2, result: { login: { accountId: 'acme:u1' }, [HELD_LOGIN]: 'z2.sealed' } } as unknown as AdapterPayload;
    await interactions.upsert('i8', finished, 60);
    assert.deepEqual(await interactions.find('i8'), finished);
  });
});
