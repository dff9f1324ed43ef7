import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { CONSOLE_CSP } from '../../src/console/router.ts';
import { startDnsServer, type TestDns } from '../support/dns-server.ts';
import { authorizationRequest, brokeredLogin, exchange, startFederation, startParticipantIdp, upstreamSecret, type Federation } from '../support/federation.ts';
import { Browser as HttpBrowser } from '../support/http-client.ts';

/**
 * The admin console in Chromium (Debian's, driven by playwright-core), against real parts on
 * loopback: Concord with two partner IdPs, a third partner IdP to onboard, and a DNS server for the
 * domain proof. An admin of Acme signs in through Concord, onboards Initech end to end (wizard,
 * DNS proof, mapping dry-run, test login, enable), and Initech's user then signs in to a service.
 * axe-core checks every page; set CONSOLE_SCREENSHOTS=docs/console to (re)write the docs' screenshots.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM}` : false;
const SHOTS = process.env.CONSOLE_SCREENSHOTS;
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const ALLOW = 'claims.idp == "acme" && "engineering" in claims.groups';

/** A screenshot for the docs, kept small: six levels per channel (text stays sharp on flat colours), best compression. */
function small(shot: Buffer): Buffer {
  const png = PNG.sync.read(shot);
  for (let i = 0; i < png.data.length; i++) if (i % 4 !== 3) png.data[i] = Math.round(png.data[i]! / 51) * 51;
  return PNG.sync.write(png, { colorType: 2, deflateLevel: 9 });
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

describe('admin console in Chromium', { skip }, () => {
  let fed: Federation;
  let initech: PartnerIdp;
  let dns: TestDns;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let consoleUrl: string;
  const cspViolations: string[] = [];
  const checkedPages = new Set<string>();

  /** axe-core in the page (evaluated through the DevTools protocol, so the page's CSP stays as served): no serious or critical violation. */
  async function accessible(p: Page, name: string): Promise<void> {
    await p.evaluate(AXE);
    const violations = (await p.evaluate(async () => {
      const result = await (globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: unknown[] }> } }).axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
      return result.violations;
    })) as AxeViolation[];
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(
      bad.map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
      [],
      `accessibility of ${name}`,
    );
    checkedPages.add(name);
    if (SHOTS) writeFileSync(path.join(SHOTS, `${name}.png`), small(await p.screenshot({ fullPage: false })));
  }

  const watch = (p: Page) =>
    p.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(`${p.url()}: ${message.text()}`);
    });

  /** Concord's login page (email), then the partner's (password); ends wherever the partner sends the browser. */
  async function signInThroughConcord(p: Page, email: string) {
    await p.waitForURL((u) => u.origin === fed.concord.issuer && u.pathname.startsWith('/interaction/'));
    await p.fill('#email', email);
    await p.click('button[type=submit]');
    await p.waitForSelector('#password');
    await p.fill('#password', 'demo');
    await p.click('button:has-text("Sign in")');
  }

  before(async () => {
    dns = await startDnsServer();
    fed = await startFederation({
      settings: { console: { allow: ALLOW }, domainProof: { resolvers: [dns.address], checkInterval: 0 }, upstream: { healthInterval: 0 } },
    });
    consoleUrl = `${fed.concord.adminUrl}/console/`;
    initech = await startParticipantIdp({
      concordIssuer: fed.concord.issuer,
      participantId: 'initech',
      name: 'Initech',
      domain: 'initech.example',
      users: [{ sub: 'peter', email: 'peter@initech.example', name: 'Peter Gibbons', groups: ['tps-reports'] }],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    context.setDefaultTimeout(60_000);
    page = await context.newPage();
    watch(page);
  });
  after(async () => {
    await browser?.close();
    await fed?.close();
    await initech?.close();
    await dns?.close();
  });

  it('is served on the admin listener only: the public port answers 404 at /console/', async () => {
    const publicAnswer = await fetch(`${fed.concord.issuer}/console/`, { redirect: 'manual' });
    assert.equal(publicAnswer.status, 404);
    const adminAnswer = await fetch(`${consoleUrl}login`, { redirect: 'manual' });
    assert.equal(adminAnswer.status, 200);
    assert.equal(adminAnswer.headers.get('content-security-policy'), CONSOLE_CSP);
    const cookie = adminAnswer.headers.get('set-cookie') ?? '';
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\/console/);
  });

  it('an admin of Acme signs in through Concord (the built-in client, PKCE), and the overview shows every participant', async () => {
    await page.goto(consoleUrl);
    await page.waitForURL(/\/console\/login$/);
    await accessible(page, 'sign-in');
    await page.click('text=Sign in with Concord');
    await signInThroughConcord(page, 'alice@acme.example');
    await page.waitForURL(consoleUrl);
    assert.match(await page.locator('h1').innerText(), /Overview/);
    assert.match(await page.locator('.signout').innerText(), /alice@acme\.example/);
    const table = await page.locator('table').first().innerText();
    assert.match(table, /Acme/);
    assert.match(table, /Globex/);
    assert.match(await page.locator('#keys-h + ul').innerText(), /current/);
    assert.match(await page.locator('main').innerText(), /serves version \d+/);
    await accessible(page, 'overview');
  });

  it('refuses a form without its CSRF token, and one with a wrong token', async () => {
    const rotate = `${consoleUrl}keys/rotate`;
    const missing = await page.request.post(rotate, { form: {}, maxRedirects: 0 });
    assert.equal(missing.status(), 403);
    assert.match(await missing.text(), /did not carry this session.s security token/);
    const wrong = await page.request.post(rotate, { form: { _csrf: 'x'.repeat(43) }, maxRedirects: 0 });
    assert.equal(wrong.status(), 403);
    const audit: any = await (await fetch(`${fed.concord.adminUrl}/admin/v1/audit?limit=50`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } })).json();
    assert.equal((audit.entries as Array<{ action: string }>).filter((e) => e.action === 'keys.rotate').length, 0, 'nothing rotated');
    // The refusal page, as a browser shows it.
    const refusal = await context.newPage();
    await refusal.setContent('<!doctype html><title>x</title>');
    await refusal.goto(`${consoleUrl}keys`);
    await refusal.evaluate(() => {
      (globalThis as unknown as { document: { querySelector(s: string): { remove(): void } } }).document.querySelector('form[action="/console/keys/rotate"] input[name=_csrf]').remove();
    });
    await refusal.click('button:has-text("Rotate the signing key")');
    await refusal.waitForSelector('text=Form refused');
    await accessible(refusal, 'csrf-refused');
    await refusal.close();
  });

  let challenge = '';

  it('onboards Initech with the wizard: the upstream check in words, the client, the domain pending with its challenge', async () => {
    await page.click('nav >> text=Onboard a partner');
    await page.check('#allowInsecureHttp');
    await accessible(page, 'onboard-1-upstream');
    // The same onboarding check as the API: an issuer that is not the partner's is refused, with the field and the reason.
    await page.fill('#issuer', `${initech.issuer}/not-the-issuer`);
    await page.click('button:has-text("Check this upstream")');
    const refused = await page.locator('.error').innerText();
    assert.match(refused, /upstream check of .*not-the-issuer failed/);
    assert.match(refused, /upstream\.issuer/);
    await accessible(page, 'onboard-1-refused');
    await page.fill('#issuer', initech.issuer);
    await page.click('button:has-text("Check this upstream")');
    assert.match(await page.locator('.ok').innerText(), /upstream check passed/);
    await page.fill('#clientId', 'concord');
    await accessible(page, 'onboard-2-client');
    await page.selectOption('#authMethod', 'client_secret_basic');
    await page.fill('#clientSecret', upstreamSecret('initech'));
    await page.click('button:has-text("Check and continue")');
    assert.match(await page.locator('.ok').innerText(), /client_secret_basic/);
    await page.fill('#id', 'initech');
    await page.fill('#displayName', 'Initech');
    await page.fill('#domains', 'initech.example');
    await accessible(page, 'onboard-3-domains');
    await page.click('button:has-text("Create the participant")');
    await page.waitForURL(/\/console\/participants\/initech/);
    assert.match(await page.locator('.notice').innerText(), /Created \(disabled\)/);
    const row = page.locator('#domains-h + p + table tbody tr').first();
    assert.match(await row.innerText(), /pending/);
    challenge = (await row.locator('code').nth(1).innerText()).trim();
    assert.match(challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(await row.locator('code').first().innerText(), '_concord-challenge.initech.example');
  });

  it('a pending domain routes no login yet', async () => {
    const browserHttp = new HttpBrowser();
    const auth = await authorizationRequest(fed.rp);
    await assert.rejects(brokeredLogin(browserHttp, auth, { email: 'peter@initech.example' }));
  });

  it('proves the domain by DNS (a server on loopback), checked from the console', async () => {
    await page.click('button:has-text("Check initech.example now")');
    assert.match(await page.locator('#domains-h + p + table tbody tr').first().innerText(), /pending[\s\S]*not found/);
    dns.setTxt('_concord-challenge.initech.example', [challenge]);
    await page.click('button:has-text("Check initech.example now")');
    assert.match(await page.locator('#domains-h + p + table tbody tr').first().innerText(), /verified[\s\S]*found by dns/);
  });

  it('the mapping editor: validation pointing at the rule, a dry-run, and saving', async () => {
    await page.fill('#mapping', 'rules:\n  - claim: department\n    value: sales\n  - claim: team\n    from: groups\n    regex:\n      pattern: "("\n');
    await page.click('button:has-text("Dry-run")');
    const problem = await page.locator('#mapping-h ~ .error').first().innerText();
    assert.match(problem, /rule 2/);
    assert.match(problem, /regex/);
    await accessible(page, 'participant-mapping-error');
    await page.fill('#mapping', 'rules:\n  - claim: department\n    value: operations\n  - require: claims.email.endsWith("@initech.example")\n    message: Only Initech staff\n');
    await page.fill('#claims', '{"sub": "x", "email": "mallory@elsewhere.example"}');
    await page.click('button:has-text("Dry-run")');
    assert.match(await page.locator('#mapping-h ~ .error').first().innerText(), /Rejected by rule 2[\s\S]*Only Initech staff/);
    await page.fill('#claims', '{"sub": "x", "email": "peter@initech.example", "email_verified": true}');
    await page.click('button:has-text("Dry-run")');
    const released = await page.locator('#mapping-h ~ .ok').first().innerText();
    assert.match(released, /Released/);
    assert.match(released, /"department": "operations"/);
    await page.click('button:has-text("Save mapping")');
    assert.match(await page.locator('.notice').innerText(), /Saved/);
  });

  it('a test login runs through the (still disabled) participant in a new tab and shows the upstream claims and the mapped result', async () => {
    const [tab] = await Promise.all([context.waitForEvent('page'), page.click('button:has-text("Run a test login")')]);
    watch(tab);
    await tab.waitForSelector('#continue');
    await accessible(tab, 'test-login-start');
    await tab.click('#continue');
    await tab.waitForSelector('#password');
    await tab.fill('#username', 'peter@initech.example');
    await tab.fill('#password', 'demo');
    await tab.click('button:has-text("Sign in")');
    await tab.waitForSelector('text=Test login finished').catch(async (error: unknown) => {
      throw new Error(`${tab.url()}: ${(await tab.locator('body').innerText()).slice(0, 500)}`, { cause: error });
    });
    assert.ok(tab.url().startsWith(`${fed.concord.issuer}/broker/initech/callback`), tab.url());
    assert.equal(new URL(tab.url()).searchParams.get('code') !== null, true, 'the upstream code came to the broker callback, and stayed there');
    await tab.close();
    await page.reload();
    const panel = await page.locator('#test-h ~ .grid').first().innerText();
    assert.match(panel, /Upstream claims[\s\S]*peter@initech\.example/);
    assert.match(panel, /Mapped result[\s\S]*released[\s\S]*"department": "operations"/);
    await accessible(page, 'participant');
  });

  it('enables Initech, and Peter then signs in to a service through it', async () => {
    await page.click('button:has-text("Enable this participant")');
    assert.match(await page.locator('.notice').innerText(), /Enabled/);
    const browserHttp = new HttpBrowser();
    const auth = await authorizationRequest(fed.rp);
    const callback = await brokeredLogin(browserHttp, auth, { email: 'peter@initech.example' });
    const claims = (await exchange(fed.rp, callback, auth)).claims()!;
    assert.equal(claims.idp, 'initech');
    assert.equal(claims.email, 'peter@initech.example');
    // The overview: Initech enabled and verified, its logins of the last hour by outcome, and the last
    // refused one (while its domain was pending) with the reference its error page showed.
    await page.click('nav >> text=Overview');
    const row = await page.locator('tr', { hasText: 'Initech' }).innerText();
    assert.match(row, /enabled[\s\S]*initech\.example verified/);
    assert.match(row, /success: 1/);
    assert.match(row, /domain_unverified: 1/);
    assert.match(row, /login domain_unverified at [\s\S]*reference [A-Za-z0-9_-]+/);
  });

  it('every change names the admin’s sub in the audit log, which the console filters by actor and target', async () => {
    const audit: any = await (await fetch(`${fed.concord.adminUrl}/admin/v1/audit?limit=100`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } })).json();
    const mine = (audit.entries as Array<{ actor: string; action: string; object: { id: string } }>).filter((e) => e.object.id === 'initech' || e.object.id === 'initech.example');
    const actions = new Set(mine.map((e) => e.action));
    for (const action of ['participant.create', 'domain.verify', 'participant.update', 'participant.test_login', 'participant.enable']) assert.ok(actions.has(action), `${action} in ${[...actions].join(', ')}`);
    // Alice's sub at Concord (the console's client is a public-subject client): {participant}:{upstream sub}.
    const actor = 'acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001';
    assert.deepEqual(new Set(mine.filter((e) => e.action.startsWith('participant.')).map((e) => e.actor)), new Set([actor]));
    assert.equal(mine.find((e) => e.action === 'domain.verify')?.actor, actor);

    await page.click('nav >> text=Audit log');
    await page.fill('#actor', actor);
    await page.fill('#target', 'initech');
    await page.click('button:has-text("Filter")');
    const rows = await page.locator('table tbody tr').allInnerTexts();
    assert.ok(rows.length >= 4, `${rows.length} rows`);
    for (const row of rows) assert.ok(row.includes(actor) && row.includes('initech'), row);
    assert.doesNotMatch(await page.locator('main').innerText(), new RegExp(upstreamSecret('initech')));
    await accessible(page, 'audit');
  });

  it('clients, keys (rotation said in words) and sessions pages', async () => {
    await page.click('nav >> text=Clients');
    assert.match(await page.locator('table').first().innerText(), /Test RP/);
    assert.doesNotMatch(await page.locator('table').first().innerText(), /concord-console/, 'the built-in client is not listed');
    await accessible(page, 'clients');
    await page.click('text=Test RP');
    await accessible(page, 'client');

    await page.click('nav >> text=Keys');
    assert.match(await page.locator('#rotate-help').innerText(), /starts signing after/);
    await accessible(page, 'keys');
    const before = await page.locator('table tbody tr').count();
    await page.click('button:has-text("Rotate the signing key")');
    assert.match(await page.locator('.notice').innerText(), /new signing key/);
    // One new key per offered algorithm (keys.algorithms: RS256 and ES256 by default).
    assert.equal(await page.locator('table tbody tr').count(), before + 2);

    await page.click('nav >> text=Sessions');
    await page.fill('#participant', 'initech');
    await page.click('button:has-text("Find")');
    assert.match(await page.locator('table').innerText(), /peter@initech\.example/);
    await accessible(page, 'sessions');
    await page.click('button:has-text("End all their sessions")');
    assert.match(await page.locator('.notice').innerText(), /Session ended/);
  });

  it('a signed-in non-admin (Carol, not in engineering) gets a clear refusal', async () => {
    const other = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const carol = await other.newPage();
    watch(carol);
    await carol.goto(`${consoleUrl}login`);
    await carol.click('text=Sign in with Concord');
    await signInThroughConcord(carol, 'carol@acme.example');
    await carol.waitForSelector('text=Not an administrator');
    assert.match(await carol.locator('main').innerText(), /not allowed to use the Concord console/);
    await accessible(carol, 'refused');
    const overview = await carol.goto(consoleUrl);
    assert.ok(overview!.url().endsWith('/console/login'), 'still signed out');
    await other.close();
  });

  it('the break-glass admin token signs in too, and its changes say admin-token', async () => {
    const other = await browser.newContext();
    const p = await other.newPage();
    await p.goto(`${consoleUrl}login`);
    await p.fill('#token', 'wrong-token-0123456789');
    await p.click('button:has-text("Sign in with the admin token")');
    assert.match(await p.locator('.error').innerText(), /not the admin token/);
    await p.fill('#token', 'test-admin-token-0123456789');
    await p.click('button:has-text("Sign in with the admin token")');
    await p.waitForURL(consoleUrl);
    await p.goto(`${consoleUrl}participants/globex`);
    await p.click('button:has-text("Revoke all sessions")');
    const audit: any = await (await fetch(`${fed.concord.adminUrl}/admin/v1/audit?limit=5`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } })).json();
    assert.equal(audit.entries[0].action, 'participant.revoke_sessions');
    assert.equal(audit.entries[0].actor, 'admin-token');
    await other.close();
  });

  it('no page broke its Content-Security-Policy', () => {
    assert.deepEqual(cspViolations, []);
    assert.ok(checkedPages.size >= 12, [...checkedPages].join(', '));
  });
});
