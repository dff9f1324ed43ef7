import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { DEMO_PASSWORD, type PartnerIdp } from '../../demo/partner-idp.ts';
import { createVerifier } from '../../packages/verify/src/index.ts';
import { authorizationRequest, exchange, RP, startParticipantIdp, upstreamSecret } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';
import { startBalancer, startConcordProcess, type Balancer, type ConcordProcess } from './faults-harness.ts';

/**
 * Two Concord processes behind one issuer (a loopback load balancer), sharing a Redis. Instance A
 * is killed with SIGKILL in the middle of a login, while the user is at the partner's login page;
 * the user finishes on instance B, which has everything it needs from the store.
 */
describe('faults: an instance dies in the middle of a login', () => {
  const secretsKey = randomBytes(32).toString('base64');
  const prefix = `faults-instance-${randomBytes(4).toString('hex')}:`;
  let redis: RedisServer;
  let balancer: Balancer;
  let acme: PartnerIdp;
  let a: ConcordProcess;
  let b: ConcordProcess;
  let rp: oidc.Configuration;

  before(async () => {
    redis = await startRedis();
    balancer = await startBalancer();
    const issuer = balancer.url;
    acme = await startParticipantIdp({ concordIssuer: issuer, participantId: 'acme', name: 'Acme', domain: 'acme.example' });
    const common = {
      issuer,
      store: redis.url,
      prefix,
      secretsKey,
      participants: [
        {
          id: 'acme',
          displayName: 'Acme',
          domains: ['acme.example'],
          upstream: { type: 'oidc', issuer: acme.issuer, clientId: 'concord', clientSecret: upstreamSecret('acme'), allowInsecureHttp: true },
        },
      ],
      clients: [RP],
    };
    [a, b] = await Promise.all([startConcordProcess({ ...common, name: 'A' }), startConcordProcess({ ...common, name: 'B' })]);
    balancer.backends = [a.url, b.url];
    rp = await oidc.discovery(new URL(issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([acme?.close(), balancer?.close()]);
    await redis?.stop();
  });

  it('finishes the login on instance B after A is killed between the upstream redirect and the callback', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(rp);
    const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);

    // On A: the authorization request, Concord's login page, the email, the redirect to the partner.
    const loginPage = await browser.get(auth.url, { stopAt: atRp });
    assert.equal(loginPage.status, 200);
    const emailForm = parseForm(loginPage.body, '/login');
    const partnerPage = await browser.post(new URL(emailForm.action, loginPage.url), { ...emailForm.fields, email: 'alice@acme.example' }, { stopAt: atRp });
    assert.equal(partnerPage.url.origin, acme.issuer, 'the browser is at the partner IdP');
    assert.ok(partnerPage.body.includes('password'));
    const beforeKill = balancer.served.length;
    assert.ok(beforeKill >= 3);
    assert.ok(
      balancer.served.every((s) => s.backend === 0),
      `every Concord step so far was served by A: ${JSON.stringify(balancer.served)}`,
    );

    // A dies without a chance to clean up anything.
    await a.kill('SIGKILL');
    assert.equal(a.running, false);

    // The partner sends the browser back to the issuer; the balancer finds A gone and uses B.
    const passwordForm = parseForm(partnerPage.body, '/login');
    const done = await browser.post(new URL(passwordForm.action, partnerPage.url), { ...passwordForm.fields, username: 'alice@acme.example', password: DEMO_PASSWORD }, { stopAt: atRp });
    assert.ok(done.stoppedAt, `the login reached the RP: ${done.status} ${done.url.href}\n${done.body.slice(0, 400)}\nB's log:\n${b.output().slice(-3000)}`);
    const afterKill = balancer.served.slice(beforeKill);
    assert.ok(afterKill.some((s) => s.path === '/broker/acme/callback' && s.backend === 1), `B served the upstream callback: ${JSON.stringify(afterKill)}`);
    assert.ok(afterKill.every((s) => s.backend === 1));

    // The code B issued is exchanged (at B) with every check openid-client makes, ID token included.
    const tokens = await exchange(rp, done.stoppedAt, auth);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, `acme:${acme.users.find((u) => u.email === 'alice@acme.example')!.sub}`);
    assert.equal(claims.email, 'alice@acme.example');
    assert.ok(tokens.refresh_token);

    // The access token verifies against the issuer's JWKS (served by B now, the key A signed with too).
    const verified = await createVerifier({ issuer: balancer.url, audience: balancer.url })(tokens.access_token);
    assert.equal(verified.client_id, RP.client_id);

    // And the refresh token works on B.
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
  });

  it('keeps serving new logins on the surviving instance', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(rp, { login_hint: 'carol@acme.example' });
    const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);
    const partnerPage = await browser.get(auth.url, { stopAt: atRp });
    const form = parseForm(partnerPage.body, '/login');
    const done = await browser.post(new URL(form.action, partnerPage.url), { ...form.fields, username: 'carol@acme.example', password: DEMO_PASSWORD }, { stopAt: atRp });
    assert.ok(done.stoppedAt);
    const tokens = await exchange(rp, done.stoppedAt, auth);
    assert.equal(tokens.claims()!.email, 'carol@acme.example');
  });
});
