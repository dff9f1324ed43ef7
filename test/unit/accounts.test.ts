import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AccountStore } from '../../src/provider/index.ts';
import { randomBytes } from 'node:crypto';
import { createSecretBox } from '../../src/secrets/index.ts';
import { SessionStore } from '../../src/sessions/records.ts';
import { MemoryStore } from '../../src/store/index.ts';

describe('accounts: who a person is, the claims kept once (in each session)', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const accounts = new AccountStore(store, 3600);
  const claims = { email: 'Ada@Acme.example', name: 'Ada', groups: ['engineering'] };

  it('keeps the issuer and the email of the last login, not its claims, in its sessions’ index (no key of its own); the id, participant and subject are the key’s', async () => {
    await accounts.save({ accountId: 'acme:u:1', participantId: 'acme', upstreamIssuer: 'https://idp.acme.example', upstreamSubject: 'u:1', claims, updatedAt: 1_800_000_000 });
    assert.equal(await store.getTemp('account:acme:u:1'), undefined, 'no key of its own');
    assert.deepEqual(await store.setMembers('sessions-of-account:acme:u:1'), ['a', 'i']);
    assert.deepEqual(await store.setValues('sessions-of-account:acme:u:1', ['a', 'i']), ['[1800000000,"Ada@Acme.example"]', 'https://idp.acme.example']);
    assert.deepEqual(await accounts.find('acme:u:1'), { accountId: 'acme:u:1', participantId: 'acme', upstreamSubject: 'u:1', upstreamIssuer: 'https://idp.acme.example', email: 'Ada@Acme.example', updatedAt: 1_800_000_000 });
    assert.deepEqual(await accounts.idsByEmail('ada@acme.example'), ['acme:u:1']);
    assert.deepEqual(await accounts.idsOfParticipant('acme'), ['acme:u:1']);
    await accounts.remove('acme:u:1');
    assert.equal(await accounts.find('acme:u:1'), undefined);
    assert.deepEqual(await store.setMembers('sessions-of-account:acme:u:1'), [], 'its members leave its sessions’ index');
  });

  it('leaves the account out of its sessions (the index’s members that are the account’s are no session)', async () => {
    const sessions = new SessionStore(store, createSecretBox(randomBytes(32).toString('base64')), 3600);
    await accounts.save({ accountId: 'acme:u:4', participantId: 'acme', upstreamIssuer: 'https://idp.acme.example', upstreamSubject: 'u:4', claims, updatedAt: 1 });
    await sessions.put('uid-4', { accountId: 'acme:u:4', participantId: 'acme', claims, upstream: {}, confirmedAt: 1 }, 1);
    await store.addToSet('sessions-of-account:acme:u:4', 'g:grant-4', 3600);
    assert.deepEqual(await sessions.indexOfAccount('acme:u:4'), { sessions: ['uid-4'], grants: ['grant-4'] });
    assert.equal((await accounts.find('acme:u:4'))?.updatedAt, 1);
  });

  it('indexes an account under its participant without a lifetime (one SADD a login); the index written before is read and forgotten with it', async () => {
    const adds: Array<[string, number | undefined]> = [];
    const addToSet = (k: string, member: string, ttl?: number) => {
      adds.push([k.split(':')[0]!, ttl]);
      return store.addToSet(k, member, ttl);
    };
    const spied = new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'addToSet') return addToSet;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await new AccountStore(spied, 3600).save({ accountId: 'globex:u:1', participantId: 'globex', upstreamIssuer: 'https://idp.globex.example', upstreamSubject: 'u:1', claims: { email: 'a@globex.example' }, updatedAt: 1 });
    assert.deepEqual(adds.sort(), [['accounts-of-participant', undefined]], 'the by-email index and the account: putInSet');
    await store.addToSet('participant-accounts:globex', 'globex:u:0', 60); // as written before
    assert.deepEqual((await accounts.idsOfParticipant('globex')).sort(), ['globex:u:0', 'globex:u:1']);
    await accounts.forgetParticipant('globex');
    assert.deepEqual(await accounts.idsOfParticipant('globex'), []);
  });

  it('reads an account of the previous release with its last login’s claims, and finds it by email', async () => {
    const before = { accountId: 'acme:u2', participantId: 'acme', upstreamIssuer: 'https://idp.acme.example', upstreamSubject: 'u2', claims: { email: 'bob@acme.example', name: 'Bob' }, updatedAt: 1 };
    await store.setTemp('account:acme:u2', before, 60);
    await store.addToSet(`accounts-by-email:${(await import('node:crypto')).createHash('sha256').update('bob@acme.example').digest('base64url')}`, 'acme:u2', 60);
    assert.deepEqual(await accounts.find('acme:u2'), before);
    // One of the previous release: long names, no claims.
    const named = { upstreamIssuer: 'https://idp.acme.example', email: 'carol@acme.example', updatedAt: 2 };
    await store.setTemp('account:acme:u3', named, 60);
    assert.deepEqual(await accounts.find('acme:u3'), { accountId: 'acme:u3', participantId: 'acme', upstreamSubject: 'u3', ...named });
    assert.deepEqual(await accounts.idsByEmail('BOB@acme.example'), ['acme:u2']);
  });
});
