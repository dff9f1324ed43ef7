import type { OidcUpstream } from '../../src/config/index.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startConcord, type TestConcord } from '../support/concord.ts';
import { participantSecretContext } from '../../src/admin/stored.ts';
import { ADMIN_TOKEN, adminApi, CLIENT_SECRET, clientDoc, participantDoc, SECRETS_KEY, startDiscoveryServer, UPSTREAM_SECRET, type DiscoveryServer } from './admin-fixtures.ts';

/** The admin API on one instance (memory store): auth, validation, checks, secrets, audit. */
describe('admin API', () => {
  let instance: TestConcord;
  let upstream: DiscoveryServer;
  let api: ReturnType<typeof adminApi>;

  before(async () => {
    upstream = await startDiscoveryServer();
    instance = await startConcord({ settings: { secretsKey: SECRETS_KEY } });
    api = adminApi(instance.adminUrl);
  });
  after(async () => {
    await instance.close();
    await upstream.close();
  });

  describe('authentication', () => {
    it('refuses a call without a token, with a wrong one, and with a malformed header', async () => {
      for (const token of [null, 'wrong-token-0123456789xx', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
        const res = await adminApi(instance.adminUrl, token).get('/admin/v1/participants');
        assert.equal(res.status, 401, `token ${token}`);
        assert.equal(res.body.error, 'unauthorized');
        assert.match(res.body.message, /Bearer/i);
      }
      const basic = await adminApi(instance.adminUrl, null).call('GET', '/admin/v1/participants', undefined, { authorization: `Basic ${ADMIN_TOKEN}` });
      assert.equal(basic.status, 401);
    });

    it('refuses unknown routes before auth says anything, then answers JSON 404 after it', async () => {
      assert.equal((await adminApi(instance.adminUrl, null).get('/admin/v1/nothing-here')).status, 401);
      const res = await api.get('/admin/v1/nothing-here');
      assert.equal(res.status, 404);
      assert.equal(res.body.error, 'not_found');
    });

    it('accepts the right token', async () => {
      const res = await api.get('/admin/v1/participants');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { participants: [] });
    });

    it('refuses every call when CONCORD_ADMIN_TOKEN is not set', async () => {
      const off = await startConcord({ settings: { admin: { port: 0, host: '127.0.0.1' } } });
      try {
        for (const token of [null, ADMIN_TOKEN, '']) {
          const res = await adminApi(off.adminUrl, token).get('/admin/v1/participants');
          assert.equal(res.status, 403);
          assert.equal(res.body.error, 'admin_disabled');
        }
      } finally {
        await off.close();
      }
    });

    it('is not served on the public port', async () => {
      for (const path of ['/admin/v1/participants', '/admin/v1/keys', '/admin/v1/audit']) {
        const res = await fetch(`${instance.issuer}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        assert.equal(res.status, 404, path);
        assert.doesNotMatch(await res.text(), /participants|kid/);
      }
      const post = await fetch(`${instance.issuer}/admin/v1/keys/rotate`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(post.status, 404);
    });
  });

  describe('participants', () => {
    it('registers a participant after checking its upstream, and never returns its secret', async () => {
      const before = upstream.requests;
      const res = await api.post('/admin/v1/participants', participantDoc('acme', upstream.issuer, 'acme.example'));
      assert.equal(res.status, 201, res.text);
      assert.ok(upstream.requests >= before + 2, 'discovery and JWKS fetched');
      assert.equal(res.body.id, 'acme');
      assert.equal(res.body.upstream.clientSecretSet, true);
      assert.equal(res.body.upstream.clientSecret, undefined);
      // Added at runtime, its domain is acme's but pending proof (domainProof.mode): it routes no login yet.
      assert.equal(instance.concord.registry.domainClaim('ACME.example')?.participant.config.id, 'acme');
      assert.equal(instance.concord.registry.domainClaim('ACME.example')?.verified, false);
      assert.equal(instance.concord.registry.participantForDomain('ACME.example'), undefined);

      const got = await api.get('/admin/v1/participants/acme');
      assert.equal(got.status, 200);
      // GET adds what the last check of its upstream found and what the partner registers for
      // Concord's client (both read-only; a PUT of the document drops them).
      const { status, registration, ...config } = got.body;
      assert.deepEqual(config, res.body);
      assert.match(status.state, /^(unknown|ok)$/);
      assert.deepEqual(registration, {
        redirectUri: `${instance.issuer}/broker/acme/callback`,
        postLogoutRedirectUri: `${instance.issuer}/broker/acme/logged-out`,
        backchannelLogoutUri: `${instance.issuer}/broker/acme/backchannel-logout`,
      });
      const list = await api.get('/admin/v1/participants');
      assert.deepEqual(list.body.participants.map((p: { id: string }) => p.id), ['acme']);
    });

    it('keeps the upstream secret sealed at rest', async () => {
      const stored = await instance.concord.store.getRecord<{ sealedClientSecret: string }>('participants', 'acme');
      assert.ok(stored);
      assert.doesNotMatch(JSON.stringify(stored), new RegExp(UPSTREAM_SECRET));
      assert.match(stored.sealedClientSecret, /^v2\./);
      assert.equal(instance.concord.secrets.open(stored.sealedClientSecret, participantSecretContext('acme')), UPSTREAM_SECRET);
      // Sealed for acme: copied to another participant's record it does not open.
      assert.throws(() => instance.concord.secrets.open(stored.sealedClientSecret, participantSecretContext('globex')), { code: 'secret_unreadable' });
    });

    it('answers 409 for an id that exists and for a domain another participant owns', async () => {
      const again = await api.post('/admin/v1/participants', participantDoc('acme', upstream.issuer, 'other.example'));
      assert.equal(again.status, 409);
      assert.equal(again.body.error, 'already_exists');

      const taken = await api.post('/admin/v1/participants', participantDoc('copycat', upstream.issuer, 'acme.example'));
      assert.equal(taken.status, 409);
      assert.equal(taken.body.error, 'domain_conflict');
      assert.equal(taken.body.field, 'domains');
      assert.match(taken.body.message, /acme\.example.*acme/);
      assert.equal(instance.concord.registry.participant('copycat'), undefined);

      // The same upstream and client as acme under another id would let idp_hint pick the identity.
      const twin = participantDoc('twin', upstream.issuer, 'twin.example');
      const shared = await api.post('/admin/v1/participants', { ...twin, upstream: { ...twin.upstream, clientId: 'concord-at-acme' } });
      assert.equal(shared.status, 409);
      assert.equal(shared.body.error, 'upstream_conflict');
      assert.equal(instance.concord.registry.participant('twin'), undefined);
    });

    it('answers 422 for an IdP on a private address unless the participant allows its private network', async () => {
      const inside = participantDoc('inside', 'https://127.0.0.1:1', 'inside.example');
      const res = await api.post('/admin/v1/participants', { ...inside, upstream: { ...inside.upstream, allowInsecureHttp: false } });
      assert.equal(res.status, 422);
      assert.equal(res.body.reason, 'discovery_invalid');
      assert.match(res.body.message, /127\.0\.0\.1.*not a public address/);
      assert.equal(instance.concord.registry.participant('inside'), undefined);
      // Allowed, the check calls it (nothing listens on port 1): unreachable, not refused.
      const allowed = await api.post('/admin/v1/participants', { ...inside, upstream: { ...inside.upstream, allowInsecureHttp: false, allowPrivateNetwork: true } });
      assert.equal(allowed.status, 422);
      assert.equal(allowed.body.reason, 'upstream_unreachable');
    });

    it('answers 422 when discovery names another issuer, and changes nothing', async () => {
      const auditBefore = (await api.get('/admin/v1/audit')).body.entries.length;
      upstream.issuerMismatch = true;
      try {
        const res = await api.post('/admin/v1/participants', participantDoc('spoof', upstream.issuer, 'spoof.example'));
        assert.equal(res.status, 422);
        assert.equal(res.body.error, 'upstream_invalid');
        assert.equal(res.body.reason, 'discovery_invalid');
        assert.equal(res.body.field, 'upstream.issuer');
        assert.match(res.body.message, /issuer/);
        const update = await api.put('/admin/v1/participants/acme', participantDoc('acme', upstream.issuer, 'acme.example', { displayName: 'Renamed' }));
        assert.equal(update.status, 422);
      } finally {
        upstream.issuerMismatch = false;
      }
      assert.equal((await api.get('/admin/v1/participants/spoof')).status, 404);
      assert.equal((await api.get('/admin/v1/participants/acme')).body.displayName, 'acme Corp');
      assert.equal((await instance.concord.store.getRecord('participants', 'spoof')), undefined);
      assert.equal((await api.get('/admin/v1/audit')).body.entries.length, auditBefore, 'a refused change is not a change');
    });

    it('answers 422 for an upstream that does not answer', async () => {
      const res = await api.post('/admin/v1/participants', participantDoc('gone', 'http://127.0.0.1:9', 'gone.example'));
      assert.equal(res.status, 422);
      assert.equal(res.body.error, 'upstream_invalid');
      assert.equal(res.body.reason, 'upstream_unreachable');
    });

    it('answers 422 for a mapping that does not compile, naming the rule and field, before calling the upstream', async () => {
      const requests = upstream.requests;
      const doc = participantDoc('badmap', upstream.issuer, 'badmap.example', {
        mapping: { rules: [{ claim: 'ok', from: 'sub' }, { claim: 'broken', cel: 'claims.groups.exists(g, ' }] },
      });
      const res = await api.post('/admin/v1/participants', doc);
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.error, 'invalid_mapping');
      assert.equal(res.body.issues[0].index, 1);
      assert.equal(res.body.issues[0].participant, 'badmap');
      assert.match(res.body.field, /^mapping\.rules\[1\]/);
      assert.equal(upstream.requests, requests);

      const shape = await api.post('/admin/v1/participants', participantDoc('badmap', upstream.issuer, 'badmap.example', { mapping: [{ claim: 'x' }] }));
      assert.equal(shape.status, 422);
      assert.equal(shape.body.error, 'invalid_mapping');
      assert.equal(shape.body.issues[0].index, 0);
      assert.equal(instance.concord.registry.participant('badmap'), undefined);
    });

    it('answers 422 naming the field for a document the schema refuses, and 400 for a body that is not JSON', async () => {
      const res = await api.post('/admin/v1/participants', { ...participantDoc('Bad Id', upstream.issuer, 'x.example'), domains: ['not a domain'] });
      assert.equal(res.status, 422);
      assert.equal(res.body.error, 'invalid_request');
      assert.ok(['id', 'domains.0'].includes(res.body.field));
      assert.deepEqual(res.body.issues.map((i: { field: string }) => i.field).sort(), ['domains.0', 'id']);
      assert.match(res.body.message, /id|domains\.0/);

      const unknown = await api.post('/admin/v1/participants', { ...participantDoc('extra', upstream.issuer, 'extra.example'), colour: 'red' });
      assert.equal(unknown.status, 422);

      const notJson = await api.call('POST', '/admin/v1/participants', '{"id":', { 'content-type': 'application/json' });
      assert.equal(notJson.status, 400);
      assert.equal(notJson.body.error, 'invalid_json');
    });

    it('updates with PUT, keeping the write-only secret when the body leaves it out', async () => {
      const current = (await api.get('/admin/v1/participants/acme')).body;
      const res = await api.put('/admin/v1/participants/acme', { ...current, displayName: 'Acme Inc.', domains: ['acme.example', 'acme.test'] });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.upstream.clientSecretSet, true);
      assert.equal((instance.concord.registry.participant('acme')?.config.upstream as OidcUpstream | undefined)?.clientSecret, UPSTREAM_SECRET);
      assert.equal(instance.concord.registry.domainClaim('acme.test')?.participant.config.id, 'acme');
      assert.equal(instance.concord.registry.domainClaim('acme.test')?.verified, false, 'a domain added by PUT is pending too');

      const mismatch = await api.put('/admin/v1/participants/acme', { ...current, id: 'globex' });
      assert.equal(mismatch.status, 422);
      assert.equal(mismatch.body.field, 'id');
      assert.equal((await api.put('/admin/v1/participants/nobody', participantDoc('nobody', upstream.issuer, 'nobody.example'))).status, 404);
    });

    it('disables and enables', async () => {
      const off = await api.post('/admin/v1/participants/acme/disable');
      assert.equal(off.status, 200);
      assert.equal(off.body.enabled, false);
      assert.equal(instance.concord.registry.participant('acme')?.config.enabled, false);
      const on = await api.post('/admin/v1/participants/acme/enable');
      assert.equal(on.body.enabled, true);
      assert.equal(instance.concord.registry.participant('acme')?.config.enabled, true);
      assert.equal((await api.post('/admin/v1/participants/nobody/disable')).status, 404);
    });

    it('dry-runs the mapping: released claims, the rejecting rule, and an unsaved rule set', async () => {
      const released = await api.post('/admin/v1/participants/acme/mapping/dry-run', {
        claims: { sub: 'u1', email: 'u1@acme.example', email_verified: true, dept: 'R&D', active: true },
      });
      assert.equal(released.status, 200, released.text);
      assert.equal(released.body.outcome, 'released');
      assert.equal(released.body.claims.department, 'R&D');
      // acme.example is not proven yet, so it is not acme's own domain at release: the email is dropped.
      assert.equal(released.body.claims.email, undefined);
      assert.equal(released.body.claims.email_verified, undefined);

      const rejected = await api.post('/admin/v1/participants/acme/mapping/dry-run', { claims: { sub: 'u2', active: false } });
      assert.equal(rejected.body.outcome, 'rejected');
      assert.equal(rejected.body.rule.index, 1);
      assert.equal(rejected.body.rule.requirement, 'active-only');
      assert.equal(rejected.body.rule.message, 'Your account is not active.');

      const unsaved = await api.post('/admin/v1/participants/acme/mapping/dry-run', {
        claims: { sub: 'u3', dept: 'ops' },
        mapping: { rules: [{ claim: 'team', from: 'dept', lookup: { ops: 'operations' } }] },
      });
      assert.equal(unsaved.body.outcome, 'released');
      assert.equal(unsaved.body.claims.team, 'operations');
      assert.equal(instance.concord.registry.participant('acme')?.config.mapping?.rules.length, 2, 'the saved rules are untouched');

      const broken = await api.post('/admin/v1/participants/acme/mapping/dry-run', { claims: {}, mapping: [{ claim: 'x', cel: '1 +' }] });
      assert.equal(broken.status, 422);
      assert.equal(broken.body.error, 'invalid_mapping');
      assert.equal((await api.post('/admin/v1/participants/acme/mapping/dry-run', { nothing: true })).status, 422);
      assert.equal((await api.post('/admin/v1/participants/nobody/mapping/dry-run', { claims: {} })).status, 404);
    });
  });

  describe('clients', () => {
    it('creates, reads, updates and deletes a client, never returning its secret', async () => {
      const created = await api.post('/admin/v1/clients', clientDoc('portal', { participants: ['acme'] }));
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.client_secret, undefined);
      assert.equal(created.body.client_secret_set, true);
      assert.equal(instance.concord.registry.client('portal')?.client_secret, CLIENT_SECRET);
      const stored = await instance.concord.store.getRecord('clients', 'portal');
      assert.doesNotMatch(JSON.stringify(stored), new RegExp(CLIENT_SECRET));

      assert.equal((await api.post('/admin/v1/clients', clientDoc('portal'))).status, 409);
      assert.deepEqual((await api.get('/admin/v1/clients')).body.clients.map((c: { client_id: string }) => c.client_id), ['portal']);

      const current = (await api.get('/admin/v1/clients/portal')).body;
      const updated = await api.put('/admin/v1/clients/portal', { ...current, client_name: 'The Portal' });
      assert.equal(updated.status, 200, updated.text);
      assert.equal(updated.body.client_name, 'The Portal');
      assert.equal(instance.concord.registry.client('portal')?.client_secret, CLIENT_SECRET, 'secret kept');

      const deleted = await api.del('/admin/v1/clients/portal');
      assert.equal(deleted.status, 200);
      assert.equal(instance.concord.registry.client('portal'), undefined);
      assert.equal((await api.get('/admin/v1/clients/portal')).status, 404);
      assert.equal((await api.del('/admin/v1/clients/portal')).status, 404);
    });

    it('validates with the client schema, naming the field', async () => {
      const noSecret = await api.post('/admin/v1/clients', { client_id: 'svc', redirect_uris: ['http://127.0.0.1:9999/cb'] });
      assert.equal(noSecret.status, 422);
      assert.equal(noSecret.body.field, 'client_secret');
      assert.match(noSecret.body.message, /client_secret/);
      const badUri = await api.post('/admin/v1/clients', clientDoc('svc', { redirect_uris: ['http://127.0.0.1/cb#frag'] }));
      assert.equal(badUri.status, 422);
      assert.equal(badUri.body.field, 'redirect_uris.0');
      const unknownParticipant = await api.post('/admin/v1/clients', clientDoc('svc', { participants: ['nobody'] }));
      assert.equal(unknownParticipant.status, 422);
      assert.equal(unknownParticipant.body.field, 'participants.0');
    });
  });

  describe('keys', () => {
    it('lists public key views and rotates', async () => {
      const listed = await api.get('/admin/v1/keys');
      assert.equal(listed.status, 200);
      // One current key per offered algorithm (keys.algorithms default: RS256, ES256).
      assert.deepEqual(listed.body.keys.map((k: { alg: string; state: string }) => [k.alg, k.state]).sort(), [['ES256', 'current'], ['RS256', 'current']]);
      assert.equal(listed.body.accessTokenAlgorithm, 'ES256');
      assert.deepEqual(
        listed.body.algorithms.map((a: { alg: string; offered: boolean; current: string; retiring: string[] }) => [a.alg, a.offered, typeof a.current, a.retiring]),
        [['RS256', true, 'string', []], ['ES256', true, 'string', []]],
      );
      assert.doesNotMatch(listed.text, /"d"|sealed/);
      const rotated = await api.post('/admin/v1/keys/rotate');
      assert.equal(rotated.status, 201);
      assert.deepEqual(rotated.body.keys.map((k: { alg: string; state: string }) => [k.alg, k.state]), [['RS256', 'next'], ['ES256', 'next']]);
      assert.equal(rotated.body.key.alg, 'ES256', 'key: the access-token algorithm\'s new key');
      const after = await api.get('/admin/v1/keys');
      assert.deepEqual(after.body.keys.map((k: { state: string }) => k.state).sort(), ['current', 'current', 'next', 'next']);
      for (const view of after.body.algorithms as Array<{ alg: string; next: string }>) {
        assert.equal(view.next, rotated.body.keys.find((k: { alg: string }) => k.alg === view.alg).kid, `${view.alg}: the new key is next`);
      }
    });
  });

  describe('audit', () => {
    it('records who changed what, with secrets masked, newest first and paged', async () => {
      const res = await api.get('/admin/v1/audit?limit=500');
      assert.equal(res.status, 200);
      const actions = res.body.entries.map((e: { action: string }) => e.action);
      assert.deepEqual(actions.slice(0, 2), ['keys.rotate', 'client.delete']);
      assert.ok(actions.includes('participant.create'));
      assert.ok(actions.includes('participant.disable'));
      for (const entry of res.body.entries) {
        assert.equal(entry.actor, 'admin');
        assert.ok(Date.parse(entry.at));
        assert.ok(entry.object.type && entry.object.id);
      }
      const create = res.body.entries.find((e: { action: string }) => e.action === 'participant.create');
      assert.equal(create.object.id, 'acme');
      assert.deepEqual(create.diff['upstream.clientSecret'], { to: '[redacted]' });
      assert.deepEqual(create.diff.domains, { to: ['acme.example'] });
      const update = res.body.entries.find((e: { action: string }) => e.action === 'participant.update');
      assert.deepEqual(update.diff.displayName, { from: 'acme Corp', to: 'Acme Inc.' });
      assert.equal(update.diff['upstream.clientSecret'], undefined, 'unchanged secret is not in the diff');
      assert.doesNotMatch(res.text, new RegExp(`${UPSTREAM_SECRET}|${CLIENT_SECRET}|${ADMIN_TOKEN}`));

      const first = await api.get('/admin/v1/audit?limit=2');
      assert.equal(first.body.entries.length, 2);
      const second = await api.get(`/admin/v1/audit?limit=2&before=${first.body.next}`);
      assert.equal(second.body.entries[0].seq, first.body.entries[1].seq - 1);
      assert.equal((await api.get('/admin/v1/audit?limit=0')).status, 400);
      assert.equal((await api.get('/admin/v1/audit?before=abc')).status, 400);
    });

    it('records a changed secret as changed, masked on both sides', async () => {
      const current = (await api.get('/admin/v1/participants/acme')).body;
      const res = await api.put('/admin/v1/participants/acme', { ...current, upstream: { ...current.upstream, clientSecret: `${UPSTREAM_SECRET}-v2` } });
      assert.equal(res.status, 200, res.text);
      const [entry] = (await api.get('/admin/v1/audit?limit=1')).body.entries;
      assert.deepEqual(entry.diff, { 'upstream.clientSecret': { from: '[redacted]', to: '[redacted]' } });
    });
  });

  describe('offboarding', () => {
    it('revokes sessions and deletes, reporting how many', async () => {
      const revoked = await api.post('/admin/v1/participants/acme/revoke-sessions');
      assert.equal(revoked.status, 200);
      assert.deepEqual(revoked.body, { participant: 'acme', revoked: { accounts: 0, sessions: 0, grants: 0 } });
      const deleted = await api.del('/admin/v1/participants/acme');
      assert.equal(deleted.status, 200);
      assert.equal(deleted.body.deleted, 'acme');
      assert.equal(instance.concord.registry.participant('acme'), undefined);
      assert.equal(instance.concord.registry.participantForDomain('acme.example'), undefined);
      assert.equal((await api.del('/admin/v1/participants/acme')).status, 404);
    });
  });

  it('never sent a secret back nor wrote one to the logs', () => {
    for (const secret of [UPSTREAM_SECRET, CLIENT_SECRET, ADMIN_TOKEN]) {
      assert.ok(!api.responses().includes(secret), `a response carries ${secret.slice(0, 12)}...`);
      assert.ok(!instance.rawLogs().includes(secret), `the logs carry ${secret.slice(0, 12)}...`);
    }
  });

  it('exports the config version and sync lag on /metrics', async () => {
    const text = await (await fetch(`${instance.adminUrl}/metrics`)).text();
    const version = Number(/^concord_config_version (\d+)/m.exec(text)?.[1]);
    assert.ok(version >= 5, `version ${version}`);
    assert.match(text, /^concord_config_sync_lag_seconds \d/m);
  });
});
