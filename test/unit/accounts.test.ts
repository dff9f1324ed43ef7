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
    assert.deepEqual(await store.getTemp('account:acme:u:1'), { upstreamIssuer: 'https://idp.acme.example', email: 'Ada@Acme.example', updatedAt: 1_800_000_000 });
    assert.deepEqual(await accounts.find('acme:u:1'), { accountId: 'acme:u:1', participantId: 'acme', upstreamSubject: 'u:1', upstreamIssuer: 'https://idp.acme.example', email: 'Ada@Acme.example', updatedAt: 1_800_000_000 });
    assert.deepEqual(await accounts.idsByEmail('ada@acme.example'), ['acme:u:1']);
    assert.deepEqual(await accounts.idsOfParticipant('acme'), ['acme:u:1']);
  });

  it('reads an account of the previous release with its last login’s claims, and finds it by email', async () => {
    const before = { accountId: 'acme:u2', participantId: 'acme', upstreamIssuer: 'https://idp.acme.example', upstreamSubject: 'u2', claims: { email: 'bob@acme.example', name: 'Bob' }, updatedAt: 1 };
    await store.setTemp('account:acme:u2', before, 60);
    await store.addToSet(`accounts-by-email:${(await import('node:crypto')).createHash('sha256').update('bob@acme.example').digest('base64url')}`, 'acme:u2', 60);
    assert.deepEqual(await accounts.find('acme:u2'), before);
    assert.deepEqual(await accounts.idsByEmail('BOB@acme.example'), ['acme:u2']);
  });
});
