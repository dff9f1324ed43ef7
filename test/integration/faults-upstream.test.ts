import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { authorizationRequest, brokeredLogin, exchange, RP, startParticipantIdp, upstreamSecret } from '../support/federation.ts';
import { Browser, type BrowserResponse } from '../support/http-client.ts';
import { startHostileIdp, type HostileIdp } from '../support/hostile-idp.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { freePort } from '../support/ports.ts';
import { startConcordProcess, status, until, type ConcordProcess } from './faults-harness.ts';

const TIMEOUT_MS = 3000;
const HUNG = 8;

/**
 * One participant's IdP accepts the code exchange and never answers. Concord (a real process)
 * gives each of those logins up after upstream.timeoutMs with a clear page, and meanwhile another
 * participant's users sign in as usual: nothing waits behind the hung calls.
 */
describe('faults: an upstream that hangs', () => {
  let redis: RedisServer;
  let acme: PartnerIdp;
  let hostile: HostileIdp;
  let concord: ConcordProcess;
  let rp: oidc.Configuration;
  let issuer: string;

  before(async () => {
    redis = await startRedis();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    [acme, hostile] = await Promise.all([
      startParticipantIdp({ concordIssuer: issuer, participantId: 'acme', name: 'Acme', domain: 'acme.example' }),
      startHostileIdp({ mode: 'ok', domain: 'hostile.example' }),
    ]);
    concord = await startConcordProcess({
      issuer,
      port,
      store: redis.url,
      prefix: `faults-upstream-${randomBytes(4).toString('hex')}:`,
      secretsKey: randomBytes(32).toString('base64'),
      settings: { upstream: { timeoutMs: TIMEOUT_MS } },
      participants: [
        {
          id: 'acme',
          displayName: 'Acme',
          domains: ['acme.example'],
          upstream: { type: 'oidc', issuer: acme.issuer, clientId: 'concord', clientSecret: upstreamSecret('acme'), allowInsecureHttp: true },
        },
        {
          id: 'hostile',
          displayName: 'Hostile',
          domains: ['hostile.example'],
          upstream: { type: 'oidc', issuer: hostile.issuer, clientId: hostile.clientId, clientSecret: hostile.clientSecret, allowInsecureHttp: true },
        },
      ],
      clients: [RP],
    });
    rp = await oidc.discovery(new URL(issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });

  after(async () => {
    await concord?.stop();
    await Promise.all([acme?.close(), hostile?.close()]);
    await redis?.stop();
  });

  async function acmeLogin(email: string) {
    const auth = await authorizationRequest(rp);
    const callback = await brokeredLogin(new Browser(), auth, { email });
    return exchange(rp, callback, auth);
  }

  it('signs in the hostile IdP\'s users while it answers', async () => {
    const auth = await authorizationRequest(rp, { login_hint: 'user-1@hostile.example' });
    const page = await new Browser().get(auth.url, { stopAt: (u) => u.href.startsWith(RP.redirect_uris[0]!) });
    assert.ok(page.stoppedAt, `the login completes: ${page.status} ${page.body.slice(0, 300)}`);
  });

  it('gives hung code exchanges up after the timeout while another participant\'s logins go on', async () => {
    hostile.setMode('token_hangs');
    const tokenCallsBefore = hostile.requests.filter((r) => r === 'POST /token').length;

    // HUNG users of the hanging IdP start at once; each reaches Concord's callback, whose code
    // exchange with the IdP never gets an answer.
    let firstHungAnswer = Infinity;
    const hung = Array.from({ length: HUNG }, async (): Promise<{ page: BrowserResponse; ms: number }> => {
      const auth = await authorizationRequest(rp, { login_hint: 'user-1@hostile.example' });
      const started = Date.now();
      const page = await new Browser({ timeoutMs: 20_000 }).get(auth.url, { stopAt: (u) => u.href.startsWith(RP.redirect_uris[0]!) });
      firstHungAnswer = Math.min(firstHungAnswer, Date.now());
      return { page, ms: Date.now() - started };
    });
    await until(async () => hostile.requests.filter((r) => r === 'POST /token').length - tokenCallsBefore === HUNG, 'every hung login to be waiting on the IdP', 5000);
    const hangingSince = Date.now();

    // Meanwhile: Concord answers, and Acme's users sign in from start to finish, one after another.
    assert.equal(await status(`${issuer}/readyz`), 200);
    const alice = await acmeLogin('alice@acme.example');
    const carol = await acmeLogin('carol@acme.example');
    const acmeDone = Date.now();
    assert.equal(alice.claims()!.email, 'alice@acme.example');
    assert.equal(carol.claims()!.email, 'carol@acme.example');
    assert.ok(acmeDone < firstHungAnswer, `both Acme logins finished (${acmeDone - hangingSince} ms) while the ${HUNG} hung logins were still waiting`);

    // Each hung login ends with the "sign-in service unavailable" page after about the timeout, not never.
    const results = await Promise.all(hung);
    for (const { page, ms } of results) {
      assert.equal(page.status, 503, page.body.slice(0, 300));
      assert.match(page.body, /sign-in service is unavailable/);
      assert.ok(ms >= TIMEOUT_MS - 100 && ms < TIMEOUT_MS + 4000, `answered after ${ms} ms (timeout ${TIMEOUT_MS} ms)`);
    }

    // Afterwards Concord is as before: Acme logins work, and the IdP gets no more hanging calls than it was sent.
    const after = await acmeLogin('alice@acme.example');
    assert.ok(after.access_token);
    assert.equal(hostile.requests.filter((r) => r === 'POST /token').length - tokenCallsBefore, HUNG, 'no retries of a hung call');
  });
});
