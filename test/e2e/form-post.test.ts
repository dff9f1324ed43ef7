import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { PartnerIdp } from '../../demo/partner-idp.ts';
import { authorizationRequest, exchange, RP, startFederation, startParticipantIdp, type Federation } from '../support/federation.ts';
import { freePort } from '../support/ports.ts';

/**
 * response_mode=form_post in a real browser, cross-site: the partner IdP (oidc-provider) runs on
 * `localhost`, Concord on `127.0.0.1` (two sites), so the IdP's auto-submitted form is a cross-site
 * POST that carries none of Concord's SameSite=Lax cookies. The sign-in must still finish (Concord
 * carries the answer to /interaction/{uid}/callback by a 303, a top-level GET that brings the
 * interaction cookie), and a form posted into a browser that did not begin the login must not.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;
const RP_CALLBACK = RP.redirect_uris[0]!;

/** A page holding the posted answer as a form, ready to submit (from whatever site it is loaded in). */
const formOf = (answer: { action: string; fields: Record<string, string> }) =>
  `<form method="post" action="${answer.action}">${Object.entries(answer.fields)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${v.replace(/"/g, '&quot;')}">`)
    .join('')}</form>`;

describe('form_post callbacks in Chromium, cross-site', { skip }, () => {
  let fed: Federation;
  let idp: PartnerIdp;
  let browser: Browser;

  before(async () => {
    const port = await freePort();
    const concordIssuer = `http://127.0.0.1:${port}`;
    idp = await startParticipantIdp({
      concordIssuer,
      participantId: 'crosssite',
      name: 'Crosssite',
      domain: 'crosssite.example',
      users: [{ sub: 'cs-1', email: 'alice@crosssite.example' }],
      partner: { host: 'localhost' },
    });
    fed = await startFederation({
      port,
      settings: { upstream: { healthInterval: 0 } },
      participants: [
        {
          id: 'crosssite',
          displayName: 'Crosssite',
          domains: ['crosssite.example'],
          upstream: { type: 'oidc', issuer: idp.issuer, clientId: 'concord', clientSecret: 'crosssite-upstream-secret-0123456789', allowInsecureHttp: true, responseMode: 'form_post' },
        },
      ],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await fed?.close();
    await idp?.close();
  });

  /**
   * A page in a browser of its own (a fresh context: no cookies), and the URLs it was sent to at the
   * RP's redirect URI (nothing listens there: the request is recorded, its failure does not matter).
   */
  async function newPage(): Promise<{ page: Page; atRp: URL[]; reachRp: () => Promise<URL> }> {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20_000);
    const atRp: URL[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(RP_CALLBACK)) atRp.push(new URL(request.url()));
    });
    const reachRp = async () => new URL((await page.waitForRequest((request) => request.url().startsWith(RP_CALLBACK))).url());
    return { page, atRp, reachRp };
  }

  /** Signs in at the IdP and stops before its form_post page submits (returns the page and the form). */
  async function toPostedAnswer(page: Page, url: URL) {
    await page.goto(url.href);
    await page.waitForURL((u) => u.hostname === 'localhost');
    await page.fill('#password', 'demo');
    // Hold the IdP's form_post answer: read it instead of letting it submit.
    let posted: { action: string; fields: Record<string, string> } | undefined;
    await page.route(`${fed.concord.issuer}/broker/crosssite/callback`, async (route) => {
      const request = route.request();
      posted = { action: request.url(), fields: Object.fromEntries(new URLSearchParams(request.postData() ?? '')) };
      await route.abort();
    });
    // Listen before clicking: the held request can fail while the click still waits for its navigation.
    await Promise.all([page.waitForEvent('requestfailed'), page.click('button:has-text("Sign in")')]);
    assert.ok(posted, 'the IdP posted its answer to Concord');
    return posted;
  }

  it('signs in: the IdP’s cross-site POST is carried to the interaction, whose cookie then comes', async () => {
    const { page, reachRp } = await newPage();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@crosssite.example' });
    const posts: string[] = [];
    const asked: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.method() === 'POST' && url.origin === fed.concord.issuer) posts.push(url.pathname);
      if (url.hostname === 'localhost' && url.pathname === '/auth') asked.push(url);
    });
    await page.goto(auth.url.href);
    await page.waitForURL((u) => u.hostname === 'localhost');
    assert.equal(asked[0]?.searchParams.get('response_mode'), 'form_post');
    await page.fill('#password', 'demo');
    const [callback] = await Promise.all([reachRp(), page.click('button:has-text("Sign in")')]);
    assert.deepEqual(posts, ['/broker/crosssite/callback'], 'the answer came as a POST from the IdP’s page');
    assert.equal(callback.searchParams.get('state'), auth.state);
    const tokens = await exchange(fed.rp, callback, auth);
    assert.equal(tokens.claims()!.sub, 'crosssite:cs-1');
    await page.context().close();
  });

  it('a posted answer submitted in another browser gets no sign-in there, and the login that began it still finishes', async () => {
    const owner = await newPage();
    const auth = await authorizationRequest(fed.rp, { login_hint: 'alice@crosssite.example' });
    const answer = await toPostedAnswer(owner.page, auth.url);

    // Another browser (another context: no cookies of the first) is made to post it.
    const other = await newPage();
    await other.page.setContent(formOf(answer));
    await other.page.locator('form').evaluate((form) => (form as unknown as { submit(): void }).submit());
    await other.page.waitForURL((u) => u.origin === fed.concord.issuer && u.pathname.endsWith('/callback'));
    assert.match(await other.page.locator('h1').innerText(), /This sign-in has expired/);
    assert.deepEqual(other.atRp, [], 'the other browser reached the service');

    // The owner's own browser submits it: signed in.
    await owner.page.unroute(`${fed.concord.issuer}/broker/crosssite/callback`);
    await owner.page.setContent(formOf(answer));
    const [callback] = await Promise.all([owner.reachRp(), owner.page.locator('form').evaluate((form) => (form as unknown as { submit(): void }).submit())]);
    const tokens = await exchange(fed.rp, callback, auth);
    assert.equal(tokens.claims()!.idp, 'crosssite');
  });
});
