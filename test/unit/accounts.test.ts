import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AccountStore } from '../../src/provider/index.ts';
import { MemoryStore } from '../../src/store/index.ts';

describe('accounts: who a person is, the claims kept once (in each session)', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());
  const accounts = new AccountStore(store, 3600);
  const claims = { email: 'Ada@Acme.example', name: 'Ada', groups: ['engineering'] };

  it('keeps the issuer and the email of the last login, not its claims; the id, participant and subject are the key’s', async () => {
    await accounts.save({ accountId: 'acme:u:1', participantId: 'acme', upstreamIssuer: 'https://idp.acme.example', upstreamSubject: 'u:1', claims, updatedAt: 1_800_000_000 });
    assert.deepEqual(await store.getTemp('account:acme:u:1'), { i: 'https://idp.acme.example', e: 'Ada@Acme.example', t: 1_800_000_000 }, 'one-letter fields');
    assert.deepEqual(await accounts.find('acme:u:1'), { accountId: 'acme:u:1', participantId: 'acme', upstreamSubject: 'u:1', upstreamIssuer: 'https://idp.acme.example', email: 'Ada@Acme.example', updatedAt: 1_800_000_000 });
    assert.deepEqual(await accounts.idsByEmail('ada@acme.example'), ['acme:u:1']);
    assert.deepEqual(await accounts.idsOfParticipant('acme'), ['acme:u:1']);
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
    assert.deepEqual(adds.sort(), [['accounts-by-email', 3600], ['accounts-of-participant', undefined]]);
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
