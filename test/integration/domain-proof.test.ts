/**
 * Domain proof against real parts on loopback: an authoritative DNS server (test/support/dns-server.ts)
 * that Concord's resolver asks over UDP, a web server for the well-known proof, real partner IdPs
 * and real brokered logins, the admin API, Redis for two instances. The grace period runs on a fake
 * clock handed to Concord: no test sleeps through it, and no test asserts a duration.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { sealParticipant } from '../../src/admin/stored.ts';
import { createAuditLog } from '../../src/admin/index.ts';
import { ConcordSettingsSchema, ParticipantSchema } from '../../src/config/index.ts';
import { createDomainProof } from '../../src/domain-proof/index.ts';
import { createMetrics, createLogger } from '../../src/observability/index.ts';
import { createSecretBox } from '../../src/secrets/index.ts';
import { MemoryStore } from '../../src/store/index.ts';
import { startConcord, TEST_SECRETS_KEY, type TestConcord } from '../support/concord.ts';
import { startDnsServer, type TestDns } from '../support/dns-server.ts';
import { authorizationRequest, exchange, brokeredLogin, RP, startFederation, startParticipantIdp, upstreamSecret, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';
import { adminApi, dropRedisPrefix, eventually, participantDoc, REDIS_URL, startDiscoveryServer, uniquePrefix, type DiscoveryServer } from './admin-fixtures.ts';
import { assertErrorPage, assertNoCodeAtRp, atRp } from './broker-helpers.ts';

const DAY = 86_400_000;
const MIN = 60_000;

/** A web server for the well-known proof: each path answers what the test set; it counts connections. */
interface ProofWeb {
  port: number;
  routes: Map<string, { status: number; body?: string; location?: string }>;
  requests: string[];
  connections: number;
  close(): Promise<void>;
}

async function startProofWeb(): Promise<ProofWeb> {
  const web: ProofWeb = { port: 0, routes: new Map(), requests: [], connections: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    web.requests.push(`${req.headers.host} ${req.url}`);
    const route = web.routes.get(req.url ?? '');
    if (!route) return void res.writeHead(404).end('not here');
    res.writeHead(route.status, { 'content-type': 'text/plain', ...(route.location ? { location: route.location } : {}) }).end(route.body ?? '');
  });
  server.on('connection', () => web.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  web.port = (server.address() as AddressInfo).port;
  web.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return web;
}

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('domain proof: brokered logins through a participant added at runtime', () => {
  let fed: Federation;
  let initech: PartnerIdp;
  let dns: TestDns;
  let web: ProofWeb;
  let api: ReturnType<typeof adminApi>;
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') };
  const challenges = new Map<string, string>();

  const metrics = async () => (await fetch(`${fed.concord.adminUrl}/metrics`)).text();
  const domain = async (name: string) => (await api.get(`/admin/v1/participants/initech/domains/${name}`)).body;
  const check = async (name: string) => {
    const res = await api.post(`/admin/v1/participants/initech/domains/${name}/check`);
    assert.equal(res.status, 200, res.text);
    return res.body;
  };
  const audit = async () => (await api.get('/admin/v1/audit?limit=200')).body.entries as Array<{ actor: string; action: string; object: { type: string; id: string }; result?: Record<string, unknown> }>;

  /** Peter types his email on Concord's login page: the error page, or the partner's login page. */
  async function typeEmail(email: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const page = await browser.get(auth.url, { stopAt: atRp });
    const form = parseForm(page.body, '/login');
    return { browser, auth, res: await browser.post(new URL(form.action, page.url), { ...form.fields, email }, { stopAt: atRp }) };
  }

  async function refusedAsUnverified(email: string) {
    const { browser, res } = await typeEmail(email);
    const reference = assertErrorPage(fed, res, 'unknown_domain');
    assert.match(res.body, /has not been confirmed/);
    const line = fed.concord.logs.find((l) => l.reference === reference)!;
    assert.equal(line.outcome, 'domain_unverified');
    assert.equal(line.participant, 'initech');
    assertNoCodeAtRp(browser);
  }

  async function signsIn(email: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(browser, auth, { email });
    return (await exchange(fed.rp, callback, auth)).claims()!;
  }

  before(async () => {
    [dns, web] = await Promise.all([startDnsServer(), startProofWeb()]);
    fed = await startFederation({
      settings: { domainProof: { resolvers: [dns.address], checkInterval: 0, allowInsecureHttp: true, wellKnownPort: web.port } },
      now: () => clock.now,
    });
    api = adminApi(fed.concord.adminUrl);
    initech = await startParticipantIdp({
      concordIssuer: fed.concord.issuer,
      participantId: 'initech',
      name: 'Initech',
      domain: 'initech.example',
      users: [
        { sub: 'peter', email: 'peter@initech.example', name: 'Peter' },
        { sub: 'milton', email: 'milton@initech.test', name: 'Milton' },
      ],
    });
  });
  after(async () => {
    await fed?.close();
    await initech?.close();
    await Promise.all([dns?.close(), web?.close()]);
  });

  it('a domain added at runtime is pending: the API shows its challenge and what to publish, and it routes no login', async () => {
    const created = await api.post('/admin/v1/participants', {
      id: 'initech',
      displayName: 'Initech',
      domains: ['initech.example', 'initech.test'],
      upstream: { type: 'oidc', issuer: initech.issuer, clientId: 'concord', clientSecret: upstreamSecret('initech'), allowInsecureHttp: true },
    });
    assert.equal(created.status, 201, created.text);

    const listed = await api.get('/admin/v1/participants/initech/domains');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.domains.map((d: { domain: string; state: string }) => [d.domain, d.state]), [['initech.example', 'pending'], ['initech.test', 'pending']]);
    for (const view of listed.body.domains) {
      assert.match(view.challenge, /^[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(view.proof.dns, { name: `_concord-challenge.${view.domain}`, type: 'TXT', value: view.challenge });
      assert.deepEqual(view.proof.https, { url: `http://${view.domain}:${web.port}/.well-known/concord-challenge/${view.challenge}`, body: view.challenge });
      assert.deepEqual([view.origin, view.proofRequired, view.verifiedAt, view.lastCheck, view.createdAt], ['runtime', true, null, null, new Date(clock.now).toISOString()]);
      challenges.set(view.domain, view.challenge);
    }
    assert.notEqual(challenges.get('initech.example'), challenges.get('initech.test'), 'one challenge per domain');

    // The files' domains are verified by the operator (domainProof.mode files: off).
    const all = (await api.get('/admin/v1/domains')).body.domains as Array<{ domain: string; state: string; origin: string; verifiedBy: string | null; proofRequired: boolean }>;
    assert.deepEqual(
      all.map((d) => [d.domain, d.state, d.origin, d.verifiedBy, d.proofRequired]),
      [
        ['acme.example', 'verified', 'file', 'operator', false],
        ['globex.example', 'verified', 'file', 'operator', false],
        ['initech.example', 'pending', 'runtime', null, true],
        ['initech.test', 'pending', 'runtime', null, true],
      ],
    );
    assert.deepEqual((await api.get('/admin/v1/domains?state=pending&participant=initech')).body.domains.length, 2);
    assert.equal((await api.get('/admin/v1/domains?state=gone')).status, 400);
    assert.equal((await api.get('/admin/v1/participants/initech/domains/acme.example')).status, 404, 'not initech\'s domain');
    // Named in any spelling of the same domain (domains/index.ts: canonical form), it is the one record.
    const spelled = await api.get('/admin/v1/participants/initech/domains/INITECH.Example.');
    assert.deepEqual([spelled.status, spelled.body.domain, spelled.body.challenge], [200, 'initech.example', challenges.get('initech.example')]);
    assert.equal((await api.get('/admin/v1/participants/nobody/domains')).status, 404);

    // A pending domain routes no login: typed on the login page, or as login_hint.
    await refusedAsUnverified('peter@initech.example');
    const browser = new Browser();
    const hinted = await authorizationRequest(fed.rp, { login_hint: 'peter@initech.example' });
    assertErrorPage(fed, await browser.get(hinted.url, { stopAt: atRp }), 'unknown_domain');
    assertNoCodeAtRp(browser);
    // The files' participants are not touched.
    assert.equal((await signsIn('alice@acme.example')).idp, 'acme');

    const text = await metrics();
    assert.equal(metricValue(text, 'concord_domain_proof_state{participant="initech",state="pending"}'), 2);
    assert.equal(metricValue(text, 'concord_domain_proof_state{participant="acme",state="verified"}'), 1);
    assert.ok(metricValue(text, 'concord_login_total{participant="initech",client="rp",outcome="domain_unverified"}')! >= 2);

    const claims = (await audit()).filter((e) => e.action === 'domain.claim' && e.object.id.startsWith('initech.'));
    assert.deepEqual(claims.map((e) => [e.actor, e.object.id, e.result?.state, e.result?.participant]).sort(), [
      ['admin', 'initech.example', 'pending', 'initech'],
      ['admin', 'initech.test', 'pending', 'initech'],
    ]);
  });

  it('a wrong TXT value or a page without the challenge proves nothing: the check says what it saw, and the domain stays pending', async () => {
    dns.setTxt('_concord-challenge.initech.example', ['v=spf1 -all', 'not-the-challenge']);
    dns.setA('initech.example', ['127.0.0.1']);
    web.routes.set(`/.well-known/concord-challenge/${challenges.get('initech.example')}`, { status: 200, body: '<html>welcome</html>' });
    const view = await check('initech.example');
    assert.equal(view.state, 'pending');
    assert.deepEqual([view.lastCheck.found, view.lastCheck.dns.outcome, view.lastCheck.https.outcome], [false, 'mismatch', 'mismatch']);
    assert.match(view.lastCheck.dns.detail, /2 TXT record\(s\) at _concord-challenge\.initech\.example, none holds/);
    assert.match(view.lastCheck.https.detail, /answers 200, but not with this domain's challenge/);
    assert.equal(view.nextCheckAt, new Date(clock.now + 5 * MIN).toISOString());
    // Both went to the servers of this test: the configured resolver, for TXT and for the web server's address.
    assert.ok(dns.asked.includes('TXT _concord-challenge.initech.example'));
    assert.ok(dns.asked.includes('A initech.example'));
    assert.ok(web.requests.includes(`initech.example:${web.port} /.well-known/concord-challenge/${challenges.get('initech.example')}`));
    web.routes.clear();

    await refusedAsUnverified('peter@initech.example');
    assert.equal((await audit()).filter((e) => e.action === 'domain.verify' && e.object.id === 'initech.example').length, 0);
  });

  it('a TXT record proves a domain: verified, it routes logins, and its email is released as verified; the other stays pending', async () => {
    const challenge = challenges.get('initech.example')!;
    // Several records, the challenge's one in two strings (joined before comparing).
    dns.setTxt('_concord-challenge.initech.example', ['v=spf1 -all', [challenge.slice(0, 20), challenge.slice(20)]]);
    const view = await check('initech.example');
    assert.deepEqual([view.state, view.verifiedBy, view.lastCheck.method, view.lastCheck.dns.outcome, view.lastCheck.https.outcome], ['verified', 'dns', 'dns', 'found', 'skipped']);
    assert.equal(view.verifiedAt, new Date(clock.now).toISOString());
    assert.equal(view.nextCheckAt, new Date(clock.now + DAY).toISOString(), 're-checked daily');
    assert.equal(fed.concord.concord.registry.participantForDomain('initech.example')?.config.id, 'initech');

    const peter = await signsIn('peter@initech.example');
    assert.deepEqual([peter.idp, peter.sub, peter.email, peter.email_verified], ['initech', 'initech:peter', 'peter@initech.example', true]);

    // initech.test is still pending: no login, and its addresses are not initech's own at release.
    await refusedAsUnverified('milton@initech.test');
    const dry = await api.post('/admin/v1/participants/initech/mapping/dry-run', { claims: { sub: 'milton', email: 'milton@initech.test', email_verified: true } });
    assert.equal(dry.body.claims.email, undefined);
    const own = await api.post('/admin/v1/participants/initech/mapping/dry-run', { claims: { sub: 'peter', email: 'peter@initech.example', email_verified: true } });
    assert.deepEqual([own.body.claims.email, own.body.claims.email_verified], ['peter@initech.example', true]);

    const verified = (await audit()).filter((e) => e.action === 'domain.verify' && e.object.id === 'initech.example');
    assert.deepEqual(verified.map((e) => [e.actor, e.result?.verifiedBy, e.result?.state]), [['admin', 'dns', 'verified']]);
    assert.equal(metricValue(await metrics(), 'concord_domain_proof_state{participant="initech",state="verified"}'), 1);
  });

  it('the well-known URL proves a domain, through a redirect', async () => {
    const challenge = challenges.get('initech.test')!;
    dns.setA('initech.test', ['127.0.0.1']);
    web.routes.set(`/.well-known/concord-challenge/${challenge}`, { status: 302, location: '/proof/initech' });
    web.routes.set('/proof/initech', { status: 200, body: `  ${challenge}\n` });
    const view = await check('initech.test');
    assert.deepEqual([view.state, view.verifiedBy, view.lastCheck.dns.outcome, view.lastCheck.https.outcome], ['verified', 'https', 'absent', 'found']);
    assert.ok(web.requests.includes(`initech.test:${web.port} /proof/initech`), 'the redirect was followed');
    assert.equal((await signsIn('milton@initech.test')).email, 'milton@initech.test');
  });

  it('a domain cannot be claimed twice: neither a verified one nor a pending one', async () => {
    const rival = (domains: string[]) => ({ id: 'rival', displayName: 'Rival', domains, upstream: { type: 'oidc', issuer: 'https://login.rival.example', clientId: 'concord', clientSecret: 'x' } });
    const verified = await api.post('/admin/v1/participants', rival(['initech.example']));
    assert.equal(verified.status, 409);
    assert.equal(verified.body.error, 'domain_conflict');

    const current = (await api.get('/admin/v1/participants/initech')).body;
    const put = await api.put('/admin/v1/participants/initech', { ...current, domains: [...current.domains, 'initech.dev'] });
    assert.equal(put.status, 200, put.text);
    assert.equal((await domain('initech.dev')).state, 'pending');
    const pending = await api.post('/admin/v1/participants', rival(['initech.dev']));
    assert.equal(pending.status, 409, 'the first claim holds the domain while it is pending');
    assert.equal(pending.body.error, 'domain_conflict');
    assert.equal((await domain('initech.dev')).participant, 'initech');

    // Given up, its record goes (audited); claimed again later, it starts pending again.
    const back = await api.put('/admin/v1/participants/initech', current);
    assert.equal(back.status, 200, back.text);
    assert.equal((await api.get('/admin/v1/participants/initech/domains/initech.dev')).status, 404);
    assert.equal(await fed.concord.concord.domainProof.get('initech.dev'), undefined);
    assert.ok((await audit()).some((e) => e.action === 'domain.release' && e.object.id === 'initech.dev' && e.actor === 'admin'));
  });

  it('a proof that disappears: flagged at once and still routing, suspended after the grace period (fake clock), verified again when it is back', async () => {
    dns.remove('_concord-challenge.initech.example');
    dns.remove('initech.example');
    clock.now += DAY;
    const flaggedAt = clock.now;
    const flagged = await check('initech.example');
    assert.equal(flagged.state, 'verified');
    assert.equal(flagged.proofMissingSince, new Date(flaggedAt).toISOString());
    assert.equal(flagged.suspendsAt, new Date(flaggedAt + 7 * DAY).toISOString());
    assert.deepEqual([flagged.lastCheck.found, flagged.lastCheck.dns.outcome], [false, 'absent']);
    assert.notEqual(flagged.lastCheck.https.outcome, 'found');
    assert.ok(fed.concord.logs.some((l) => l.msg?.toString().startsWith('domain proof missing') && l.domain === 'initech.example' && l.proofState === 'verified' && l.level === 'warn'));
    assert.equal(metricValue(await metrics(), 'concord_domain_proof_missing{participant="initech"}'), 1);
    assert.ok((await audit()).some((e) => e.action === 'domain.proof_missing' && e.object.id === 'initech.example' && e.result?.suspendsAt === flagged.suspendsAt));
    assert.equal((await signsIn('peter@initech.example')).idp, 'initech', 'still routing during the grace period');

    // Six days later: still missing, still verified, flagged since the first miss.
    clock.now = flaggedAt + 6 * DAY;
    const later = await check('initech.example');
    assert.deepEqual([later.state, later.proofMissingSince], ['verified', flagged.proofMissingSince]);

    // Past the grace period the timer's round suspends it (the check is due at the end of the grace period).
    clock.now = flaggedAt + 7 * DAY;
    await fed.concord.concord.domainProof.sweep();
    const suspended = await domain('initech.example');
    assert.equal(suspended.state, 'suspended');
    assert.equal(suspended.suspendedAt, new Date(clock.now).toISOString());
    assert.equal(fed.concord.concord.registry.participantForDomain('initech.example'), undefined);
    await refusedAsUnverified('peter@initech.example');
    assert.ok(fed.concord.logs.some((l) => l.msg?.toString().startsWith('domain suspended') && l.domain === 'initech.example' && l.proofState === 'suspended' && l.level === 'error'));
    const suspension = (await audit()).filter((e) => e.action === 'domain.suspend');
    assert.deepEqual(suspension.map((e) => [e.actor, e.object.id, e.result?.state]), [['domain-proof', 'initech.example', 'suspended']]);
    const text = await metrics();
    assert.equal(metricValue(text, 'concord_domain_proof_state{participant="initech",state="suspended"}'), 1);
    assert.equal(metricValue(text, 'concord_domain_proof_missing{participant="initech"}'), 0);
    // Another participant's domains are not touched.
    assert.equal((await domain('initech.test')).state, 'verified');

    // Published again: verified again at the next check, and Peter signs in.
    dns.setTxt('_concord-challenge.initech.example', [challenges.get('initech.example')!]);
    clock.now += 5 * MIN;
    await fed.concord.concord.domainProof.sweep();
    assert.equal((await domain('initech.example')).state, 'verified');
    assert.equal((await signsIn('peter@initech.example')).idp, 'initech');
  });
});

describe('domain proof: the service on its own (guard, timeouts, timer)', () => {
  let dns: TestDns;
  let web: ProofWeb;
  before(async () => {
    [dns, web] = await Promise.all([startDnsServer(), startProofWeb()]);
  });
  after(async () => Promise.all([dns.close(), web.close()]));

  const service = (settings: Record<string, unknown>, domains: string[]) => {
    const store = new MemoryStore();
    const proof = createDomainProof({
      store,
      settings: ConcordSettingsSchema.parse({ domainProof: { resolvers: [dns.address], ...settings } }).domainProof,
      log: createLogger({ level: 'silent' }),
      metrics: createMetrics(),
      audit: createAuditLog(store),
      claims: () => [{ id: 'p', domains }],
      announce: async () => {},
    });
    return { store, proof };
  };

  it('the HTTPS check goes through the public-address guard: a name on loopback gets no connection', async () => {
    const { proof } = service({ wellKnownPort: web.port, checkInterval: 0 }, ['inside.example']);
    const [record] = await proof.claim('p', ['inside.example'], { actor: 'test' });
    dns.setA('inside.example', ['127.0.0.1']);
    web.routes.set(`/.well-known/concord-challenge/${record!.challenge}`, { status: 200, body: record!.challenge });
    const before = web.connections;
    const checked = await proof.check('inside.example', { actor: 'test' });
    assert.equal(checked.state, 'pending');
    assert.equal(checked.lastCheck?.https.outcome, 'error');
    assert.match(checked.lastCheck!.https.detail, /inside\.example:\d+ is not at a public address \(domainProof\.allowPrivateNetwork is off\)/);
    assert.equal(web.connections, before, 'no connection was made');
    assert.ok(dns.asked.includes('A inside.example'), 'the address came from the configured resolver');

    // The same, allowed (as tests on loopback do): the proof is found.
    const { proof: allowed } = service({ wellKnownPort: web.port, checkInterval: 0, allowInsecureHttp: true }, ['inside.example']);
    await allowed.claim('p', ['inside.example'], { actor: 'test' });
    const [again] = await allowed.list();
    web.routes.set(`/.well-known/concord-challenge/${again!.challenge}`, { status: 200, body: again!.challenge });
    assert.equal((await allowed.check('inside.example', { actor: 'test' })).state, 'verified');
    assert.ok(web.connections > before);
  });

  it('a resolver that does not answer is an error, not an absence, and the check still ends', async () => {
    const { proof } = service({ timeoutMs: 200, checkInterval: 0 }, ['slow.example']);
    await proof.claim('p', ['slow.example'], { actor: 'test' });
    dns.silent('_concord-challenge.slow.example');
    dns.silent('slow.example');
    const checked = await proof.check('slow.example', { actor: 'test' });
    assert.equal(checked.lastCheck?.dns.outcome, 'error');
    assert.match(checked.lastCheck!.dns.detail, /the TXT query for _concord-challenge\.slow\.example failed \(E[A-Z]+\)/);
    assert.equal(checked.lastCheck?.https.outcome, 'error');
    assert.equal(checked.state, 'pending');
  });

  it('the timer checks a pending domain by itself', async () => {
    const { proof } = service({ checkInterval: '1s' }, ['timer.example']);
    const [record] = await proof.claim('p', ['timer.example'], { actor: 'test' });
    dns.setTxt('_concord-challenge.timer.example', [record!.challenge]);
    proof.start();
    try {
      await eventually(async () => (await proof.get('timer.example'))?.state === 'verified', 10_000, 'the timer verified timer.example');
      const verified = await proof.get('timer.example');
      assert.equal(verified?.verifiedBy, 'dns');
    } finally {
      await proof.stop();
    }
  });
});

describe('domain proof: domains from the files, and from a store older than domain proof', () => {
  it('with domainProof.mode files: required, the files\' domains are pending too', async () => {
    const instance = await startConcord({
      settings: { domainProof: { mode: { files: 'required' }, checkInterval: 0, resolvers: ['127.0.0.1:9'] }, upstream: { healthInterval: 0 } },
      participants: [participantDoc('acme', 'https://login.acme.example', 'acme.example')],
    });
    try {
      assert.equal(instance.concord.registry.participantForDomain('acme.example'), undefined);
      const view = (await adminApi(instance.adminUrl).get('/admin/v1/participants/acme/domains/acme.example')).body;
      assert.deepEqual([view.state, view.origin, view.proofRequired], ['pending', 'file', true]);
    } finally {
      await instance.close();
    }
  });

  it('an upgrade: domains stored before domain proof are verified by the upgrade and keep routing; one written later by an older instance is pending', async () => {
    const store = new MemoryStore();
    const box = createSecretBox(TEST_SECRETS_KEY);
    const old = ParticipantSchema.parse(participantDoc('old', 'https://login.old.example', 'old.example'));
    await store.putRecord('participants', 'old', sealParticipant(old, box));
    await store.incr('config:seeded');
    await store.incr('config:version');
    const instance = await startConcord({ store, settings: { domainProof: { checkInterval: 0, resolvers: ['127.0.0.1:9'] }, upstream: { healthInterval: 0 } } });
    try {
      assert.equal(instance.concord.registry.participantForDomain('old.example')?.config.id, 'old', 'still routing after the upgrade');
      const api = adminApi(instance.adminUrl);
      const view = (await api.get('/admin/v1/participants/old/domains/old.example')).body;
      assert.deepEqual([view.state, view.origin, view.verifiedBy, view.proofRequired], ['verified', 'upgrade', 'upgrade', false]);
      const entries = (await api.get('/admin/v1/audit')).body.entries;
      assert.ok(entries.some((e: { action: string; actor: string; object: { id: string } }) => e.action === 'domain.claim' && e.actor === 'domain-proof' && e.object.id === 'old.example'));

      // An instance of the older version adds a participant now: no domain record. Fail closed.
      const late = ParticipantSchema.parse(participantDoc('late', 'https://login.late.example', 'late.example'));
      await store.putRecord('participants', 'late', sealParticipant(late, box));
      await instance.concord.store.incr('config:version');
      await instance.concord.store.publish('config', 'x');
      await eventually(() => instance.concord.registry.participant('late') !== undefined, 2000, 'the instance applies the late participant');
      assert.equal(instance.concord.registry.participantForDomain('late.example'), undefined, 'no record: not routing');
      await instance.concord.domainProof.sweep();
      const adopted = await instance.concord.domainProof.get('late.example');
      assert.deepEqual([adopted?.state, adopted?.origin, adopted?.participant], ['pending', 'runtime', 'late']);
      assert.equal(instance.concord.registry.participantForDomain('late.example'), undefined);
    } finally {
      await instance.close();
    }
  });
});

describe('domain proof: two instances on Redis', () => {
  const prefix = uniquePrefix('domain-proof');
  let a: TestConcord;
  let b: TestConcord;
  let dns: TestDns;
  let upstream: DiscoveryServer;

  before(async () => {
    [dns, upstream] = await Promise.all([startDnsServer(), startDiscoveryServer()]);
    const settings = { store: REDIS_URL, storePrefix: prefix, domainProof: { resolvers: [dns.address], checkInterval: 0 }, upstream: { healthInterval: 0 } };
    a = await startConcord({ settings, clients: [RP] });
    b = await startConcord({ settings, clients: [RP] });
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all([dns.close(), upstream.close()]);
    await dropRedisPrefix(prefix);
  });

  it('a domain claimed on one instance is pending on both; checked on both at once, it is verified once, and routes on both', async () => {
    const apiA = adminApi(a.adminUrl);
    const apiB = adminApi(b.adminUrl);
    const created = await apiA.post('/admin/v1/participants', participantDoc('umbrella', upstream.issuer, 'umbrella.example'));
    assert.equal(created.status, 201, created.text);
    await eventually(() => b.concord.registry.participant('umbrella') !== undefined, 2000, 'B serves umbrella');
    assert.equal(b.concord.registry.domainClaim('umbrella.example')?.verified, false);
    const view = (await apiB.get('/admin/v1/participants/umbrella/domains/umbrella.example')).body;
    assert.equal(view.state, 'pending');

    dns.setTxt('_concord-challenge.umbrella.example', [view.challenge]);
    const checks = await Promise.all([apiA, apiB, apiA, apiB].map((api) => api.post('/admin/v1/participants/umbrella/domains/umbrella.example/check')));
    for (const res of checks) {
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.state, 'verified');
    }
    const entries = (await apiA.get('/admin/v1/audit?limit=100')).body.entries as Array<{ action: string; object: { id: string } }>;
    assert.equal(entries.filter((e) => e.action === 'domain.verify' && e.object.id === 'umbrella.example').length, 1, 'one instance at a time: verified once');
    for (const instance of [a, b]) {
      await eventually(() => instance.concord.registry.participantForDomain('umbrella.example')?.config.id === 'umbrella', 2000, 'both route umbrella.example');
    }
  });
});
