import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDemo, type Demo } from '../../demo/run.ts';
import { freePorts } from '../support/ports.ts';

/**
 * The demo in a real browser: Chromium (Debian's package, driven by playwright-core) signs alice in
 * at the demo service through Concord and Acme's login page, reads the claims the service shows,
 * and signs out again. The demo runs in this process on free ports (DEMO_BASE_PORT's scheme).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOT_DIR ?? os.tmpdir();
// Without a browser on a developer's machine the test is skipped; in CI (CI=true) it must run.
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

describe('demo in Chromium', { skip }, () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;

  before(async () => {
    demo = await startDemo({ basePort: await freePorts(6), logLevel: 'warn' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(20_000);
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
  });

  const origin = (url: string) => new URL(url).origin;
  const onOrigin = (url: string) => (u: URL) => u.origin === origin(url);
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `concord-e2e-${name}.png`), fullPage: true });

  it('signs alice in through Acme and shows the verified, mapped claims', async () => {
    await page.goto(demo.serviceUrl);
    await page.click('#sign-in');

    // Concord's login page: home-realm discovery by email.
    await page.waitForURL((u) => u.origin === origin(demo.concordUrl) && u.pathname.startsWith('/interaction/'));
    assert.match(await page.locator('h1').innerText(), /Sign in to Demo Service/);
    await page.fill('#email', 'alice@acme.example');
    await shot('1-concord-login');
    await page.click('button[type=submit]');

    // Acme's own login page, the email carried over as login_hint.
    await page.waitForURL(onOrigin(demo.acme.issuer));
    assert.equal(await page.inputValue('#username'), 'alice@acme.example');
    await page.fill('#password', 'demo');
    await shot('2-acme-login');
    await page.click('button:has-text("Sign in")');

    // Back at the service, signed in.
    await page.waitForURL((u) => u.origin === origin(demo.serviceUrl) && u.pathname === '/');
    assert.equal(await page.locator('#idp').innerText(), 'acme');
    assert.match(await page.locator('#sub').innerText(), /^acme:5f0c1a52-8d1e-4b7a-9f0e-acme00000001$/);
    const id = JSON.parse(await page.locator('#id-claims').innerText()) as Record<string, unknown>;
    assert.equal(id.iss, demo.concordUrl);
    assert.equal(id.email, 'alice@acme.example');
    assert.equal(id.preferred_username, 'alice');
    assert.deepEqual(id.groups, ['engineering', 'staff'], 'Acme’s groups through the lookup of config/participants/acme.yaml');
    assert.deepEqual(id.roles, ['user'], 'Acme’s app role Concord.User mapped to user');
    assert.deepEqual(id.amr, ['pwd']);
    assert.equal(id.upn, undefined);

    const access = JSON.parse(await page.locator('#access-claims').innerText()) as Record<string, unknown>;
    assert.equal(access.sub, id.sub);
    assert.equal(access.aud, `${demo.serviceUrl}/api`);
    assert.deepEqual(access.groups, ['engineering', 'staff']);
    assert.deepEqual(access.roles, ['user']);

    // The service's API accepted the token through concordKoa.
    assert.equal(await page.locator('#api-status').innerText(), 'HTTP 200');
    const api = JSON.parse(await page.locator('#api-result').innerText()) as Record<string, unknown>;
    assert.equal(api.sub, id.sub);
    assert.equal(api.idp, 'acme');
    await shot('3-signed-in');
  });

  it('signs out of the service, Concord and Acme with one confirmation, and says so', async () => {
    await page.click('#sign-out');
    // Concord asks nothing: the service's id_token_hint names this very session, and its page submits itself.
    // Acme asks, once: its session ends as well.
    await page.waitForURL((u) => u.origin === origin(demo.acme.issuer) && u.pathname === '/session/end');
    await page.click('button:has-text("Yes, sign me out")');
    await page.waitForURL((u) => u.origin === origin(demo.serviceUrl) && u.pathname === '/signed-out');
    assert.equal(await page.locator('#signed-out').innerText(), 'You are signed out');
    await shot('4-signed-out');

    // Signing in again asks for the email and, at Acme, for the password: no session was left behind.
    await page.click('#sign-in');
    await page.waitForURL((u) => u.origin === origin(demo.concordUrl) && u.pathname.startsWith('/interaction/'));
    await page.fill('#email', 'alice@acme.example');
    await page.click('button[type=submit]');
    await page.waitForURL(onOrigin(demo.acme.issuer));
    assert.equal(await page.locator('#password').count(), 1);
  });

  it('signing out at Acme itself ends the service’s session too (Acme tells Concord, Concord tells the service)', async () => {
    // Finish the sign-in the previous test began.
    await page.fill('#password', 'demo');
    await page.click('button:has-text("Sign in")');
    await page.waitForURL((u) => u.origin === origin(demo.serviceUrl) && u.pathname === '/');
    assert.equal(await page.locator('#idp').innerText(), 'acme');

    // Alice signs out at Acme directly, not at the service.
    await page.goto(`${demo.acme.issuer}/session/end`);
    await page.click('button:has-text("Yes, sign me out")');
    await page.waitForSelector('text=You are signed out of Acme');

    // The service ended its own session on Concord's logout token: its page says so.
    const deadline = Date.now() + 10_000;
    for (;;) {
      await page.goto(demo.serviceUrl);
      if ((await page.locator('#signed-out').count()) > 0) break;
      assert.ok(Date.now() < deadline, 'the service still shows alice signed in');
      await page.waitForTimeout(100);
    }
    assert.match(await page.locator('main').innerText(), /Your session ended at Concord/);
    await shot('5-ended-by-partner');
  });

  it('signs dave in through Initech, the SAML partner, with its eduPerson attributes mapped', async () => {
    await page.goto(demo.serviceUrl);
    await page.click('#sign-in');
    await page.waitForURL((u) => u.origin === origin(demo.concordUrl) && u.pathname.startsWith('/interaction/'));
    await page.fill('#email', 'dave@initech.example');
    await page.click('button[type=submit]');

    // Initech's login page, reached with a signed AuthnRequest (HTTP-Redirect binding).
    await page.waitForURL((u) => u.origin === origin(demo.initech.url) && u.pathname === '/sso');
    await page.fill('#username', 'dave@initech.example');
    await page.fill('#password', 'demo');
    await shot('4-initech-login');
    await page.click('button:has-text("Sign in")');

    // The Response is posted to Concord's ACS, and the browser comes back to the service.
    await page.waitForURL((u) => u.origin === origin(demo.serviceUrl) && u.pathname === '/');
    assert.equal(await page.locator('#idp').innerText(), 'initech');
    assert.match(await page.locator('#sub').innerText(), /^initech:[0-9a-f]{40}$/);
    const id = JSON.parse(await page.locator('#id-claims').innerText()) as Record<string, unknown>;
    assert.equal(id.email, 'dave@initech.example');
    assert.equal(id.name, 'Dave Davis');
    assert.deepEqual(id.groups, ['research', 'staff']);
    assert.deepEqual(id.roles, ['staff', 'member']);
    assert.deepEqual(id.amr, ['pwd']);
    assert.equal(await page.locator('#api-status').innerText(), 'HTTP 200');
    await shot('5-initech-signed-in');
  });
});
