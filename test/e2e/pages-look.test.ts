import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { PagesSchema } from '../../src/config/index.ts';
import { securityHeaders } from '../../src/http/security-headers.ts';
import { AA_TEXT_CONTRAST, contrastRatio, ERROR_PAGES, inlineScript, loadPages, renderPage, showError, type ErrorPage } from '../../src/pages/index.ts';
import { authorizationRequest, RP, startFederation, type Federation } from '../support/federation.ts';

/**
 * Every page Concord shows, in Chromium, in light and dark mode, on a desktop and on a 320 px wide
 * phone: a screenshot of each (kept in E2E_SCREENSHOT_DIR or the temp folder), in which every text
 * element's darkest-or-lightest pixel must contrast with the element's background pixels (WCAG AA,
 * 4.5:1; 3:1 for large text), the computed colours of every text element must too, nothing may
 * overflow the phone's width, and axe-core must find no serious or critical violation.
 *
 * The pages come from a running Concord with two partner IdPs (login, its error, consent, logout,
 * signed out, sign-in finished, expired, 404 ...) and, for the error pages no flow reaches cheaply
 * (store down, rate limited, each upstream failure ...), from Concord's own showError on a
 * listener with Concord's security headers.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'concord-pages');
const skip = !existsSync(CHROMIUM) && !process.env.CI ? `no Chromium at ${CHROMIUM}` : false;
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const VIEWPORTS = { desktop: { width: 1024, height: 720 }, mobile: { width: 320, height: 640 } } as const;
const SCHEMES = ['light', 'dark'] as const;

/** A listener rendering the error pages (each with every adornment) and the two logout pages no cheap flow reaches. */
async function gallery(): Promise<{ url: string; close(): Promise<void> }> {
  const { pages } = await loadPages(PagesSchema.parse({ branding: { links: { help: 'https://example.org/help', privacy: 'https://example.org/privacy' } } }), undefined);
  const app = new Koa();
  app.use(securityHeaders({ https: false }));
  app.use(pages.middleware());
  app.use(async (ctx, next) => {
    const [, kind, name] = ctx.path.split('/');
    if (kind === 'error' && name && name in ERROR_PAGES) {
      return showError(ctx, name as ErrorPage, {
        args: { domain: 'nowhere.example' },
        back: { action: '/abort', service: 'Test RP' },
        retry: '/retry',
        participant: { name: 'Acme Corporation' },
        ...(name === 'request_invalid' ? { detail: 'invalid_request: the redirect_uri is not registered for this client' } : {}),
      });
    }
    if (kind === 'logged-out-upstream-unavailable') {
      ctx.body = renderPage(ctx, 'logged-out-upstream-unavailable', 'loggedOut.title', { participant: 'Acme Corporation', continueUrl: '/next' });
      return;
    }
    if (kind === 'logout-continue') {
      // The script would submit the form at once; the page is shown as it looks before (and without JavaScript).
      inlineScript(ctx, '/* no-op */');
      ctx.body = renderPage(ctx, 'logout-continue', 'logoutContinue.title', { action: '/next' });
      return;
    }
    return next();
  });
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface TextBox {
  text: string;
  color: number[];
  background: number[];
  large: boolean;
  box: { x: number; y: number; width: number; height: number };
}

/**
 * Every element with its own visible text: its colour, the first opaque background behind it, its
 * box; and how far the page overflows the screen's width, its language, and the box around all content.
 */
function readPage(page: Page): Promise<{ boxes: TextBox[]; overflow: number; lang: string; content: { x: number; y: number; width: number; height: number } }> {
  // Runs in the page (a string: this project's TypeScript has no DOM types).
  return page.evaluate(`(() => {
    const rgb = (value) => (value.match(/[\\d.]+/g) ?? []).map(Number);
    const boxes = [];
    for (const element of document.body.querySelectorAll('*')) {
      const own = Array.from(element.childNodes).some((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim() !== '');
      if (!own) continue;
      const style = getComputedStyle(element);
      const rect = element.getBoundingClientRect();
      if (rect.width === 0 || rect.height === 0 || style.visibility === 'hidden') continue;
      let background = [];
      for (let node = element; node; node = node.parentElement) {
        const value = rgb(getComputedStyle(node).backgroundColor);
        if (value.length === 3 || (value.length === 4 && value[3] > 0.99)) {
          background = value.slice(0, 3);
          break;
        }
      }
      const size = parseFloat(style.fontSize);
      const bold = Number(style.fontWeight) >= 700;
      boxes.push({
        text: element.textContent.trim().slice(0, 60),
        color: rgb(style.color).slice(0, 3),
        background,
        large: size >= 24 || (bold && size >= 18.66),
        box: { x: rect.x + window.scrollX, y: rect.y + window.scrollY, width: rect.width, height: rect.height },
      });
    }
    const parts = Array.from(document.body.children).map((child) => child.getBoundingClientRect());
    const left = Math.max(0, Math.min(...parts.map((r) => r.left)) - 4);
    const top = Math.max(0, Math.min(...parts.map((r) => r.top)) - 4 + window.scrollY);
    const right = Math.min(document.documentElement.scrollWidth, Math.max(...parts.map((r) => r.right)) + 4);
    const bottom = Math.max(...parts.map((r) => r.bottom)) + 4 + window.scrollY;
    return {
      boxes,
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      lang: document.documentElement.lang,
      content: { x: Math.floor(left), y: Math.floor(top), width: Math.ceil(right - left), height: Math.ceil(bottom - top) },
    };
  })()`);
}

/**
 * In the screenshot, the text's most contrasting pixel against the box's most common colour (its
 * background): what a person sees, whatever the stylesheet meant.
 */
function pixelContrast(png: PNG, box: TextBox['box']): number {
  const x0 = Math.max(0, Math.floor(box.x));
  const y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(png.width, Math.ceil(box.x + box.width));
  const y1 = Math.min(png.height, Math.ceil(box.y + box.height));
  const counts = new Map<number, number>();
  const pixel = (x: number, y: number) => {
    const i = (y * png.width + x) * 4;
    return [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
  };
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
    const [r, g, b] = pixel(x, y);
    const key = (r! << 16) | (g! << 8) | b!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  const background = [(top >> 16) & 255, (top >> 8) & 255, top & 255];
  let best = 1;
  for (const key of counts.keys()) best = Math.max(best, contrastRatio([(key >> 16) & 255, (key >> 8) & 255, key & 255], background));
  return best;
}

describe('every page in Chromium: light and dark, desktop and 320 px, contrast and axe-core', { skip }, () => {
  let fed: Federation;
  let shown: { url: string; close(): Promise<void> };
  let browser: Browser;
  let axeSource: string;
  /** name -> how to reach the page in a fresh context. */
  const pages = new Map<string, (page: Page) => Promise<void>>();
  /** The pages reached through a sign-in of their own (a browser context each). */
  const flows = new Set(['login', 'login-invalid-email', 'login-unknown-domain', 'participant-disabled', 'consent', 'logout-and-signed-out', 'finished']);

  before(async () => {
    fed = await startFederation({
      clients: [{ ...RP, skip_consent: false, client_uri: 'http://127.0.0.1:9999/' }],
      globex: { enabled: false },
    });
    shown = await gallery();
    axeSource = await readFile(AXE, 'utf8');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const concord = fed.concord.issuer;
    const startLogin = async (page: Page, params: Record<string, string> = {}) => {
      await page.goto((await authorizationRequest(fed.rp, params)).url.href);
    };
    const signIn = async (page: Page) => {
      await startLogin(page);
      await page.fill('#email', 'alice@acme.example');
      await page.click('button:has-text("Continue")');
      await page.waitForURL((u) => u.origin === fed.acme.issuer);
      await page.fill('#password', 'demo');
      await page.click('button:has-text("Sign in")');
      await page.waitForURL((u) => u.origin === concord && u.pathname.startsWith('/interaction/'));
    };
    pages.set('login', (page) => startLogin(page));
    pages.set('login-invalid-email', async (page) => {
      await startLogin(page);
      await page.fill('#email', 'not-an-address');
      await page.click('button:has-text("Continue")');
      await page.waitForSelector('#email-error');
    });
    pages.set('login-unknown-domain', async (page) => {
      await startLogin(page);
      await page.fill('#email', 'bob@nowhere.example');
      await page.click('button:has-text("Continue")');
      await page.waitForSelector('h1:has-text("We don’t know your organisation")');
    });
    pages.set('participant-disabled', (page) => startLogin(page, { idp_hint: 'globex' }));
    pages.set('consent', async (page) => {
      await signIn(page);
      await page.waitForSelector('button:has-text("Allow")');
    });
    pages.set('logout-and-signed-out', async (page) => {
      await signIn(page);
      await page.click('button:has-text("Allow")');
      await page.waitForURL((u) => u.origin === 'http://127.0.0.1:9999');
      await page.goto(`${concord}/session/end?client_id=${RP.client_id}`);
      await page.waitForSelector('button:has-text("Yes, sign me out")');
    });
    pages.set('finished', async (page) => {
      await startLogin(page);
      const url = page.url();
      await page.click('button:has-text("Cancel and return")');
      await page.waitForURL((u) => u.origin === 'http://127.0.0.1:9999');
      await page.goto(url);
      await page.waitForSelector('h1:has-text("This sign-in is finished")');
    });
    pages.set('session-expired', async (page) => void (await page.goto(`${concord}/interaction/no-such-sign-in`)));
    pages.set('not-found', async (page) => void (await page.goto(`${concord}/no/such/page`)));
    pages.set('request-invalid', async (page) => void (await page.goto(`${concord}/auth?client_id=nobody&response_type=code&scope=openid`)));
    for (const name of Object.keys(ERROR_PAGES)) pages.set(`error-${name}`, async (page) => void (await page.goto(`${shown.url}/error/${name}`)));
    pages.set('logged-out-upstream-unavailable', async (page) => void (await page.goto(`${shown.url}/logged-out-upstream-unavailable`)));
    pages.set('logout-continue', async (page) => void (await page.goto(`${shown.url}/logout-continue`)));
  });
  after(async () => {
    await browser?.close();
    await shown?.close();
    await fed?.close();
  });

  /** Screenshots and checks the page now shown; returns the problems found. */
  async function check(page: Page, label: string, runAxe: boolean): Promise<string[]> {
    const problems: string[] = [];
    const t0 = performance.now();
    const lap = (what: string) => process.env.PAGES_LOOK_TIMING && console.log(label, what, Math.round(performance.now() - t0));
    const { boxes, overflow, lang, content } = await readPage(page);
    // The content only (the card, brand and footer): the empty page around it has no text to check.
    const shot = await page.screenshot({ fullPage: true, clip: content, animations: 'disabled', caret: 'hide', path: path.join(SHOTS, `${label}.png`) });
    lap('shot');
    const png = PNG.sync.read(shot);
    for (const { box, ...text } of boxes) {
      const box2 = { ...box, x: box.x - content.x, y: box.y - content.y };
      const minimum = text.large ? 3 : AA_TEXT_CONTRAST;
      const styled = contrastRatio(text.color, text.background);
      if (styled < minimum) problems.push(`${label}: "${text.text}" computed contrast ${styled.toFixed(2)}`);
      const seen = pixelContrast(png, box2);
      if (seen < minimum) problems.push(`${label}: "${text.text}" contrast in the screenshot ${seen.toFixed(2)}`);
    }
    lap('contrast');
    if (overflow > 0) problems.push(`${label}: ${overflow}px wider than the screen`);
    if (!lang) problems.push(`${label}: no <html lang>`);
    if (runAxe) {
      await page.evaluate(axeSource);
      const violations = await page.evaluate<string[]>(`axe.run(document, { resultTypes: ['violations'] }).then((result) => result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => v.id + ' (' + v.impact + ') at ' + JSON.stringify(v.nodes.map((n) => n.target))))`);
      problems.push(...violations.map((v) => `${label}: axe ${v}`));
      lap('axe');
    }
    return problems;
  }

  it('each page reads well in both schemes and both sizes, and axe-core finds nothing serious', { timeout: 240_000 }, async () => {
    await mkdir(SHOTS, { recursive: true });
    const problems: string[] = [];
    const cspViolations: string[] = [];
    let checked = 0;
    const firstGallery = [...pages.keys()].find((name) => name.startsWith('error-'));
    let shared: BrowserContext | undefined;
    let sharedPage: Page | undefined;
    const newContext = async () => {
      const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
      await context.route('http://127.0.0.1:9999/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!DOCTYPE html><title>RP</title><p>the service</p>' }));
      context.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
      });
      context.setDefaultTimeout(20_000);
      return context;
    };
    const only = process.env.PAGES_LOOK_ONLY ? new RegExp(process.env.PAGES_LOOK_ONLY) : undefined;
    for (const [name, reach] of pages) {
      if (only && !only.test(name)) continue;
      // One context per page: each flow starts with its own cookies.
      // A flow starts in a context of its own (its own cookies); pages reached by address share one.
      const fresh = flows.has(name);
      const context = fresh ? await newContext() : (shared ??= await newContext());
      const page = fresh ? await context.newPage() : (sharedPage ??= await context.newPage());
      await page.setViewportSize(VIEWPORTS.desktop);
      const t0 = performance.now();
      await reach(page);
      if (process.env.PAGES_LOOK_TIMING) console.log(name, 'reached', Math.round(performance.now() - t0));
      for (const scheme of SCHEMES) {
        for (const [size, viewport] of Object.entries(VIEWPORTS)) {
          await page.emulateMedia({ colorScheme: scheme });
          await page.setViewportSize(viewport);
          // The error pages of the gallery share one template: axe-core reads one of them (the first).
          const axe = scheme === 'light' && size === 'desktop' && (!name.startsWith('error-') || name === firstGallery);
          problems.push(...(await check(page, `${name}-${scheme}-${size}`, axe)));
          checked++;
        }
      }
      // The logout confirmation leads to the signed-out page: checked too.
      if (name === 'logout-and-signed-out') {
        await page.setViewportSize(VIEWPORTS.desktop);
        await page.click('button:has-text("Yes, sign me out")');
        // Acme's own confirmation of its logout (Concord ends the upstream session too), then Concord's page.
        await page.waitForURL((u) => u.origin === fed.acme.issuer);
        await page.click('button:has-text("Yes, sign me out")');
        await page.waitForSelector('h1:has-text("You are signed out")');
        for (const scheme of SCHEMES) {
          for (const [size, viewport] of Object.entries(VIEWPORTS)) {
            await page.emulateMedia({ colorScheme: scheme });
            await page.setViewportSize(viewport);
            problems.push(...(await check(page, `signed-out-${scheme}-${size}`, scheme === 'light' && size === 'desktop')));
            checked++;
          }
        }
      }
      if (fresh) await context.close();
    }
    await shared?.close();
    if (!only) assert.ok(checked >= 4 * 30, `only ${checked} page views`);
    assert.deepEqual(problems, []);
    assert.deepEqual(cspViolations, [], 'the pages break their own Content-Security-Policy');
  });

  it('the dark scheme is dark: the card behind the text is not white', async () => {
    const context = await browser.newContext({ viewport: VIEWPORTS.mobile, colorScheme: 'dark' });
    const page = await context.newPage();
    await page.goto(`${fed.concord.issuer}/interaction/no-such-sign-in`);
    const card = await page.evaluate<string>(`getComputedStyle(document.querySelector('main.card')).backgroundColor`);
    const text = await page.evaluate<string>(`getComputedStyle(document.querySelector('h1')).color`);
    await context.close();
    const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number).slice(0, 3);
    assert.ok(contrastRatio(rgb(card), [0, 0, 0]) < 3, `card ${card} is light`);
    assert.ok(contrastRatio(rgb(text), rgb(card)) >= AA_TEXT_CONTRAST, `${text} on ${card}`);
  });
});
