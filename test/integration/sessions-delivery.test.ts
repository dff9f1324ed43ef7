/**
 * Logout tokens to services (issue 13 item 3): every way a session ends reaches its services, through
 * one queue in the store that retries a failing service with back-off for backchannelLogout.retryFor,
 * counts each notice's fate per client, and survives an instance's restart (Redis).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { createStore } from '../../src/store/index.ts';
import { startConcord } from '../support/concord.ts';
import { RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../support/logout-receiver.ts';
import { freePort } from '../support/ports.ts';
import { eventually, metricValue, sessionOf, upstreamIdTokenOf } from '../support/sessions.ts';
import { admin } from './broker-helpers.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';
import { dumpRedis, REDIS_URL } from '../support/redis-dump.ts';

const invalidGrant = (err: { error?: string }) => err.error === 'invalid_grant';

async function endByAdmin(fed: Federation, sessionId: string): Promise<void> {
  const res = await admin(fed, 'DELETE', `/sessions/${sessionId}`);
  assert.equal(res.status, 200, await res.text());
}

describe('back-channel logout delivery', () => {
  let fed: Federation;
  let service: LogoutReceiver;
  before(async () => {
    const port = await freePort();
    service = await startLogoutReceiver({ issuer: `http://127.0.0.1:${port}`, clientId: RP.client_id });
    // A notice not accepted within 2 s is given up (the first retry comes after 1 s, the next after 2 s more).
    fed = await startFederation({ port, settings: { backchannelLogout: { retryFor: 2 } }, clients: [{ ...RP, backchannel_logout_uri: service.uri, backchannel_logout_session_required: true }] });
  });
  after(async () => {
    await fed.close();
    await service.close();
  });

  it('a service that answers 503 gets the logout token on a retry, counted delivered', async () => {
    const { tokens } = await signedIn(fed, 'alice@acme.example');
    const session = await sessionOf(fed, tokens);
    const delivered = await metricValue(fed, 'concord_backchannel_logout_total', { client: RP.client_id, outcome: 'delivered' });
    service.failWith = 503;
    const requests = service.requests();
    await endByAdmin(fed, session.id);
    await eventually(() => service.requests() > requests, 'a first attempt');
    service.failWith = undefined;
    const [told] = (await service.waitFor(service.received.length + 1)).slice(-1);
    assert.equal(told!.payload.sid, tokens.claims()!.sid);
    assert.ok(service.requests() >= requests + 2, 'retried');
    await eventually(async () => (await metricValue(fed, 'concord_backchannel_logout_total', { client: RP.client_id, outcome: 'delivered' })) === delivered + 1, 'counted delivered');
  });

  it('a service that keeps failing is given up after retryFor: counted failed and logged, never sent again', async () => {
    const { tokens } = await signedIn(fed, 'carol@acme.example');
    const session = await sessionOf(fed, tokens);
    const failed = await metricValue(fed, 'concord_backchannel_logout_total', { client: RP.client_id, outcome: 'failed' });
    service.failWith = 500;
    try {
      await endByAdmin(fed, session.id);
      await eventually(async () => (await metricValue(fed, 'concord_backchannel_logout_total', { client: RP.client_id, outcome: 'failed' })) === failed + 1, 'counted failed');
      const attempts = service.requests();
      assert.equal(await fed.concord.concord.logoutDelivery.pending(), 0, 'nothing left queued');
      const given = fed.concord.logs.find((l) => String(l.msg).startsWith('back-channel logout given up'));
      assert.equal(given?.client, RP.client_id);
      assert.equal(given?.reason, 'HTTP 500', JSON.stringify(given));
      await fed.concord.concord.logoutDelivery.deliverDue();
      assert.equal(service.requests(), attempts, 'not sent again');
    } finally {
      service.failWith = undefined;
    }
  });

  it('disabling a participant ends its users’ sessions and tells their services', async () => {
    const { tokens } = await signedIn(fed, 'bob@globex.example');
    const count = service.received.length;
    const res = await admin(fed, 'POST', '/participants/globex/disable');
    assert.equal(res.status, 200);
    try {
      const [told] = (await service.waitFor(count + 1)).slice(count);
      assert.equal(told!.payload.sid, tokens.claims()!.sid);
      await assert.rejects(oidc.refreshTokenGrant(fed.rp, tokens.refresh_token!), invalidGrant);
      const audit = (await (await admin(fed, 'GET', '/audit?limit=5')).json()) as { entries: Array<{ action: string; result?: { revoked?: { sessions: number } } }> };
      assert.equal(audit.entries.find((e) => e.action === 'participant.disable')?.result?.revoked?.sessions, 1);
    } finally {
      await admin(fed, 'POST', '/participants/globex/enable');
    }
  });
});

describe('back-channel logout delivery across a restart (Redis)', () => {
  const prefix = `sessions-delivery-${randomBytes(6).toString('hex')}:`;
  let service: LogoutReceiver;
  let port: number;
  before(async () => {
    port = await freePort();
    service = await startLogoutReceiver({ issuer: `http://127.0.0.1:${port}`, clientId: RP.client_id });
  });
  after(async () => {
    await service.close();
    await dropRedisPrefix(prefix);
  });

  it('a notice queued by an instance that stopped is delivered by the next one; the session’s upstream tokens are sealed in Redis', async () => {
    const client = { ...RP, backchannel_logout_uri: service.uri, backchannel_logout_session_required: true };
    const fed = await startFederation({ port, store: await createStore({ url: REDIS_URL, prefix }), settings: { storePrefix: prefix, upstream: { healthInterval: 0 } }, clients: [client], partners: { partner: { refreshTokens: true } } });
    let sid: unknown;
    try {
      const { tokens } = await signedIn(fed, 'alice@acme.example');
      sid = tokens.claims()!.sid;
      const session = await sessionOf(fed, tokens);
      // What a reader of Redis finds: neither the upstream refresh token nor the upstream ID token.
      const upstream = await fed.concord.concord.sessions.upstream(session.id);
      const idToken = await upstreamIdTokenOf(fed, session.id);
      assert.ok(upstream.refresh?.refreshToken && idToken);
      const dump = await dumpRedis(prefix);
      assert.ok(!dump.includes(upstream.refresh.refreshToken), 'the upstream refresh token is in Redis in the clear');
      assert.ok(!dump.includes(idToken.split('.')[2]!), 'the upstream ID token is in Redis in the clear');

      service.failWith = 503;
      const requests = service.requests();
      await endByAdmin(fed, session.id);
      await eventually(() => service.requests() > requests, 'a first attempt');
    } finally {
      await fed.close();
    }
    service.failWith = undefined;
    const count = service.received.length;
    // The next instance: the same store, the same issuer; it knows the client, and nothing of the session.
    const next = await startConcord({ port, store: await createStore({ url: REDIS_URL, prefix }), settings: { storePrefix: prefix, upstream: { healthInterval: 0 } }, clients: [client] });
    try {
      const [told] = (await service.waitFor(count + 1)).slice(count);
      assert.equal(told!.payload.sid, sid);
      assert.equal(told!.payload.iss, next.issuer);
      await eventually(async () => (await next.concord.logoutDelivery.pending()) === 0, 'the queue is empty');
    } finally {
      await next.close();
    }
  });
});
