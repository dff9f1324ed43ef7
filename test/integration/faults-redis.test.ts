import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startParticipantIdp, upstreamSecret } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { sleep, startConcordProcess, status, until, type ConcordProcess } from './faults-harness.ts';

const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };

interface Outcome {
  at: number;
  status: number;
  ms: number;
}

/**
 * Redis (append-only file, fsync always) is restarted while requests keep coming. Concord (a real
 * process) answers 503 while it is away, reports not-ready, and recovers on its own when it is back;
 * the refresh tokens it issued before still work afterwards.
 */
describe('faults: Redis restarts in the middle of traffic', () => {
  let redis: RedisServer;
  let acme: PartnerIdp;
  let concord: ConcordProcess;
  let rp: oidc.Configuration;
  let issuer: string;

  before(async () => {
    redis = await startRedis({ persistence: true });
    // Concord's port is its issuer's; the partner must know the callback before Concord starts.
    const { freePort } = await import('../support/ports.ts');
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    acme = await startParticipantIdp({ concordIssuer: issuer, participantId: 'acme', name: 'Acme', domain: 'acme.example' });
    concord = await startConcordProcess({
      issuer,
      port,
      store: redis.url,
      prefix: `faults-redis-${randomBytes(4).toString('hex')}:`,
      secretsKey: randomBytes(32).toString('base64'),
      participants: [
        {
          id: 'acme',
          displayName: 'Acme',
          domains: ['acme.example'],
          upstream: { type: 'oidc', issuer: acme.issuer, clientId: 'concord', clientSecret: upstreamSecret('acme'), allowInsecureHttp: true },
        },
      ],
      clients: [RP, MACHINE],
      // The traffic below comes from one IP; the default browser limit (300 a minute) is not what is tested.
      settings: { rateLimits: { browser: { points: 100_000, duration: 60 } } },
    });
    rp = await oidc.discovery(new URL(issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });

  after(async () => {
    await concord?.stop();
    await acme?.close();
    await redis?.stop();
  });

  async function signIn(email: string) {
    const auth = await authorizationRequest(rp);
    const callback = await brokeredLogin(new Browser(), auth, { email });
    return exchange(rp, callback, auth);
  }

  const refresh = (token: string) =>
    fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString(),
      signal: AbortSignal.timeout(5000),
    });

  it('answers 503 while Redis is away, recovers without a restart, and the refresh tokens issued before still work', async () => {
    const before = await signIn('alice@acme.example');
    assert.ok(before.refresh_token);
    const pid = concord.pid;

    // Traffic: authorization requests (each writes an interaction to Redis), 4 at a time, bounded
    // in count and time; every answer is recorded with its status and duration.
    const outcomes: Outcome[] = [];
    let stop = false;
    const t0 = Date.now();
    const worker = async () => {
      for (let i = 0; i < 2000 && !stop && Date.now() - t0 < 20_000; i++) {
        const auth = await authorizationRequest(rp);
        const started = Date.now();
        let code: number;
        try {
          code = await status(auth.url.href);
        } catch {
          code = 0; // no answer within 5 s, or the connection failed
        }
        outcomes.push({ at: started, status: code, ms: Date.now() - started });
        await sleep(20);
      }
    };
    const traffic = Promise.all([worker(), worker(), worker(), worker()]);

    try {
      await sleep(500);
      const downAt = Date.now();
      await redis.terminate();
      await until(async () => (await status(`${issuer}/readyz`)) === 503, 'readiness to fail while Redis is down', 5000);
      assert.equal(await status(`${issuer}/healthz`), 200, 'the process itself is alive');

      // A refresh while Redis is away: 503 temporarily_unavailable, and the token is not spent.
      const during = await refresh(before.refresh_token!);
      assert.equal(during.status, 503);
      assert.equal(((await during.json()) as { error: string }).error, 'temporarily_unavailable');

      await sleep(1000);
      const upAt = Date.now();
      await redis.start();
      await until(async () => (await status(`${issuer}/readyz`)) === 200, 'readiness to come back after Redis restarted', 10_000);
      const readyAt = Date.now();
      // Traffic goes on for a moment after the recovery.
      await sleep(700);
      stop = true;
      await traffic;

      const duringOutage = outcomes.filter((o) => o.at > downAt + 200 && o.at < upAt);
      const afterRecovery = outcomes.filter((o) => o.at > readyAt);
      assert.ok(duringOutage.length > 0, 'requests were made while Redis was down');
      assert.ok(afterRecovery.length > 0, 'requests were made after the recovery');
      const statuses = (list: Outcome[]) => [...new Set(list.map((o) => o.status))].sort();
      // While Redis is away, authorization requests answer 503 (never 500, never a hang).
      assert.deepEqual(statuses(duringOutage), [503], `statuses while Redis was down: ${JSON.stringify(statuses(duringOutage))}`);
      assert.ok(
        outcomes.every((o) => o.status !== 0 && o.status !== 500 && o.ms < 4000),
        `every request was answered, none with 500, none after 4 s: ${JSON.stringify(outcomes.filter((o) => o.status === 0 || o.status === 500 || o.ms >= 4000).slice(0, 5))}`,
      );
      assert.deepEqual(statuses(afterRecovery), [303], 'the login flow starts again after the recovery');
    } finally {
      stop = true;
      await traffic;
    }

    // The same Concord process: it recovered, it was not restarted.
    assert.equal(concord.pid, pid);
    assert.ok(concord.running);

    // The refresh token issued before the restart (persisted in the append-only file) still works, once.
    const refreshed = await oidc.refreshTokenGrant(rp, before.refresh_token!);
    assert.ok(refreshed.access_token);
    assert.ok(refreshed.refresh_token && refreshed.refresh_token !== before.refresh_token, 'rotated');
    const again = await oidc.refreshTokenGrant(rp, refreshed.refresh_token!);
    assert.ok(again.access_token);

    // And a whole new login works.
    const tokens = await signIn('carol@acme.example');
    assert.equal(tokens.claims()!.email, 'carol@acme.example');
  });
});
