import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { CircuitBreaker } from '../../src/upstream/index.ts';
import { authorizationRequest, RP, signedIn, startFederation, startParticipantIdp, upstreamSecret, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { eventually, scrape } from './observability-support.ts';

/**
 * Partner health: a scheduled probe per participant, `concord_upstream_up`, and a circuit breaker
 * per participant, so that the users of a partner whose IdP is down get the "sign-in service is
 * unavailable" page at once, while every other partner's users sign in as before.
 */

const UNAVAILABLE = /sign-in service is unavailable/;

/** Starts a login whose login_hint picks the participant; returns the page Concord ends on and how long it took. */
async function attempt(fed: Federation, email: string) {
  const started = performance.now();
  const page = await new Browser({ timeoutMs: 15_000 }).get((await authorizationRequest(fed.rp, { login_hint: email })).url);
  return { page, ms: performance.now() - started };
}

/** A TCP server that accepts connections and never answers: an IdP that hangs. */
async function blackhole() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('partner health: a stopped upstream', () => {
  let fed: Federation;
  let restarted: PartnerIdp | undefined;
  /** Alice's browser and tokens from a login while Acme was up. */
  let signedInAlice: Awaited<ReturnType<typeof signedIn>>;

  before(async () => {
    fed = await startFederation({ settings: { upstream: { healthInterval: 1, timeoutMs: 800, breakerCooldown: 1, breakerThreshold: 3 } } });
  });
  after(async () => {
    await fed.close();
    await restarted?.close();
  });

  it('probes every participant: up, last success, circuit closed', async () => {
    const m = await eventually(async () => {
      const s = await scrape(fed.concord.adminUrl);
      return s.value('concord_upstream_up', { participant: 'acme' }) === 1 && s.value('concord_upstream_up', { participant: 'globex' }) === 1 && s;
    }, 3000, 'both upstreams up');
    const last = m.value('concord_upstream_last_success_timestamp_seconds', { participant: 'acme' })!;
    assert.ok(Math.abs(last - Date.now() / 1000) < 10, `last success ${last}`);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'closed' }), 1);
    assert.ok(m.value('concord_upstream_probe_duration_seconds_count', { participant: 'acme' })! >= 1);
    // Warms acme's discovery: from now on beginLogin needs no call.
    signedInAlice = await signedIn(fed, 'alice@acme.example');
  });

  it('flips the gauge of a stopped IdP, shows its users the unavailable page at once, and leaves the other partner alone', async () => {
    const lastSuccess = (await scrape(fed.concord.adminUrl)).value('concord_upstream_last_success_timestamp_seconds', { participant: 'acme' });
    await fed.acme.close();
    const m = await eventually(async () => {
      const s = await scrape(fed.concord.adminUrl);
      return s.value('concord_upstream_up', { participant: 'acme' }) === 0 && s;
    }, 3000, 'acme down');
    assert.equal(m.value('concord_upstream_up', { participant: 'globex' }), 1);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'closed' }), 0);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'globex', state: 'closed' }), 1);
    // The time of the last success stays where it was.
    assert.ok(m.value('concord_upstream_last_success_timestamp_seconds', { participant: 'acme' })! <= lastSuccess! + 1);
    assert.ok(m.value('concord_upstream_errors_total', { participant: 'acme', reason: 'network' })! >= 1);

    // Acme's discovery is cached, so without the breaker alice would be sent to a dead login page.
    const alice = await attempt(fed, 'alice@acme.example');
    assert.equal(alice.page.status, 503, alice.page.body.slice(0, 300));
    assert.match(alice.page.body, UNAVAILABLE);
    assert.equal(alice.page.url.host, new URL(fed.concord.issuer).host, 'the user stays at Concord');

    // Globex's users are untouched.
    const bob = await signedIn(fed, 'bob@globex.example');
    assert.equal(bob.tokens.claims()!.idp, 'globex');

    const after = await scrape(fed.concord.adminUrl);
    assert.ok(after.value('concord_login_total', { participant: 'acme', outcome: 'upstream_unreachable' })! >= 1);
    assert.equal(after.value('concord_login_total', { participant: 'globex', outcome: 'upstream_unreachable' }), undefined);
    assert.equal(after.value('concord_upstream_circuit_rejected_total', { participant: 'globex' }), undefined);
  });

  it('signs a user out of Concord and back to the service without sending them to the IdP that is down', async () => {
    const { browser, tokens } = signedInAlice;
    const bye = RP.post_logout_redirect_uris[0]!;
    const atBye = (u: URL) => u.href.startsWith(bye);
    const page = await browser.get(oidc.buildEndSessionUrl(fed.rp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: bye, state: 'rp-state' }), { stopAt: atBye });
    assert.equal(page.status, 200, page.body.slice(0, 300));
    const form = parseForm(page.body, '/session/end/confirm');
    const done = await browser.post(new URL(form.action, page.url), { ...form.fields, logout: 'yes' }, { stopAt: atBye });
    // Acme's discovery (with its end_session_endpoint) is cached: without the check it would be next.
    assert.equal(done.chain.some((hop) => hop.url.origin === new URL(fed.acme.issuer).origin), false, 'the browser was sent to the dead IdP');
    // Concord says the IdP's own session may remain, and links on to the service with its state.
    assert.equal(done.status, 200);
    assert.equal(done.url.origin, fed.concord.issuer);
    assert.match(done.body, /You are signed out/);
    assert.match(done.body, /Acme’s sign-in service could not be reached, so you may still be signed in there/);
    const next = /<a href="([^"]+)">Continue<\/a>/.exec(done.body)?.[1]?.replaceAll('&amp;', '&');
    assert.equal(next, `${bye}?state=rp-state`);
    assert.equal(browser.cookies(fed.concord.issuer).concord_session, undefined, 'the Concord session is over');
    const skipped = fed.concord.logs.find((l) => l.msg === 'upstream logout skipped');
    assert.equal(skipped?.participant, 'acme', 'the skipped upstream logout is logged');
    assert.equal((skipped?.err as { code?: string } | undefined)?.code, 'upstream_unreachable');
  });

  it('closes the circuit when the IdP answers again, and its users sign in', async () => {
    const { port } = new URL(fed.acme.issuer);
    const issuer = fed.concord.issuer;
    restarted = await startParticipantIdp({ concordIssuer: issuer, participantId: 'acme', name: 'Acme', domain: 'acme.example', port: Number(port) });
    const m = await eventually(async () => {
      const s = await scrape(fed.concord.adminUrl);
      return s.value('concord_upstream_up', { participant: 'acme' }) === 1 && s;
    }, 3000, 'acme up again');
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'closed' }), 1);
    const alice = await signedIn(fed, 'alice@acme.example');
    assert.equal(alice.tokens.claims()!.idp, 'acme');
  });

  it('stops probing a disabled participant and drops its series; probes it again at once when enabled', async () => {
    const call = (action: string) =>
      fetch(`${fed.concord.adminUrl}/admin/v1/participants/acme/${action}`, { method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789' } });
    assert.equal((await call('disable')).status, 200);
    await eventually(async () => (await scrape(fed.concord.adminUrl)).value('concord_upstream_up', { participant: 'acme' }) === undefined, 3000, 'acme series gone');
    const m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme' }), undefined);
    assert.equal(m.value('concord_upstream_up', { participant: 'globex' }), 1);
    assert.equal((await call('enable')).status, 200);
    await eventually(async () => (await scrape(fed.concord.adminUrl)).value('concord_upstream_up', { participant: 'acme' }) === 1, 3000, 'acme probed again');
  });
});

describe('partner health: an IdP that hangs', () => {
  let fed: Federation;
  let hole: Awaited<ReturnType<typeof blackhole>>;
  const TIMEOUT = 600;

  before(async () => {
    hole = await blackhole();
    fed = await startFederation({
      // No scheduled probe: the breaker must open from the logins' own failures.
      settings: { upstream: { healthInterval: 0, timeoutMs: TIMEOUT, breakerCooldown: 30, breakerThreshold: 2 } },
      acme: { upstream: { type: 'oidc', issuer: hole.url, clientId: 'concord', clientSecret: upstreamSecret('acme'), allowInsecureHttp: true } },
    });
  });
  after(async () => {
    await fed.close();
    await hole.close();
  });

  it('answers within the timeout, opens the circuit after N failures in a row, then refuses at once', async () => {
    for (let i = 0; i < 2; i++) {
      const { page } = await attempt(fed, 'alice@acme.example');
      assert.equal(page.status, 503);
      assert.match(page.body, UNAVAILABLE);
    }
    const m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'open' }), 1);
    assert.equal(m.value('concord_login_total', { participant: 'acme', outcome: 'upstream_timeout' }), 2);
    assert.equal(m.value('concord_upstream_errors_total', { participant: 'acme', endpoint: 'discovery', reason: 'timeout' }), 2);

    const connections = hole.connections();
    const third = await attempt(fed, 'alice@acme.example');
    assert.equal(third.page.status, 503);
    assert.match(third.page.body, UNAVAILABLE);
    assert.equal(hole.connections(), connections, 'an open circuit makes no call');
    const after = await scrape(fed.concord.adminUrl);
    assert.equal(after.value('concord_upstream_circuit_rejected_total', { participant: 'acme' }), 1);

    // Globex's users sign in meanwhile.
    const bob = await signedIn(fed, 'bob@globex.example');
    assert.equal(bob.tokens.claims()!.idp, 'globex');
  });
});

describe('partner health: the half-open trial', () => {
  let fed: Federation;
  let restarted: PartnerIdp | undefined;

  before(async () => {
    // No scheduled probe: only the logins themselves find out, and the trial is a user's login.
    fed = await startFederation({ settings: { upstream: { healthInterval: 0, timeoutMs: 800, breakerCooldown: 1, breakerThreshold: 1 } } });
  });
  after(async () => {
    await fed.close();
    await restarted?.close();
  });

  it('refuses during the cool-down, then lets the next login probe and go through once the IdP is back', async () => {
    const { port } = new URL(fed.acme.issuer);
    await fed.acme.close();
    const first = await attempt(fed, 'alice@acme.example');
    assert.equal(first.page.status, 503);
    const refused = await attempt(fed, 'alice@acme.example');
    assert.equal(refused.page.status, 503);
    assert.match(refused.page.body, UNAVAILABLE);
    let m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_circuit_rejected_total', { participant: 'acme' }), 1);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'open' }), 1);

    const issuer = fed.concord.issuer;
    restarted = await startParticipantIdp({ concordIssuer: issuer, participantId: 'acme', name: 'Acme', domain: 'acme.example', port: Number(port) });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the cool-down
    const alice = await signedIn(fed, 'alice@acme.example');
    assert.equal(alice.tokens.claims()!.idp, 'acme');
    m = await scrape(fed.concord.adminUrl);
    assert.equal(m.value('concord_upstream_circuit_state', { participant: 'acme', state: 'closed' }), 1);
    assert.equal(m.value('concord_upstream_up', { participant: 'acme' }), 1, 'the trial probe counts as a health probe');
    assert.equal(m.value('concord_upstream_circuit_rejected_total', { participant: 'acme' }), 1);
  });
});

describe('circuit breaker', () => {
  const clock = () => {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it('opens after `threshold` failures in a row; a success in between starts the count again', () => {
    const breaker = new CircuitBreaker({ threshold: 3, cooldownMs: 1000 });
    breaker.record(false);
    breaker.record(false);
    breaker.record(true);
    breaker.record(false);
    breaker.record(false);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.acquire(), 'pass');
    breaker.record(false);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.acquire(), 'reject');
  });

  it('lets one trial through after the cool-down; its success closes, its failure reopens for another cool-down', () => {
    const t = clock();
    const changes: string[] = [];
    const breaker = new CircuitBreaker({ threshold: 5, cooldownMs: 1000, now: t.now, onChange: (s, p) => changes.push(`${p}>${s}`) });
    breaker.trip();
    assert.equal(breaker.acquire(), 'reject');
    assert.equal(breaker.retryInMs(), 1000);
    t.advance(999);
    assert.equal(breaker.acquire(), 'reject');
    t.advance(1);
    assert.equal(breaker.acquire(), 'trial');
    assert.equal(breaker.state, 'half_open');
    assert.equal(breaker.acquire(), 'reject', 'one trial at a time');
    breaker.record(true); // an ordinary call that was under way does not decide
    assert.equal(breaker.state, 'half_open');
    breaker.failure();
    assert.equal(breaker.state, 'open');
    t.advance(500);
    assert.equal(breaker.acquire(), 'reject', 'a failed trial starts a new cool-down');
    t.advance(500);
    assert.equal(breaker.acquire(), 'trial');
    breaker.success();
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.acquire(), 'pass');
    assert.deepEqual(changes, ['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed']);
  });

  it('a failed probe opens it at once; a successful probe closes it; reset forgets the count', () => {
    const breaker = new CircuitBreaker({ threshold: 3, cooldownMs: 60_000 });
    breaker.trip();
    assert.equal(breaker.state, 'open');
    breaker.record(true); // ignored while open
    assert.equal(breaker.state, 'open');
    breaker.success();
    assert.equal(breaker.state, 'closed');
    breaker.record(false);
    breaker.record(false);
    breaker.reset();
    breaker.record(false);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.failures, 1);
  });
});
