import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createStore } from '../../src/store/index.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

async function until(check: () => Promise<boolean>, what: string, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** A Redis that goes away: readiness fails, requests answer 503, and Concord recovers by itself. */
describe('store outage', () => {
  let redis: RedisServer;
  let instance: TestConcord;
  const token = (body = 'grant_type=client_credentials') =>
    fetch(`${instance.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${CONFIDENTIAL_CLIENT.client_id}:${CONFIDENTIAL_CLIENT.client_secret}`).toString('base64')}` },
      body,
    });
  const authorize = () =>
    fetch(`${instance.issuer}/auth?client_id=${CONFIDENTIAL_CLIENT.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(CONFIDENTIAL_CLIENT.redirect_uris[0]!)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, { redirect: 'manual' });

  before(async () => {
    redis = await startRedis();
    const store = await createStore({ url: redis.url, prefix: 'outage:' });
    instance = await startConcord({ store, clients: [CONFIDENTIAL_CLIENT] });
  });
  after(async () => {
    await instance.close();
    await redis.stop();
  });

  it('serves while Redis is up', async () => {
    assert.equal((await fetch(`${instance.issuer}/readyz`)).status, 200);
    assert.equal((await token()).status, 200);
  });

  it('answers 503 with a clear error while Redis is down, without hanging', async () => {
    await redis.terminate();
    const ready = await fetch(`${instance.issuer}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { status: string }).status, 'store_unavailable');
    assert.equal((await fetch(`${instance.issuer}/healthz`)).status, 200, 'the process itself is alive');

    // Client credentials need no store (the client is in memory, the JWT is not stored): they keep working.
    assert.equal((await token()).status, 200);
    const tokenResponse = await token('grant_type=refresh_token&refresh_token=' + 'x'.repeat(43));
    assert.equal(tokenResponse.status, 503, 'a grant that needs the store');
    assert.equal(((await tokenResponse.json()) as { error: string }).error, 'temporarily_unavailable');

    const page = await authorize();
    assert.equal(page.status, 503);
    const html = await page.text();
    assert.match(html, /temporarily unavailable|session store/i);
    assert.doesNotMatch(html, /\n\s+at /, 'no stack trace');
  });

  it('recovers without a restart when Redis comes back', async () => {
    await redis.start();
    await until(async () => (await fetch(`${instance.issuer}/readyz`)).status === 200, 'readiness');
    assert.equal((await token()).status, 200);
    assert.equal((await authorize()).status, 303, 'the login flow starts again');
  });
});
