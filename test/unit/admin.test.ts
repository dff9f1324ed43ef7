import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { diffOf } from '../../src/admin/audit.ts';
import { AdminError } from '../../src/admin/errors.ts';
import { sealParticipant } from '../../src/admin/stored.ts';
import { createConfigSync } from '../../src/admin/sync.ts';
import { parseWith } from '../../src/admin/validation.ts';
import { ClientSchema, ParticipantSchema, type OidcUpstream, type Participant } from '../../src/config/index.ts';
import { createLogger, createMetrics } from '../../src/observability/index.ts';
import { Registry } from '../../src/participants/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { MemoryStore } from '../../src/store/index.ts';

const participant = (id: string, domains: string[], extra: Record<string, unknown> = {}): Participant =>
  ParticipantSchema.parse({ id, displayName: id, domains, upstream: { type: 'oidc', issuer: `https://${id}.example`, clientId: 'c', clientSecret: `secret-of-${id}` }, ...extra });

describe('audit diff', () => {
  it('lists changed leaves by path, arrays of values as one leaf, rules by index', () => {
    const before = participant('acme', ['a.example'], { mapping: { rules: [{ claim: 'x', from: 'a' }, { claim: 'y', from: 'b' }] } });
    const after = { ...before, displayName: 'Acme', domains: ['a.example', 'b.example'], mapping: { rules: [{ claim: 'x', from: 'a' }, { claim: 'y', from: 'c' }] } };
    assert.deepEqual(diffOf(before, after), {
      displayName: { from: 'acme', to: 'Acme' },
      domains: { from: ['a.example'], to: ['a.example', 'b.example'] },
      'mapping.rules.1.from': { from: 'b', to: 'c' },
    });
  });

  it('masks write-only fields, showing only that they changed', () => {
    const before = participant('acme', ['a.example']);
    const after = { ...before, upstream: { ...before.upstream, clientSecret: 'another-secret' } };
    assert.deepEqual(diffOf(before, after), { 'upstream.clientSecret': { from: '[redacted]', to: '[redacted]' } });
    assert.deepEqual(diffOf(undefined, before)?.['upstream.clientSecret'], { to: '[redacted]' });
    const client = ClientSchema.parse({ client_id: 'c', client_secret: 'client-secret-0123456789', redirect_uris: ['https://rp.example/cb'] });
    assert.deepEqual(diffOf(client, undefined)?.['client_secret'], { from: '[redacted]' });
    assert.doesNotMatch(JSON.stringify(diffOf(undefined, client)), /client-secret-0123456789/);
  });
});

describe('request validation', () => {
  it('names the first field in the message and lists every issue', () => {
    const schema = z.object({ a: z.string(), b: z.object({ c: z.number() }) });
    assert.throws(
      () => parseWith(schema, { a: 1, b: { c: 'x' } }, { what: 'thing' }),
      (e: AdminError) => e.status === 422 && e.code === 'invalid_request' && e.field === 'a' && /^invalid thing: a: .*\(and 1 more\)$/.test(e.message) && e.issues?.length === 2,
    );
  });

  it('reports problems inside a mapping like the mapping compiler: rule index and field', () => {
    const doc = { id: 'acme', displayName: 'A', domains: ['a.example'], upstream: { type: 'oidc', issuer: 'https://a.example', clientId: 'c' }, mapping: [{ claim: 'x', from: 'a' }, { claim: 'y', regex: { pattern: '' } }] };
    assert.throws(
      () => parseWith(ParticipantSchema, doc, { what: 'participant', participant: 'acme' }),
      (e: AdminError) => {
        assert.equal(e.code, 'invalid_mapping');
        assert.match(e.field!, /^mapping\.rules\[1\]/);
        for (const issue of e.issues as Array<{ participant: string; index: number }>) {
          assert.equal(issue.participant, 'acme');
          assert.equal(issue.index, 1);
        }
        return true;
      },
    );
  });
});

describe('config sync (memory store)', () => {
  const log = createLogger({ level: 'silent' });
  const secrets = createSecretBox(Buffer.alloc(32, 1).toString('base64'));
  const instance = (store: MemoryStore, seed: Participant[] = []) => {
    const registry = new Registry();
    for (const p of seed) registry.setParticipant(p);
    const sync = createConfigSync({ store, registry, secrets, metrics: createMetrics(), log, seed: { participants: seed, clients: [] }, intervalMs: 50 });
    return { registry, sync };
  };

  it('seeds once when instances start together', async () => {
    const store = new MemoryStore();
    const seed = [participant('acme', ['acme.example'])];
    const many = Array.from({ length: 4 }, () => instance(store, seed));
    await Promise.all(many.map((i) => i.sync.start()));
    assert.equal(await store.getCounter('config:version'), 1);
    assert.equal((await store.listRecords('participants')).length, 1);
    for (const i of many) {
      await i.sync.refresh();
      assert.equal(i.sync.version, 1);
      assert.equal((i.registry.participantForDomain('acme.example')?.config.upstream as OidcUpstream | undefined)?.clientSecret, 'secret-of-acme');
      await i.sync.stop();
    }
  });

  it('applies two participants swapping domains in one change, whatever the order', async () => {
    const store = new MemoryStore();
    const a = instance(store, [participant('one', ['one.example']), participant('two', ['two.example'])]);
    const b = instance(store, [participant('one', ['one.example']), participant('two', ['two.example'])]);
    await a.sync.start();
    await b.sync.start();
    await store.putRecord('participants', 'one', sealParticipant(participant('one', ['two.example']), secrets));
    await store.putRecord('participants', 'two', sealParticipant(participant('two', ['one.example']), secrets));
    await store.incr('config:version');
    await b.sync.refresh();
    assert.equal(b.registry.participantForDomain('two.example')?.config.id, 'one');
    assert.equal(b.registry.participantForDomain('one.example')?.config.id, 'two');
    await a.sync.stop();
    await b.sync.stop();
  });

  it('refuses a write that would take a domain or break the mapping, changing nothing', async () => {
    const store = new MemoryStore();
    const a = instance(store, [participant('one', ['one.example'])]);
    await a.sync.start();
    const version = await store.getCounter('config:version');
    await assert.rejects(a.sync.putParticipant(participant('two', ['one.example'])), { code: 'domain_conflict' });
    await assert.rejects(a.sync.putParticipant(participant('two', ['two.example'], { mapping: [{ claim: 'x', cel: '1 +' }] })), { code: 'invalid_mapping' });
    await assert.rejects(a.sync.putParticipant(participant('one', ['one.example']), 'new'), { code: 'already_exists' });
    await assert.rejects(a.sync.putParticipant(participant('nobody', ['n.example']), 'existing'), { code: 'not_found' });
    assert.equal(await store.getCounter('config:version'), version);
    assert.equal(a.registry.participants().length, 1);
    await a.sync.stop();
  });

  it('keeps serving the files when the store has no version, and writes them before the first change', async () => {
    const store = new MemoryStore();
    await store.incr('config:seeded'); // someone else "won" the seed and died before finishing
    const a = instance(store, [participant('one', ['one.example'])]);
    await a.sync.start();
    assert.equal(a.sync.version, 0);
    assert.ok(a.registry.participant('one'), 'the files stay the fallback');
    await a.sync.putParticipant(participant('two', ['two.example']));
    assert.deepEqual((await store.listRecords('participants')).map((r) => r.id).sort(), ['one', 'two']);
    assert.deepEqual(a.registry.participants().map((p) => p.config.id).sort(), ['one', 'two']);
    await a.sync.stop();
  });

  it('stores the upstream secret sealed', async () => {
    const store = new MemoryStore();
    const a = instance(store);
    await a.sync.start();
    await a.sync.putParticipant(participant('one', ['one.example']));
    const raw = JSON.stringify(await store.getRecord('participants', 'one'));
    assert.doesNotMatch(raw, /secret-of-one/);
    assert.match(raw, /"sealedClientSecret":"v2\./);
    await a.sync.stop();
  });
});
