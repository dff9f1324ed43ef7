import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { LeasedBudget } from '../../src/http/leased-budget.ts';
import { basicClientId } from '../../src/http/rate-limit.ts';
import { createStore, type Store } from '../../src/store/index.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { dropRedisPrefix } from './admin-fixtures.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** A second confidential client that authenticates with client_secret_post (its client_id is in the form). */
const POST_CLIENT = {
  client_id: 'service-post',
  client_secret: 'service-post-secret-0123456789',
  grant_types: ['client_credentials'],
  token_endpoint_auth_method: 'client_secret_post',
};

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function tokenRequest(issuer: string, options: { client?: 'basic' | 'post' | 'unknown'; headers?: Record<string, string> } = {}) {
  const client = options.client ?? 'basic';
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...options.headers };
  if (client === 'basic') headers.authorization = basic(CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret);
  if (client === 'post') {
    body.set('client_id', POST_CLIENT.client_id);
    body.set('client_secret', POST_CLIENT.client_secret);
  }
  if (client === 'unknown') headers.authorization = basic(`nobody-${randomBytes(4).toString('hex')}`, 'whatever-secret');
  return fetch(`${issuer}/token`, { method: 'POST', headers, body });
}

const authorize = (issuer: string, headers: Record<string, string> = {}) =>
  fetch(
    `${issuer}/auth?${new URLSearchParams({
      client_id: CONFIDENTIAL_CLIENT.client_id,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: CONFIDENTIAL_CLIENT.redirect_uris[0]!,
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'S256',
    })}`,
    { redirect: 'manual', headers: { accept: 'text/html', ...headers } },
  );

const admin = (url: string, token: string | undefined = ADMIN_TOKEN) =>
  fetch(`${url}/admin/v1/participants`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

async function redisStore(prefix: string): Promise<Store> {
  return createStore({ url: REDIS_URL, prefix });
}

const usedPrefixes: string[] = [];
const uniquePrefix = () => {
  const prefix = `rl-test-${randomBytes(6).toString('hex')}:`;
  usedPrefixes.push(prefix);
  return prefix;
};
// The shared Redis outlives the test run: leave nothing behind.
after(async () => {
  for (const prefix of usedPrefixes) await dropRedisPrefix(prefix);
});

/** A counter of the instance's /metrics for one label set; undefined while it has no series. */
async function counter(adminUrl: string, name: string, limit: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  assert.ok(text.includes(`# TYPE ${name} counter`), `${name} is exported`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{limit="${limit}"} `));
  return line ? Number(line.split(' ')[1]) : undefined;
}

async function statuses(count: number, request: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await request();
    await response.body?.cancel();
    out.push(response.status);
  }
  return out;
}

describe('rate limits on the Redis store', () => {
  let instance: TestConcord;
  before(async () => {
    const prefix = uniquePrefix();
    instance = await startConcord({
      store: await redisStore(prefix),
      clients: [CONFIDENTIAL_CLIENT, POST_CLIENT],
      logLevel: 'info',
      settings: {
        storePrefix: prefix,
        rateLimits: { token: { points: 3, duration: 60 }, browser: { points: 3, duration: 60 }, admin: { points: 3, duration: 60 } },
      },
    });
  });
  after(() => instance.close());

  it('limits /token per client (HTTP Basic) with 429, Retry-After and a JSON rate_limited error', async () => {
    assert.deepEqual(await statuses(3, () => tokenRequest(instance.issuer)), [200, 200, 200], 'oidc-provider still reads the form after the edge check');
    const limited = await tokenRequest(instance.issuer);
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers.get('retry-after')}`);
    assert.match(limited.headers.get('content-type') ?? '', /json/);
    const body = (await limited.json()) as { error: string };
    assert.equal(body.error, 'rate_limited');
    assert.ok(instance.logs.some((l) => l.msg === 'rate limited' && l.limit === 'token' && String(l.key).startsWith('client:service-a:ip:')));
    assert.equal(await counter(instance.adminUrl, 'concord_rate_limited_total', 'token'), 1);
    assert.equal(await counter(instance.adminUrl, 'concord_rate_limited_total', 'browser'), undefined, 'nothing refused on the browser routes yet');
  });

  it('counts each client apart: a client_secret_post client is keyed by the form client_id', async () => {
    // service-a is exhausted; service-post has its own budget, read from the form.
    assert.deepEqual(await statuses(3, () => tokenRequest(instance.issuer, { client: 'post' })), [200, 200, 200]);
    assert.equal((await tokenRequest(instance.issuer, { client: 'post' })).status, 429);
  });

  it('counts made-up client ids against the caller IP, not a fresh budget per id', async () => {
    // Unknown clients from 127.0.0.1: the first three are refused by client auth, then the IP is limited.
    assert.deepEqual(await statuses(4, () => tokenRequest(instance.issuer, { client: 'unknown' })), [401, 401, 401, 429]);
  });

  it('limits the browser routes per IP with the rate_limited page', async () => {
    assert.deepEqual(await statuses(3, () => authorize(instance.issuer)), [303, 303, 303]);
    const limited = await authorize(instance.issuer);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.match(limited.headers.get('content-type') ?? '', /html/);
    const html = await limited.text();
    assert.match(html, /Too many attempts/);
    assert.match(limited.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    // The login pages and the upstream callback share the per-IP budget.
    assert.equal((await fetch(`${instance.issuer}/interaction/abc`)).status, 429);
    assert.equal((await fetch(`${instance.issuer}/broker/acme/callback?state=x`)).status, 429);
    assert.equal(await counter(instance.adminUrl, 'concord_rate_limited_total', 'browser'), 3);
    // Health, discovery and the token endpoint are not browser routes.
    assert.equal((await fetch(`${instance.issuer}/readyz`)).status, 200);
    assert.equal((await fetch(`${instance.issuer}/.well-known/openid-configuration`)).status, 200);
  });

  it('ignores X-Forwarded-For unless trustProxy is set', async () => {
    const spoofed = await authorize(instance.issuer, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(spoofed.status, 429, 'without trustProxy the header is not the client IP');
  });

  it('limits the admin API per source address, answering JSON', async () => {
    assert.deepEqual(await statuses(3, () => admin(instance.adminUrl)), [200, 200, 200]);
    const limited = await admin(instance.adminUrl);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal(((await limited.json()) as { error: string }).error, 'rate_limited');
    // Guessing with other tokens from the same address gets no fresh budget; /metrics is not limited.
    assert.equal((await admin(instance.adminUrl, 'another-token-0123456789')).status, 429);
    assert.equal((await fetch(`${instance.adminUrl}/metrics`)).status, 200);
    assert.ok(!instance.rawLogs().includes(ADMIN_TOKEN), 'the token is never logged');
  });

  it('keeps its counters in Redis under the store prefix', async () => {
    const redis = (instance.concord.store as unknown as { client: { keys(p: string): Promise<string[]> } }).client;
    const keys = await redis.keys(`${instance.concord.settings.storePrefix}rl:*`);
    assert.ok(keys.some((k) => k.includes('rl:token:client:service-a:ip:')), keys.join(', '));
    assert.ok(keys.some((k) => k.includes('rl:browser:ip:')), keys.join(', '));
  });
});

describe('rate limits shared across instances', () => {
  let a: TestConcord;
  let b: TestConcord;
  before(async () => {
    const prefix = uniquePrefix();
    const settings = { storePrefix: prefix, rateLimits: { token: { points: 4, duration: 60 }, browser: { points: 4, duration: 60 } } };
    a = await startConcord({ store: await redisStore(prefix), clients: [CONFIDENTIAL_CLIENT], settings, logLevel: 'info' });
    b = await startConcord({ store: await redisStore(prefix), clients: [CONFIDENTIAL_CLIENT], settings, logLevel: 'info' });
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('two instances on one Redis share one budget per client and per IP', async () => {
    const token = [
      ...(await statuses(2, () => tokenRequest(a.issuer))),
      ...(await statuses(2, () => tokenRequest(b.issuer))),
      ...(await statuses(1, () => tokenRequest(a.issuer))),
      ...(await statuses(1, () => tokenRequest(b.issuer))),
    ];
    assert.deepEqual(token, [200, 200, 200, 200, 429, 429]);
    const pages = [...(await statuses(3, () => authorize(b.issuer))), ...(await statuses(2, () => authorize(a.issuer)))];
    assert.deepEqual(pages, [303, 303, 303, 303, 429]);
  });
});

describe('credential failures on Redis', () => {
  let a: TestConcord;
  let b: TestConcord;
  before(async () => {
    const prefix = uniquePrefix();
    const settings = { storePrefix: prefix, rateLimits: { credentialFailures: { max: 3, wait: 60, maxWait: 600, reset: 600 } } };
    a = await startConcord({ store: await redisStore(prefix), clients: [CONFIDENTIAL_CLIENT], settings, logLevel: 'info' });
    b = await startConcord({ store: await redisStore(prefix), clients: [CONFIDENTIAL_CLIENT], settings, logLevel: 'info' });
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it('wrong secrets lock the client at once on the instance that saw them, and on another instance once it asks again', async () => {
    const wrongSecret = () =>
      fetch(`${a.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CONFIDENTIAL_CLIENT.client_id, 'not-the-secret-0123456789') },
        body: 'grant_type=client_credentials',
      });
    // B has just seen the client without failures (and may not ask again for a second).
    assert.equal((await tokenRequest(b.issuer)).status, 200);
    assert.deepEqual(await statuses(3, wrongSecret), [401, 401, 401]);
    assert.equal((await tokenRequest(a.issuer)).status, 429, 'locked on A at once, even with the right secret');
    // A second later B asks Redis again and finds the lock.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await tokenRequest(b.issuer)).status, 429);
  });
});

describe('rate limits behind a proxy (trustProxy)', () => {
  let instance: TestConcord;
  before(async () => {
    instance = await startConcord({
      clients: [CONFIDENTIAL_CLIENT],
      logLevel: 'info',
      settings: { trustProxy: true, rateLimits: { browser: { points: 2, duration: 60 } } },
    });
  });
  after(() => instance.close());

  it('keys by the address the proxy appended, not by what the client put in front of it', async () => {
    const via = (forwarded: string) => () => authorize(instance.issuer, { 'x-forwarded-for': forwarded });
    assert.deepEqual(await statuses(3, via('198.51.100.1')), [303, 303, 429]);
    // Another client behind the proxy has its own budget.
    assert.deepEqual(await statuses(2, via('198.51.100.2')), [303, 303]);
    // A client that forges entries of its own is still the address our proxy appended (proxyHops 1).
    assert.deepEqual(await statuses(2, via('10.9.9.9, 198.51.100.1')), [429, 429]);
    assert.equal((await via(`${randomBytes(2).join('.')}.1.1, 198.51.100.2`)()).status, 429);
  });

  it('counts per instance on the memory store', () => {
    assert.ok(instance.logs.some((l) => l.msg === 'rate limits are counted per instance (memory store)'));
  });
});

describe('rate limits when Redis is away', () => {
  let redis: RedisServer;
  let instance: TestConcord;
  before(async () => {
    redis = await startRedis();
    const prefix = uniquePrefix();
    instance = await startConcord({
      store: await createStore({ url: redis.url, prefix }),
      clients: [CONFIDENTIAL_CLIENT],
      logLevel: 'info',
      settings: { storePrefix: prefix, rateLimits: { token: { points: 2, duration: 60 } } },
    });
  });
  after(async () => {
    await instance.close();
    await redis.stop();
  });

  it('fails open with a warning: an exhausted budget no longer refuses while the limiter cannot count', async () => {
    assert.deepEqual(await statuses(3, () => tokenRequest(instance.issuer)), [200, 200, 429]);
    await redis.terminate();
    // A client found without credential failures is not asked about again for a second (rate-limit.ts): past that.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // Client credentials need no store, so these succeed only if the limiter lets them through.
    const started = Date.now();
    assert.deepEqual(await statuses(3, () => tokenRequest(instance.issuer)), [200, 200, 200]);
    assert.ok(Date.now() - started < 3000, 'no waiting for a Redis timeout');
    const warnings = instance.logs.filter((l) => l.msg === 'rate limiter unavailable: letting requests through (fail open)');
    // One warning per limit the request passes (the token budget and the credential-failure count), not one per request.
    assert.deepEqual(warnings.map((w) => w.limit).sort(), ['credentials', 'token']);
    assert.ok(warnings.every((w) => w.level === 'warn'));
    // The metric counts every request let through, where the log says it once.
    assert.equal(await counter(instance.adminUrl, 'concord_rate_limiter_failures_total', 'token'), 3);
    assert.equal(await counter(instance.adminUrl, 'concord_rate_limited_total', 'token'), 1);
  });
});

describe('leased budgets (Redis)', () => {
  const clients: Redis[] = [];
  after(() => Promise.all(clients.map((c) => c.quit())));
  const budgetPair = (points: number, seconds: number) => {
    const prefix = uniquePrefix();
    const make = () => {
      const client = new Redis(REDIS_URL);
      clients.push(client);
      return new LeasedBudget({ client, keyPrefix: `${prefix}rl:test`, points, seconds });
    };
    return { a: make(), b: make(), prefix };
  };
  const allowed = async (budget: LeasedBudget, key: string, n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) ok += await budget.consume(key).then(() => 1, (res: unknown) => {
      assert.ok(res instanceof RateLimiterRes, `refused with a RateLimiterRes, not ${String(res)}`);
      assert.ok(res.msBeforeNext > 0 && res.msBeforeNext <= 60_000);
      return 0;
    });
    return ok;
  };

  it('counts a small budget point by point across instances, as RateLimiterRedis does', async () => {
    const { a, b } = budgetPair(5, 60);
    assert.equal(await allowed(a, 'ip:1', 2), 2);
    assert.equal(await allowed(b, 'ip:1', 2), 2);
    assert.equal(await allowed(a, 'ip:1', 2), 1);
    assert.equal(await allowed(b, 'ip:1', 1), 0);
    assert.equal(await allowed(b, 'ip:2', 1), 1, 'another key has its own budget');
  });

  it('allows never more than a large budget in total, with a fraction of a Redis call per request', async () => {
    const { a, b, prefix } = budgetPair(1000, 60);
    const client = new Redis(REDIS_URL);
    clients.push(client);
    const calls0 = Number(/calls=(\d+)/.exec(String(await client.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_incrby:')) ?? '')?.[1] ?? 0);
    // Interleaved, as two instances behind a load balancer.
    let total = 0;
    for (let i = 0; i < 700; i++) total += await allowed(i % 2 ? a : b, 'ip:9', 1);
    assert.equal(total, 700, 'well within the budget, nothing refused');
    const calls1 = Number(/calls=(\d+)/.exec(String(await client.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_incrby:')) ?? '')?.[1] ?? 0);
    assert.ok(calls1 - calls0 < 100, `${calls1 - calls0} increments for 700 requests`);
    for (let i = 0; i < 700; i++) total += await allowed(i % 2 ? a : b, 'ip:9', 1);
    assert.ok(total <= 1000, `${total} allowed of a budget of 1000`);
    assert.ok(total >= 1000 - 2 * 64, `${total} allowed: at most a lease per instance lost`);
    assert.ok(Number(await client.get(`${prefix}rl:test:ip:9`)) >= total, 'the shared counter holds every point spent');
  });

  it('starts a new window when the counter expires', async () => {
    const { a } = budgetPair(2, 1);
    assert.equal(await allowed(a, 'ip:3', 3), 2);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await allowed(a, 'ip:3', 3), 2);
  });

  it('spends the points of a lease without Redis (spend), and never more than the lease holds', async () => {
    const { a, b, prefix } = budgetPair(1000, 60);
    assert.equal(a.spend('ip:4'), false, 'no lease yet');
    await a.consume('ip:4');
    // A lease is 1/16 of what the window has left, at most 64: 62 points, one spent by consume.
    let spent = 0;
    while (a.spend('ip:4')) spent++;
    assert.equal(spent, 61);
    assert.equal(b.spend('ip:4'), false, 'another instance has its own lease');
    const client = new Redis(REDIS_URL);
    clients.push(client);
    assert.equal(Number(await client.get(`${prefix}rl:test:ip:4`)), 62, 'the shared counter holds the whole lease');
  });
});

describe('basicClientId', () => {
  it('reads the form-encoded client_id of HTTP Basic', () => {
    assert.equal(basicClientId(basic('service a:b', 'secret')), 'service a:b');
    assert.equal(basicClientId(`basic ${Buffer.from('id:secret').toString('base64')}`), 'id');
  });
  it('gives nothing for anything else', () => {
    for (const header of ['', 'Bearer abc', 'Basic', 'Basic !!!!', `Basic ${Buffer.from('no-colon').toString('base64')}`, `Basic ${Buffer.from(':secret').toString('base64')}`, `Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}`]) {
      assert.equal(basicClientId(header), undefined, header);
    }
  });
});
