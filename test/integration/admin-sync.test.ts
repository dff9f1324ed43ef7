import type { OidcUpstream } from '../../src/config/index.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AdapterPayload } from '../../src/store/index.ts';
import { startConcord, type TestConcord } from '../support/concord.ts';
import { Browser } from '../support/http-client.ts';
import {
  adminApi,
  authorizationUrl,
  clientDoc,
  dropRedisPrefix,
  eventually,
  participantDoc,
  REDIS_URL,
  SECRETS_KEY,
  startDiscoveryServer,
  uniquePrefix,
  UPSTREAM_SECRET,
  type DiscoveryServer,
} from './admin-fixtures.ts';

/**
 * Two Concord instances on one real Redis: a change made through either instance's admin API is
 * served by the other within a second, and offboarding reaches every instance.
 */
describe('admin changes on a shared Redis', () => {
  const prefix = uniquePrefix('admin-sync');
  // Domain proof off: these tests are about the sync (domain-proof.test.ts proves domains across instances).
  const settings = { store: REDIS_URL, storePrefix: prefix, secretsKey: SECRETS_KEY, domainProof: { mode: 'off' } };
  const seedClients = [clientDoc('portal')];
  let a: TestConcord;
  let b: TestConcord;
  let upstream: DiscoveryServer;
  let apiA: ReturnType<typeof adminApi>;
  let apiB: ReturnType<typeof adminApi>;

  /** Starts a login on `instance` for `email`; stops at the upstream's authorization endpoint if it gets there. */
  const login = (instance: TestConcord, email: string) =>
    new Browser().get(authorizationUrl(instance.issuer, 'portal', email), { stopAt: (url) => url.href.startsWith(upstream.authorizationEndpoint) });

  before(async () => {
    upstream = await startDiscoveryServer();
    a = await startConcord({ settings, clients: seedClients });
    b = await startConcord({ settings, clients: seedClients });
    apiA = adminApi(a.adminUrl);
    apiB = adminApi(b.adminUrl);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await upstream.close();
    await dropRedisPrefix(prefix);
  });

  it('seeds the store from the files once, and both instances serve it', async () => {
    assert.equal(await a.concord.store.getCounter('config:version'), 1, 'one seed, one version');
    assert.equal(await a.concord.store.getCounter('config:seeded'), 1, 'the second instance found a version and did not try to seed');
    assert.ok(b.concord.registry.client('portal'));
    assert.equal((await apiB.get('/admin/v1/clients/portal')).status, 200);
  });

  it('serves a participant added on A from B within a second: API, registry and login redirect', async () => {
    const created = await apiA.post('/admin/v1/participants', participantDoc('acme', upstream.issuer, 'acme.example'));
    assert.equal(created.status, 201, created.text);
    const { ms } = await eventually(() => b.concord.registry.participantForDomain('acme.example'), 1000, 'B serves acme');
    assert.ok(ms < 1000, `took ${ms} ms`);
    const onB = await apiB.get('/admin/v1/participants/acme');
    assert.equal(onB.status, 200);
    assert.equal(onB.body.upstream.clientSecretSet, true);
    assert.equal((b.concord.registry.participant('acme')?.config.upstream as OidcUpstream | undefined)?.clientSecret, UPSTREAM_SECRET, 'B opened the sealed secret');

    const page = await login(b, 'alice@acme.example');
    assert.ok(page.stoppedAt, `B redirected to the upstream (status ${page.status}, chain ${page.chain.map((h) => h.url.pathname).join(' ')})`);
    assert.equal(page.stoppedAt.searchParams.get('client_id'), 'concord-at-acme');
    assert.equal(page.stoppedAt.searchParams.get('login_hint'), 'alice@acme.example');
    assert.equal(page.stoppedAt.searchParams.get('redirect_uri'), `${b.issuer}/broker/acme/callback`);
  });

  it('stops logins on A within a second of a disable on B, and resumes them on enable', async () => {
    assert.equal((await apiB.post('/admin/v1/participants/acme/disable')).status, 200);
    const { ms } = await eventually(() => a.concord.registry.participant('acme')?.config.enabled === false, 1000, 'A sees the disable');
    assert.ok(ms < 1000);
    const refused = await login(a, 'alice@acme.example');
    assert.equal(refused.stoppedAt, undefined, 'no redirect to the upstream');
    assert.equal(refused.status, 403);

    assert.equal((await apiB.post('/admin/v1/participants/acme/enable')).status, 200);
    await eventually(() => a.concord.registry.participant('acme')?.config.enabled === true, 1000, 'A sees the enable');
    assert.ok((await login(a, 'alice@acme.example')).stoppedAt);
  });

  it('refuses on A a domain that B just gave to another participant, even before A applied it', async () => {
    const res = await apiB.post('/admin/v1/participants', participantDoc('globex', upstream.issuer, 'globex.example'));
    assert.equal(res.status, 201);
    const taken = await apiA.post('/admin/v1/participants', participantDoc('copycat', upstream.issuer, 'globex.example'));
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error, 'domain_conflict');
  });

  it('catches up with a change whose message was missed, by the version check', async () => {
    // Written as another instance would, but without publishing: only the periodic check can see it.
    const stored = await a.concord.store.getRecord<{ config: { displayName: string } }>('participants', 'globex');
    assert.ok(stored);
    stored.config.displayName = 'Globex (renamed quietly)';
    await a.concord.store.putRecord('participants', 'globex', stored);
    const version = await a.concord.store.incr('config:version');
    await eventually(() => b.concord.registry.participant('globex')?.config.displayName === 'Globex (renamed quietly)', 1500, 'B polled the version');
    await eventually(() => a.concord.registry.participant('globex')?.config.displayName === 'Globex (renamed quietly)', 1500, 'A polled the version');
    const metrics = await (await fetch(`${b.adminUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`^concord_config_version ${version}$`, 'm'));
  });

  it('keeps the previous version of a participant whose new version does not compile here, and logs it', async () => {
    const stored = await a.concord.store.getRecord<{ config: { displayName: string; mapping: unknown } }>('participants', 'globex');
    assert.ok(stored);
    stored.config.displayName = 'Broken Globex';
    stored.config.mapping = { rules: [{ claim: 'x', cel: 'claims.(' }] };
    await a.concord.store.putRecord('participants', 'globex', stored);
    await a.concord.store.incr('config:version');
    await eventually(() => b.rawLogs().includes('cannot be served by this instance'), 1500, 'B logged the refusal');
    assert.equal(b.concord.registry.participant('globex')?.config.displayName, 'Globex (renamed quietly)');
    assert.equal(b.concord.registry.participantForDomain('globex.example')?.config.id, 'globex');
  });

  it('deleting a participant on B ends its users\' grants, refresh tokens and sessions for both instances', async () => {
    const seed = async (participantId: string, n: string) => {
      const accountId = `${participantId}:user-${n}`;
      const { store, accounts } = a.concord;
      await accounts.save({ accountId, participantId, upstreamIssuer: upstream.issuer, upstreamSubject: `user-${n}`, claims: {}, updatedAt: Date.now() });
      await store.adapter('Grant').upsert(`grant-${n}`, { kind: 'Grant', jti: `grant-${n}`, accountId, clientId: 'portal' } as AdapterPayload, 3600);
      await store.addToSet(`account-grants:${accountId}`, `grant-${n}`);
      await store.adapter('RefreshToken').upsert(`rt-${n}`, { kind: 'RefreshToken', jti: `rt-${n}`, accountId, grantId: `grant-${n}`, clientId: 'portal' } as AdapterPayload, 3600);
      await store.adapter('Session').upsert(`session-${n}`, { kind: 'Session', jti: `session-${n}`, uid: `uid-${n}`, accountId } as AdapterPayload, 3600);
      await store.addToSet(`account-sessions:${accountId}`, `session-${n}`);
    };
    await seed('acme', '1');
    await seed('acme', '2');
    await seed('globex', '3');

    const deleted = await apiB.del('/admin/v1/participants/acme');
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(deleted.body, { deleted: 'acme', revoked: { accounts: 2, sessions: 2, grants: 2 } });

    for (const instance of [a, b]) {
      const { store } = instance.concord;
      for (const n of ['1', '2']) {
        assert.equal(await store.adapter('RefreshToken').find(`rt-${n}`), undefined, `rt-${n} revoked`);
        assert.equal(await store.adapter('Grant').find(`grant-${n}`), undefined);
        assert.equal(await store.adapter('Session').find(`session-${n}`), undefined);
      }
      assert.ok(await store.adapter('RefreshToken').find('rt-3'), 'another participant\'s token stays');
    }
    await eventually(() => a.concord.registry.participant('acme') === undefined, 1000, 'A dropped acme');
    assert.equal((await apiA.get('/admin/v1/participants/acme')).status, 404);
    const refused = await login(a, 'alice@acme.example');
    assert.equal(refused.stoppedAt, undefined);
  });

  it('keeps the audit log and the runtime configuration across a restart, instead of the files', async () => {
    await a.close();
    a = await startConcord({ settings, clients: [clientDoc('from-files-only')] });
    apiA = adminApi(a.adminUrl);
    assert.equal(a.concord.registry.client('from-files-only'), undefined, 'the store, once seeded, wins over the files');
    assert.ok(a.concord.registry.client('portal'));
    // Its stored version does not compile (previous test) and a fresh instance has nothing older to keep.
    assert.equal(a.concord.registry.participant('globex'), undefined);
    assert.match(a.rawLogs(), /"participant":"globex".*cannot be served/);
    const fixed = await apiA.put('/admin/v1/participants/globex', participantDoc('globex', upstream.issuer, 'globex.example'));
    assert.equal(fixed.status, 200, fixed.text);
    await eventually(() => b.concord.registry.participant('globex')?.config.displayName === 'globex Corp', 1000, 'B serves the fixed globex');
    const audit = await apiA.get('/admin/v1/audit?limit=100');
    const actions = audit.body.entries.map((e: { action: string }) => e.action);
    // A domain is claimed before its participant is written and released after it is removed (proof off: verified at once).
    assert.deepEqual(actions, ['participant.update', 'participant.delete', 'domain.release', 'participant.create', 'domain.claim', 'participant.enable', 'participant.disable', 'participant.create', 'domain.claim']);
    assert.doesNotMatch(audit.text, /DO-NOT-LEAK/);
  });

  it('never wrote a secret to either instance\'s logs', () => {
    for (const instance of [a, b]) assert.doesNotMatch(instance.rawLogs(), /DO-NOT-LEAK|test-admin-token/);
  });
});

describe('first start on an empty Redis', () => {
  it('is seeded by exactly one of several instances starting at once, and all serve the files', async () => {
    const prefix = uniquePrefix('admin-seed');
    const settings = { store: REDIS_URL, storePrefix: prefix, secretsKey: SECRETS_KEY };
    const instances = await Promise.all([1, 2, 3].map(() => startConcord({ settings, clients: [clientDoc('portal'), clientDoc('intranet')] })));
    try {
      const { store } = instances[0]!.concord;
      assert.equal(await store.getCounter('config:version'), 1);
      assert.deepEqual((await store.listRecords('clients')).map((r) => r.id).sort(), ['intranet', 'portal']);
      for (const instance of instances) {
        await eventually(() => instance.concord.registry.clients().length === 2, 1000, 'serves both clients');
        const metrics = await (await fetch(`${instance.adminUrl}/metrics`)).text();
        assert.match(metrics, /^concord_config_version 1$/m);
      }
    } finally {
      await Promise.all(instances.map((i) => i.close()));
      await dropRedisPrefix(prefix);
    }
  });
});
