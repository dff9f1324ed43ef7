import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ClientSchema } from '../../src/config/index.ts';
import { routeTable, type RouteName } from '../../src/http/route.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';
import { scrape } from './observability-support.ts';

/*
 * Issue 19 items 1 and 2 against a running Concord: every spelling of a path that oidc-provider's
 * router dispatches (any letter case, one trailing slash) gets the same edge checks and counts
 * against the same limits; credential failures lock a client and source out (Keycloak-style
 * back-off) while a busy client's successes are not throttled; the admin API likewise.
 */

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const OTHER_CLIENT = { client_id: 'service-b', client_secret: 'service-b-secret-0123456789', grant_types: ['client_credentials'], redirect_uris: [] };
const REFRESHING_CLIENT = { ...CONFIDENTIAL_CLIENT, client_id: 'service-c', client_secret: 'service-c-secret-0123456789' };

/** Every spelling of `path` a case-insensitive router with one optional trailing slash accepts. */
const spelling = (path: string) =>
  fc
    .tuple(fc.array(fc.boolean(), { minLength: path.length, maxLength: path.length }), fc.boolean())
    .map(([upper, slash]) => [...path].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('') + (slash ? '/' : ''));

const AUTH_PARAMS = {
  client_id: CONFIDENTIAL_CLIENT.client_id,
  redirect_uri: CONFIDENTIAL_CLIENT.redirect_uris[0]!,
  response_type: 'code',
  scope: 'openid',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
};

function form(issuer: string, path: string, params: Record<string, string>, authorization?: string) {
  return fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(params),
  });
}

async function drain(res: Response): Promise<Response> {
  await res.arrayBuffer();
  return res;
}

describe('one view of the path: every spelling the router accepts gets the same checks', () => {
  let concord: TestConcord;

  before(async () => {
    concord = await startConcord({ clients: [CONFIDENTIAL_CLIENT], settings: { rateLimits: { enabled: false } }, logLevel: 'info' });
  });
  after(() => concord.close());

  it('derives the route from oidc-provider\'s own router and paths, and oidc-provider serves those spellings', async () => {
    const table = routeTable((name, params) => concord.concord.provider().pathFor(name, params as never));
    const expected: Array<[string, RouteName]> = [
      ['/auth', 'authorization'],
      ['/request', 'pushed_authorization_request'],
      ['/token', 'token'],
      ['/token/introspection', 'introspection'],
      ['/token/revocation', 'revocation'],
      ['/me', 'userinfo'],
      ['/jwks', 'jwks'],
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...expected).chain(([path, name]) => spelling(path).map((s) => [s, name] as const)), async ([path, name]) => {
        assert.equal(table.match(path)?.name, name, path);
      }),
      { numRuns: 60 },
    );
    // oidc-provider dispatches them: the JWKS in any spelling is the JWKS.
    for (const path of ['/JWKS', '/Jwks/', '/jwks/']) {
      const res = await fetch(`${concord.issuer}${path}`);
      assert.equal(res.status, 200, path);
      assert.ok(((await res.json()) as { keys: unknown[] }).keys.length > 0);
    }
    assert.equal(table.match('/%74oken'), undefined, 'a %-encoded letter is another path, for oidc-provider too');
    // Routes with a parameter are in the table too (oidc-provider's resume is /auth/:uid), and the
    // partners' back-channel logout is its own route, not a browser one.
    assert.deepEqual(table.match('/auth/Yx3-interaction'), { name: 'resume', template: '/auth/:uid' });
    assert.equal(table.match('/broker/acme/backchannel-logout')?.name, 'broker_backchannel_logout');
    assert.equal(table.match('/broker/acme/logged-out')?.name, 'broker');
    assert.equal((await drain(await form(concord.issuer, '/%74oken', { grant_type: 'client_credentials' }))).status, 404);
  });

  it('refuses an oversized login_hint at the edge on /auth in every spelling (never reaching the upstream)', async () => {
    await fc.assert(
      fc.asyncProperty(spelling('/auth'), async (path) => {
        const url = `${concord.issuer}${path}?${new URLSearchParams({ ...AUTH_PARAMS, state: 's', login_hint: `${'x'.repeat(3000)}@acme.example` })}`;
        const res = await fetch(url, { redirect: 'manual' });
        await res.arrayBuffer();
        // With the client's registered redirect URI the error goes back there (RFC 6749 4.1.2.1).
        assert.equal(res.status, 303, path);
        const location = new URL(res.headers.get('location')!);
        assert.equal(location.searchParams.get('error'), 'invalid_request', path);
        assert.match(location.searchParams.get('error_description') ?? '', /login_hint is longer than 512/);
      }),
      { numRuns: 25 },
    );
  });

  it('checks POST /token, introspection and the pushed authorization endpoint in every spelling', async () => {
    const endpoints = ['/token', '/token/introspection', '/token/revocation', '/request'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints).chain(spelling), async (path) => {
        const res = await form(concord.issuer, path, { ...AUTH_PARAMS, grant_type: 'client_credentials', token: 't', login_hint: 'x'.repeat(3000) }, basic(CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret));
        assert.equal(res.status, 400, path);
        const body = (await res.json()) as { error: string; error_description: string };
        assert.equal(body.error, 'invalid_request', path);
        assert.match(body.error_description, /login_hint is longer than 512/, path);
      }),
      { numRuns: 40 },
    );
  });
});

describe('limits by route, whatever the spelling', () => {
  let concord: TestConcord;

  before(async () => {
    concord = await startConcord({
      clients: [CONFIDENTIAL_CLIENT, OTHER_CLIENT, REFRESHING_CLIENT],
      logLevel: 'info',
      settings: { rateLimits: { browser: { points: 12, duration: 600 }, credentialFailures: { max: 5, wait: 1, maxWait: 600, reset: 600 } } },
    });
  });
  after(() => concord.close());

  it('counts /auth and /request in any spelling against one per-source budget', async () => {
    const paths = fc.sample(fc.oneof(spelling('/auth'), spelling('/request')), { numRuns: 20, seed: 19 });
    const statuses: number[] = [];
    for (const path of paths) {
      const res = path.toLowerCase().startsWith('/auth')
        ? await fetch(`${concord.issuer}${path}?${new URLSearchParams({ ...AUTH_PARAMS, state: 's' })}`, { redirect: 'manual', headers: { accept: 'text/html' } })
        : await form(concord.issuer, path, AUTH_PARAMS, basic(CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret));
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.equal(statuses.filter((s) => s !== 429).length, 12, `${paths.join(' ')} -> ${statuses.join(' ')}`);
    assert.ok(statuses.slice(12).every((s) => s === 429));
  });

  it('locks a client and source out after its credential failures, in any spelling, with growing back-off', async () => {
    const wrong = basic(CONFIDENTIAL_CLIENT.client_id, 'not-the-secret-0123456789');
    const right = basic(CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret);
    const paths = fc.sample(spelling('/token'), { numRuns: 5, seed: 7 });
    // A success before the limit clears the count: 4 failures, a success, 4 failures do not lock.
    for (const path of paths.slice(0, 4)) assert.equal((await drain(await form(concord.issuer, path, { grant_type: 'client_credentials' }, wrong))).status, 401);
    assert.equal((await drain(await form(concord.issuer, '/token', { grant_type: 'client_credentials' }, right))).status, 200);
    for (const path of paths.slice(0, 4)) assert.equal((await drain(await form(concord.issuer, path, { grant_type: 'client_credentials' }, wrong))).status, 401);
    // The fifth failure in a row locks it: even the right secret waits, in every spelling.
    assert.equal((await drain(await form(concord.issuer, paths[4]!, { grant_type: 'client_credentials' }, wrong))).status, 401);
    for (const path of ['/token', '/TOKEN', '/Token/']) {
      const res = await form(concord.issuer, path, { grant_type: 'client_credentials' }, right);
      assert.equal(res.status, 429, path);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.equal(((await res.json()) as { error: string }).error, 'rate_limited');
    }
    // Another client from the same address is not locked.
    assert.equal((await drain(await form(concord.issuer, '/token', { grant_type: 'client_credentials' }, basic(OTHER_CLIENT.client_id, OTHER_CLIENT.client_secret)))).status, 200);
    const first = concord.logs.filter((l) => l.msg === 'credential failures: locked out');
    assert.equal(first.length, 1);
    assert.equal(first[0]!.waitSeconds, 1);
    assert.equal(first[0]!.key, `client:${CONFIDENTIAL_CLIENT.client_id}:ip:127.0.0.1`);

    // After the wait, five more failures lock it again for twice as long.
    for (let i = 0; i < 100 && (await drain(await form(concord.issuer, '/token', { grant_type: 'client_credentials' }, right))).status === 429; i++) await sleep(100);
    for (let i = 0; i < 5; i++) await drain(await form(concord.issuer, '/token', { grant_type: 'client_credentials' }, wrong));
    const second = concord.logs.filter((l) => l.msg === 'credential failures: locked out');
    assert.equal(second.length, 2);
    assert.equal(second[1]!.waitSeconds, 2, 'the back-off doubles');
    const m = await scrape(concord.adminUrl);
    assert.equal(m.value('concord_credential_lockouts_total', { limit: 'credentials' }), 2);
    assert.ok((m.value('concord_rate_limited_total', { limit: 'credentials' }) ?? 0) >= 3);
  });

  it('counts unknown codes and refresh tokens (invalid_grant) as credential failures too', async () => {
    const auth = basic(REFRESHING_CLIENT.client_id, REFRESHING_CLIENT.client_secret);
    const errors: string[] = [];
    for (let i = 0; i < 3; i++) errors.push(((await (await form(concord.issuer, '/Token', { grant_type: 'refresh_token', refresh_token: `guess-${i}` }, auth)).json()) as { error: string }).error);
    for (let i = 0; i < 3; i++) errors.push(((await (await form(concord.issuer, '/token/', { grant_type: 'authorization_code', code: `guess-${i}`, redirect_uri: REFRESHING_CLIENT.redirect_uris[0]!, code_verifier: 'v'.repeat(43) }, auth)).json()) as { error: string }).error);
    assert.deepEqual(errors, ['invalid_grant', 'invalid_grant', 'invalid_grant', 'invalid_grant', 'invalid_grant', 'rate_limited']);
  });

  it('leaves guessing over many addresses hopeless: client secrets have at least 16 characters', () => {
    const client = (secret: string) => ClientSchema.safeParse({ client_id: 'x', client_secret: secret, redirect_uris: ['https://x.example/cb'] }).success;
    assert.equal(client('fifteen-chars-1'), false);
    assert.equal(client('sixteen-chars-12'), true);
  });

  it('gives a busy client\'s successes a generous budget: hundreds in a row are not throttled', async () => {
    const fresh = await startConcord({ clients: [CONFIDENTIAL_CLIENT], logLevel: 'info' });
    try {
      const right = basic(CONFIDENTIAL_CLIENT.client_id, CONFIDENTIAL_CLIENT.client_secret);
      const statuses = new Set<number>();
      for (let i = 0; i < 300; i++) statuses.add((await drain(await form(fresh.issuer, '/token', { grant_type: 'client_credentials' }, right))).status);
      assert.deepEqual([...statuses], [200]);
    } finally {
      await fresh.close();
    }
  });

  it('locks a source out of the admin API after wrong tokens, even with the right one, and counts it', async () => {
    const call = (token: string) => fetch(`${concord.adminUrl}/admin/v1/participants`, { headers: { authorization: `Bearer ${token}` } }).then(drain);
    for (let i = 0; i < 5; i++) assert.equal((await call(`wrong-token-${i}-0123456789`)).status, 401);
    const locked = await call(ADMIN_TOKEN);
    assert.equal(locked.status, 429);
    const m = await scrape(concord.adminUrl);
    assert.equal(m.value('concord_credential_lockouts_total', { limit: 'admin_credentials' }), 1);
    assert.ok(concord.logs.some((l) => l.msg === 'credential failures: locked out' && l.limit === 'admin_credentials'));
  });
});
