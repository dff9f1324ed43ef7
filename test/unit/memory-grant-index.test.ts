import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore } from '../../src/store/index.ts';

describe('the memory store’s grant index', () => {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  after(() => store.close());

  it('is a set of the grant’s token keys, as in Redis: a token is added, not the whole index rewritten', async () => {
    const [at, rt] = [store.adapter('AccessToken'), store.adapter('RefreshToken')];
    for (let i = 0; i < 50; i++) await (i % 2 ? at : rt).upsert(`t${i}`, { jti: `t${i}`, grantId: 'g1' }, 60);
    await at.upsert('other', { jti: 'other', grantId: 'g2' }, 60);
    const members = await store.setMembers('oidc:grant:g1');
    assert.equal(members.length, 50);
    assert.ok(members.includes('oidc:AccessToken:t1') && members.includes('oidc:RefreshToken:t0'));
    await rt.revokeByGrantId('g1');
    assert.deepEqual(await store.setMembers('oidc:grant:g1'), [], 'the index goes with its tokens');
    for (let i = 0; i < 50; i++) assert.equal(await (i % 2 ? at : rt).find(`t${i}`), undefined);
    assert.ok(await at.find('other'), 'another grant’s token stays');
  });
});
