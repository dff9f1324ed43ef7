import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { types } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { authorizationRequest, brokeredLogin, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { startConcord } from '../support/concord.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { scrape } from './observability-support.ts';

/**
 * Metrics and request ids after real brokered logins through two real partner IdPs: counts and
 * labels move as they should, labels never carry what a request sent, and every log line of a
 * login (its upstream and store calls included) carries the request's id.
 */
describe('observability: metrics after real logins', () => {
  let fed: Federation;
  let admin: string;

  before(async () => {
    fed = await startFederation({
      // No scheduled probes here: the upstream call counts below are the logins' own.
      settings: { upstream: { healthInterval: 0 }, keys: { rotateEvery: '30d' } },
      acme: { mapping: { rules: [{ require: "claims.email != 'carol@acme.example'", name: 'no-carol', message: 'Carol may not sign in here.' }] } },
    });
    admin = fed.concord.adminUrl;
  });
  after(() => fed.close());

  it('counts successful logins per participant and client, with their duration and the upstream share', async () => {
    const before = await scrape(admin);
    assert.equal(before.value('concord_login_total', { outcome: 'success' }), undefined);
    assert.equal(before.types.get('concord_login_duration_seconds'), 'histogram');

    await signedIn(fed, 'alice@acme.example');
    const alice = await signedIn(fed, 'alice@acme.example');
    await signedIn(fed, 'bob@globex.example');
    const me = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${alice.tokens.access_token}` } });
    assert.equal(me.status, 200);

    const m = await scrape(admin);
    assert.equal(m.value('concord_login_total', { participant: 'acme', client: 'rp', outcome: 'success' }), 2);
    assert.equal(m.value('concord_login_total', { participant: 'globex', client: 'rp', outcome: 'success' }), 1);
    assert.equal(m.value('concord_login_duration_seconds_count', { participant: 'acme' }), 2);
    assert.equal(m.value('concord_login_duration_seconds_count', { participant: 'globex' }), 1);
    assert.equal(m.value('concord_login_upstream_duration_seconds_count', { participant: 'acme' }), 2);
    // The upstream's share is part of the whole.
    const total = m.value('concord_login_duration_seconds_sum', { participant: 'acme' })!;
    const upstream = m.value('concord_login_upstream_duration_seconds_sum', { participant: 'acme' })!;
    assert.ok(upstream > 0 && upstream <= total + 0.001, `upstream ${upstream} s of ${total} s`);
    // One histogram bucket set per participant, cumulative, ending in +Inf = count.
    assert.equal(m.value('concord_login_duration_seconds_bucket', { participant: 'acme', le: '+Inf' }), 2);

    // Upstream calls by endpoint: discovery once (cached), JWKS once, one code exchange per login.
    assert.equal(m.value('concord_upstream_request_duration_seconds_count', { participant: 'acme', endpoint: 'token' }), 2);
    assert.equal(m.value('concord_upstream_request_duration_seconds_count', { participant: 'globex', endpoint: 'token' }), 1);
    assert.equal(m.value('concord_upstream_request_duration_seconds_count', { participant: 'acme', endpoint: 'discovery' }), 1);
    assert.equal(m.value('concord_upstream_request_duration_seconds_count', { participant: 'acme', endpoint: 'jwks' }), 1);
    assert.equal(m.value('concord_upstream_errors_total'), undefined);

    // Tokens by grant type, and the token endpoint's latency.
    assert.equal(m.value('concord_tokens_issued_total', { client: 'rp', grant_type: 'authorization_code' }), 3);
    assert.equal(m.value('concord_http_request_duration_seconds_count', { route: 'token', method: 'POST', status: '2xx' }), 3);
    assert.equal(m.value('concord_http_request_duration_seconds_count', { route: '/interaction/:uid/callback', method: 'GET', status: '3xx' }), 3);
    assert.equal(m.value('concord_http_request_duration_seconds_count', { route: 'userinfo', method: 'GET', status: '2xx' }), 1);
  });

  it('counts refused logins by reason, with unknown participants and clients labelled "unknown"', async () => {
    const before = await scrape(admin);
    const count = (labels: Record<string, string>) => (before.value('concord_login_total', labels) ?? 0);
    const base = {
      unknownDomain: count({ participant: 'unknown', client: 'rp', outcome: 'unknown_domain' }),
      mapping: count({ participant: 'acme', client: 'rp', outcome: 'mapping_rejected' }),
      stateAcme: count({ participant: 'acme', outcome: 'state_mismatch' }),
      unknownParticipant: count({ participant: 'unknown', outcome: 'unknown_participant' }),
      invalidEmail: count({ participant: 'unknown', client: 'rp', outcome: 'invalid_email' }),
    };

    // A domain nobody owns, typed into the login page.
    const browser = new Browser();
    const page = await browser.get((await authorizationRequest(fed.rp)).url);
    const form = parseForm(page.body, '/login');
    const unknown = await browser.post(new URL(form.action, page.url), { ...form.fields, email: 'mallory@nowhere-xyz123.example' });
    assert.match(unknown.body, /nowhere-xyz123\.example/);
    const invalid = await browser.post(new URL(form.action, page.url), { ...form.fields, email: 'not-an-email' });
    assert.equal(invalid.status, 400);

    // An unknown participant in idp_hint: the label is 'unknown', not what was sent.
    const hinted = await new Browser().get((await authorizationRequest(fed.rp, { idp_hint: 'evil-participant-9f8e' })).url);
    assert.equal(hinted.status, 400);

    // Mapping refuses carol.
    await assert.rejects(brokeredLogin(new Browser(), await authorizationRequest(fed.rp), { email: 'carol@acme.example' }), /no redirect to the RP/);

    // Callbacks with a state nobody issued, at a real and at a made-up participant.
    assert.equal((await fetch(`${fed.concord.issuer}/broker/acme/callback?state=bogus-state&code=x`)).status, 400);
    assert.equal((await fetch(`${fed.concord.issuer}/broker/made-up-participant-77/callback?state=bogus-state&code=x`)).status, 400);

    const m = await scrape(admin);
    const now = (labels: Record<string, string>) => m.value('concord_login_total', labels) ?? 0;
    assert.equal(now({ participant: 'unknown', client: 'rp', outcome: 'unknown_domain' }), base.unknownDomain + 2);
    assert.equal(now({ participant: 'unknown', client: 'rp', outcome: 'invalid_email' }), base.invalidEmail + 1);
    assert.equal(now({ participant: 'acme', client: 'rp', outcome: 'mapping_rejected' }), base.mapping + 1);
    assert.equal(now({ participant: 'acme', outcome: 'state_mismatch' }), base.stateAcme + 1);
    // A callback for a participant nobody has is counted as such (issue 18 item 4), under 'unknown'.
    assert.equal(now({ participant: 'unknown', outcome: 'unknown_participant' }), base.unknownParticipant + 1);
    // Nothing a request sent became a label value.
    for (const sent of ['nowhere-xyz123', 'evil-participant-9f8e', 'made-up-participant-77', 'bogus-state', 'mallory', 'not-an-email']) {
      assert.ok(!m.text.includes(sent), `${sent} leaked into /metrics`);
    }
    assert.deepEqual(m.labelValues('concord_login_total', 'participant'), ['acme', 'globex', 'unknown']);
    assert.deepEqual(m.labelValues('concord_login_total', 'client'), ['rp', 'unknown']);
  });

  it('counts token and authorization errors by OAuth error code, unknown clients as "unknown"', async () => {
    const token = (body: Record<string, string>, auth?: string) =>
      fetch(`${fed.concord.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {}) },
        body: new URLSearchParams(body),
      });
    const bad = await token({ grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: RP.redirect_uris[0]!, code_verifier: 'x'.repeat(43) }, `${RP.client_id}:${RP.client_secret}`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_grant');
    const stranger = await token({ grant_type: 'client_credentials' }, 'attacker-client-4711:whatever');
    assert.equal(stranger.status, 401);

    // No PKCE: refused back to the RP with invalid_request; an unknown client_id gets the error page.
    const noPkce = new URL(`${fed.concord.issuer}/auth`);
    noPkce.search = new URLSearchParams({ client_id: RP.client_id, response_type: 'code', redirect_uri: RP.redirect_uris[0]!, scope: 'openid' }).toString();
    const refused = await fetch(noPkce, { redirect: 'manual' });
    assert.match(refused.headers.get('location') ?? '', /error=invalid_request/);
    const strangerAuth = new URL(noPkce);
    strangerAuth.searchParams.set('client_id', 'attacker-client-4712');
    assert.equal((await fetch(strangerAuth, { redirect: 'manual' })).status, 400);

    const m = await scrape(admin);
    assert.equal(m.value('concord_token_errors_total', { client: 'rp', error: 'invalid_grant' }), 1);
    assert.equal(m.value('concord_token_errors_total', { client: 'unknown', error: 'invalid_client' }), 1);
    assert.equal(m.value('concord_authorization_errors_total', { client: 'rp', error: 'invalid_request' }), 1);
    assert.equal(m.value('concord_authorization_errors_total', { client: 'unknown', error: 'invalid_client' }), 1);
    assert.ok(!m.text.includes('attacker-client'), 'a client id sent by a stranger leaked into /metrics');
  });

  it('exports the signing key age, the rotation period and the time to the next rotation, config version and sync lag', async () => {
    const m = await scrape(admin);
    // One series per offered algorithm (keys.algorithms, default RS256 and ES256).
    for (const alg of ['RS256', 'ES256']) {
      const age = m.value('concord_signing_key_age_seconds', { alg })!;
      assert.ok(age >= 0 && age < 600, `${alg} key age ${age}`);
    }
    assert.equal(m.value('concord_signing_key_age_seconds', { alg: 'EdDSA' }), undefined, 'no series for an algorithm not offered');
    assert.equal(m.value('concord_signing_keys', { alg: 'RS256', state: 'current' }), 1);
    assert.equal(m.value('concord_signing_keys', { alg: 'ES256', state: 'current' }), 1);
    assert.equal(m.value('concord_signing_keys', { alg: 'ES256', state: 'next' }), undefined, 'no rotation under way');
    assert.equal(m.value('concord_signing_key_rotation_period_seconds'), 30 * 86400);
    const next = m.value('concord_signing_key_next_rotation_seconds')!;
    assert.ok(next <= 30 * 86400 && next > 30 * 86400 - 600, `next rotation in ${next}`);
    assert.ok(m.value('concord_config_version')! >= 1);
    assert.notEqual(m.value('concord_config_sync_lag_seconds'), undefined);
    // Node process metrics come along.
    assert.notEqual(m.value('process_resident_memory_bytes'), undefined);
    assert.notEqual(m.value('nodejs_eventloop_lag_seconds'), undefined);
  });

  it('carries one request id through every log line of a request, its upstream and store calls included', async () => {
    const id = `login-${Date.now()}`;
    const headers = { 'x-request-id': id };
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@acme.example' });
    const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
    // Concord -> the partner's password page (the same id on every hop, as a proxy in front would send).
    const login = await browser.get(auth.url, { headers, stopAt: atRp });
    assert.equal(login.status, 200);
    const form = parseForm(login.body, '/login');
    const done = await browser.post(new URL(form.action, login.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { headers, stopAt: atRp });
    assert.ok(done.stoppedAt, `no redirect to the RP: ${done.status} ${done.url.href}`);
    assert.equal(done.headers.get('x-request-id'), id);

    const lines = fed.concord.logs.filter((l) => l.requestId === id);
    const messages = new Set(lines.map((l) => l.msg));
    for (const msg of ['request', 'redirecting to upstream', 'brokered login succeeded', 'upstream call', 'store call']) {
      assert.ok(messages.has(msg), `no "${msg}" line with the request id (got ${[...messages].join(', ')})`);
    }
    const tokenCall = lines.find((l) => l.msg === 'upstream call' && l.endpoint === 'token');
    assert.ok(tokenCall, 'the code exchange is logged with the request id');
    assert.equal(tokenCall.participant, 'acme');
    assert.equal(typeof tokenCall.durationMs, 'number');
    const take = lines.find((l) => l.msg === 'store call' && l.op === 'swapTemp' && l.target === 'upstream-login');
    assert.ok(take, 'the store calls of the callback are logged with the request id');
    assert.equal(take.target, 'upstream-login');
    assert.equal(typeof take.ms, 'number');
    // Every upstream call line of the whole run carries some request id (a request's, or a probe's).
    const orphans = fed.concord.logs.filter((l) => l.msg === 'upstream call' && typeof l.requestId !== 'string');
    assert.deepEqual(orphans, []);
    // Store lines never carry a key (a key can hold a state value).
    assert.ok(!fed.concord.rawLogs().includes(`upstream-login:${auth.state}`));
  });
});

describe('observability: zero cost when off', () => {
  it('uses the store as is below debug level, and at debug wraps it with timings', async () => {
    const quiet = await startConcord({ logLevel: 'info', settings: { upstream: { healthInterval: 0 } } });
    const loud = await startConcord({ logLevel: 'debug', settings: { upstream: { healthInterval: 0 } } });
    try {
      assert.equal(types.isProxy(quiet.concord.store), false);
      assert.equal(types.isProxy(loud.concord.store), true);
      await quiet.concord.store.setTemp('probe:x', 1, 10);
      assert.equal(quiet.logs.filter((l) => l.msg === 'store call').length, 0);
      await loud.concord.store.setTemp('probe:x', 1, 10);
      assert.ok(loud.logs.some((l) => l.msg === 'store call' && l.op === 'setTemp' && l.target === 'probe'));
    } finally {
      await Promise.all([quiet.close(), loud.close()]);
    }
  });
});

describe('observability: event loop stalls', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('shows a stall longer than the ConcordEventLoopLag threshold in the metric that alert reads, sampling 10 times a second', async () => {
    // The alert's own metric and threshold, from the file Prometheus loads.
    const rules = parseYaml(await readFile(new URL('../../deploy/prometheus/alerts.yaml', import.meta.url), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> };
    const expr = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'ConcordEventLoopLag')!.expr;
    const metric = /nodejs_eventloop_lag_\w+/.exec(expr)![0];
    const threshold = Number(/>\s*([\d.]+)\s*$/.exec(expr.trim())![1]);

    const { adminUrl, close } = await startConcord({ logLevel: 'info', settings: { upstream: { healthInterval: 0 } } });
    try {
      await scrape(adminUrl); // opens the scrape window
      // The stall starts once the monitor's timer has run since the scrape (the period spanning a
      // scrape goes unrecorded: EVENT_LOOP_MONITOR_PERIOD_MS in src/observability/metrics.ts). The
      // 2 s window holds ~200 samples at prom-client's default 10 ms period: enough for a p99 to
      // drop the stall's single sample, as it does in every 15 s scrape.
      await sleep(500);
      const stallMs = threshold * 1000 + 100;
      const start = performance.now();
      while (performance.now() - start < stallMs); // this process's event loop is Concord's
      const stalled = (performance.now() - start) / 1000;
      await sleep(1500);
      const m = await scrape(adminUrl);
      const seen = m.value(metric)!;
      assert.ok(seen >= stalled - 0.001 && seen > threshold, `${metric} ${seen} s after a ${stalled.toFixed(3)} s stall (alert: ${expr.trim()})`);
      // Node's monitor records the time between two runs of its timer: no interval shorter than the
      // period, 100 ms (10 wake-ups a second, not prom-client's default 100).
      assert.ok(m.value('nodejs_eventloop_lag_min_seconds')! >= 0.09, `shortest interval ${m.value('nodejs_eventloop_lag_min_seconds')} s`);
    } finally {
      await close();
    }
  });
});
