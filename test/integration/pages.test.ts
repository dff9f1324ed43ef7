import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PagesSchema } from '../../src/config/index.ts';
import { catalogueIssues, loadPages, placeholdersOf, shippedCatalogue, SHIPPED_LOCALES, REFERENCE_LOCALE } from '../../src/pages/index.ts';
import { authorizationRequest, RP, signedIn, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm, type BrowserResponse } from '../support/http-client.ts';
import { atRp } from './broker-helpers.ts';

/**
 * Concord's pages as a person meets them: in their language (ui_locales, then Accept-Language, then
 * pages.defaultLocale), in the deployment's branding (config and the configuration directory's
 * logos/ and messages/), and never a dead end (a way back to the service, to try again, or on).
 */

const EN = shippedCatalogue(REFERENCE_LOCALE);
const SVG = (color: string) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="${color}"/></svg>`;
const CLIENT_HOME = 'http://127.0.0.1:9999/home';

describe('message catalogues', () => {
  for (const locale of SHIPPED_LOCALES) {
    it(`${locale} has exactly the English keys, each with the English placeholders, all valid ICU`, () => {
      assert.deepEqual(catalogueIssues(locale, shippedCatalogue(locale), EN, `${locale}.json`), []);
      assert.deepEqual(Object.keys(shippedCatalogue(locale)).sort(), Object.keys(EN).sort());
    });
  }

  it('the check finds a missing key, an extra key, a placeholder mismatch and bad syntax', () => {
    const broken: Record<string, string> = { ...shippedCatalogue('de') };
    delete broken['login.submit'];
    broken['login.nonsense'] = 'x';
    broken['login.heading'] = 'Bei {dienst} anmelden';
    broken['login.intro'] = 'kaputt {';
    const issues = catalogueIssues('de', broken, EN, 'de.json');
    const byField = new Map(issues.map((i) => [i.field, i.message]));
    assert.equal(byField.get('login.submit'), 'missing');
    assert.match(byField.get('login.nonsense')!, /not a message key/);
    assert.match(byField.get('login.heading')!, /missing \{client\}, unknown \{dienst\}/);
    assert.match(byField.get('login.intro')!, /not ICU MessageFormat/);
    assert.equal(issues.length, 4);
  });

  it('every message says something in every language (no English left in a translation of a sentence)', () => {
    for (const locale of SHIPPED_LOCALES.filter((l) => l !== REFERENCE_LOCALE)) {
      const catalogue = shippedCatalogue(locale);
      const same = Object.keys(EN).filter((key) => catalogue[key] === EN[key] && EN[key]!.split(' ').length > 2 && placeholdersOf(EN[key]!, 'en').size < 2);
      assert.deepEqual(same, [], `${locale}: untranslated`);
    }
  });

  it('a branding colour that does not reach WCAG AA contrast is refused at load', () => {
    const light = PagesSchema.safeParse({ branding: { colors: { primary: '#7aa7ff' } } });
    assert.equal(light.success, false);
    assert.match(light.error!.issues[0]!.message, /below WCAG AA/);
    const dark = PagesSchema.safeParse({ branding: { colors: { primaryDark: '#2557d6' } } });
    assert.equal(dark.success, false);
    assert.ok(PagesSchema.safeParse({ branding: { colors: { primary: '#0b5d1e', primaryDark: '#9ee6a8' } } }).success);
  });
});

describe('a deployment’s messages and logos', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-pages-'));
    await mkdir(path.join(dir, 'messages'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('lists every problem of every file at once; a good override and a complete new language load', async () => {
    await writeFile(path.join(dir, 'messages', 'de.yaml'), 'login:\n  submit: "Los geht’s"\n');
    await writeFile(path.join(dir, 'messages', 'nl.json'), JSON.stringify({ ...EN, 'login.heading': 'Inloggen bij {client}' }));
    await writeFile(path.join(dir, 'messages', 'fr.yaml'), 'login.heading: "Connexion à {service}"\nlogin.extra: "x"\n');
    await writeFile(path.join(dir, 'messages', 'it.yaml'), 'login.heading: "Accedi a {client}"\n');
    await writeFile(path.join(dir, 'messages', 'Not A Tag.yaml'), 'a: b\n');
    const { pages, issues } = await loadPages(PagesSchema.parse({ defaultLocale: 'pt' }), dir);
    const text = issues.map((i) => `${path.basename(i.source)} ${i.field}: ${i.message}`);
    assert.ok(text.some((t) => /^fr\.yaml login\.heading: placeholders differ/.test(t)), text.join('\n'));
    assert.ok(text.some((t) => /^fr\.yaml login\.extra: not a message key/.test(t)));
    assert.ok(text.some((t) => /^it\.yaml login\.submit: missing/.test(t)), 'a new language must be complete');
    assert.ok(text.some((t) => /^Not A Tag\.yaml : the file name must be a language tag/.test(t)));
    assert.ok(text.some((t) => /^concord\.yaml pages\.defaultLocale: pt: no catalogue/.test(t)), text.join('\n'));
    assert.ok(!text.some((t) => /^(de\.yaml|nl\.json)/.test(t)), text.join('\n'));
    assert.equal(pages.messages.format('de', 'login.submit'), 'Los geht’s');
    assert.equal(pages.messages.format('de', 'login.title'), 'Anmelden', 'the rest of German stays');
    assert.equal(pages.messages.format('nl', 'login.heading', { client: 'X' }), 'Inloggen bij X');
    assert.equal(pages.messages.format('fr', 'login.heading', { client: 'X' }), 'Se connecter à X', 'a bad override is not used');
  });
});

describe('pages of a running Concord', () => {
  let fed: Federation;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'concord-pages-'));
    await mkdir(path.join(dir, 'logos'));
    await mkdir(path.join(dir, 'messages'));
    await writeFile(path.join(dir, 'logos', 'brand.svg'), SVG('#0b5d1e'));
    await writeFile(path.join(dir, 'logos', 'rp.svg'), SVG('#333333'));
    await writeFile(path.join(dir, 'logos', 'globex.svg'), SVG('#aa0000'));
    await writeFile(path.join(dir, 'messages', 'de.yaml'), 'login.submit: "Los geht’s"\n');
    await writeFile(path.join(dir, 'messages', 'nl.json'), JSON.stringify({ ...EN, 'login.heading': 'Inloggen bij {client}' }));
    fed = await startFederation({
      dir,
      settings: {
        pages: {
          branding: {
            name: 'Example Sign-in',
            logo: 'brand.svg',
            colors: { primary: '#0b5d1e', primaryDark: '#9ee6a8' },
            links: { privacy: 'https://example.org/privacy', help: 'https://example.org/help' },
          },
        },
      },
      clients: [{ ...RP, logo: 'rp.svg', client_uri: CLIENT_HOME }],
      globex: { logo: 'globex.svg', enabled: false },
    });
  });
  after(async () => {
    await fed?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function loginPage(params: Record<string, string> = {}, headers: Record<string, string> = {}) {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, params);
    const page = await browser.get(auth.url, { headers });
    assert.equal(page.status, 200, page.body.slice(0, 300));
    return { browser, auth, page };
  }
  const lang = (page: BrowserResponse) => /<html lang="([^"]+)">/.exec(page.body)?.[1];
  const h1 = (page: BrowserResponse) => /<h1 id="page-title">([^<]*)<\/h1>/.exec(page.body)?.[1];

  it('the login page speaks the language the service asks for (ui_locales), each shipped one and one the deployment added', async () => {
    const expected: Record<string, string> = { en: 'Sign in to Test RP', de: 'Bei Test RP anmelden', fr: 'Se connecter à Test RP', es: 'Iniciar sesión en Test RP', nl: 'Inloggen bij Test RP' };
    for (const [locale, heading] of Object.entries(expected)) {
      const { page } = await loginPage({ ui_locales: `xx ${locale}` }, { 'accept-language': 'es' });
      assert.equal(lang(page), locale);
      assert.equal(page.headers.get('content-language'), locale);
      assert.equal(h1(page), heading);
    }
    const { page } = await loginPage({ ui_locales: 'de-AT' });
    assert.match(page.body, />Los geht’s</, 'the deployment’s override of one German string');
    assert.match(page.body, /Geschäftliche E-Mail-Adresse/, 'and the rest of German');
  });

  it('without ui_locales, Accept-Language decides (by q-value, a region falling back to its language), else the default', async () => {
    const cases: Array<[string, string]> = [
      ['fr-CA,fr;q=0.9,en;q=0.5', 'fr'],
      ['da, es;q=0.8, de;q=0.9', 'de'],
      ['ja', 'en'],
      ['', 'en'],
    ];
    for (const [header, locale] of cases) {
      const { page } = await loginPage({}, header ? { 'accept-language': header } : {});
      assert.equal(lang(page), locale, header);
    }
  });

  it('an error page in the sign-in’s language, with the way back to the service that returns access_denied to it', async () => {
    const { browser, page } = await loginPage({ ui_locales: 'fr' });
    const form = parseForm(page.body, '/login');
    const refused = await browser.post(new URL(form.action, page.url), { ...form.fields, email: 'bob@nowhere.example' });
    assert.equal(refused.status, 400);
    assert.equal(lang(refused), 'fr');
    assert.equal(h1(refused), 'Nous ne connaissons pas votre organisation');
    assert.match(refused.body, /adresses en nowhere\.example/);
    assert.match(refused.body, />Réessayer</);
    const back = parseForm(refused.body, '/abort');
    assert.match(refused.body, /Revenir à Test RP/);
    const toRp = await browser.post(new URL(back.action, refused.url), back.fields, { stopAt: atRp });
    assert.equal(toRp.stoppedAt?.searchParams.get('error'), 'access_denied');
  });

  it('the login page’s cancel returns access_denied to the service', async () => {
    const { browser, page } = await loginPage();
    assert.match(page.body, /Cancel and return to Test RP/);
    const cancel = parseForm(page.body, '/abort');
    const toRp = await browser.post(new URL(cancel.action, page.url), cancel.fields, { stopAt: atRp });
    assert.equal(toRp.stoppedAt?.searchParams.get('error'), 'access_denied');
    // Back to the login page afterwards: finished, on to the service, not "expired".
    const again = await browser.get(page.url);
    assert.equal(again.status, 200);
    assert.equal(h1(again), 'This sign-in is finished');
    assert.match(again.body, /was cancelled/);
  });

  it('a wrong address is marked aria-invalid, described by the error and announced', async () => {
    const { browser, page } = await loginPage();
    const form = parseForm(page.body, '/login');
    const again = await browser.post(new URL(form.action, page.url), { ...form.fields, email: 'not-an-address' });
    assert.equal(again.status, 400);
    assert.match(again.body, /<input id="email"[^>]* aria-invalid="true" aria-describedby="email-error email-hint">/);
    assert.match(again.body, /<p id="email-error" class="error" role="alert">Enter a full work email address/);
  });

  it('Back after signing in leads to “this sign-in is finished” and on to the service, never “expired”', async () => {
    const { browser } = await signedIn(fed, 'alice@acme.example');
    const loginUrl = browser.history.find((hop) => /^\/interaction\/[^/]+$/.test(hop.url.pathname))!.url;
    const back = await browser.get(loginUrl);
    assert.equal(back.status, 200);
    assert.equal(h1(back), 'This sign-in is finished');
    assert.match(back.body, /You are signed in to Test RP/);
    assert.match(back.body, new RegExp(`<a class="button" href="${CLIENT_HOME}">Continue to Test RP</a>`));
    assert.doesNotMatch(back.body, /expired/i);
  });

  it('the logout pages speak the logout request’s ui_locales, else the browser’s language', async () => {
    const { browser } = await signedIn(fed, 'alice@acme.example');
    const asked = await browser.get(`${fed.concord.issuer}/session/end?client_id=${RP.client_id}&ui_locales=fr`);
    assert.equal(asked.status, 200);
    assert.equal(lang(asked), 'fr');
    assert.equal(h1(asked), 'Se déconnecter ?');
    assert.match(asked.body, /Voulez-vous vous déconnecter de Test RP/);
    assert.match(asked.body, /avec votre compte Acme/);
    const browsers = await browser.get(`${fed.concord.issuer}/session/end?client_id=${RP.client_id}`, { headers: { 'accept-language': 'es-MX' } });
    assert.equal(h1(browsers), '¿Cerrar sesión?');
  });

  it('a sign-in’s trail (its service) is written with its interaction, before its page is shown', async () => {
    const auth = await authorizationRequest(fed.rp);
    const toPage = await new Browser().get(auth.url, { stopAt: (u) => u.pathname.startsWith('/interaction/') });
    assert.ok(toPage.stoppedAt, 'Concord sent the browser to the sign-in page');
    const uid = toPage.stoppedAt.pathname.split('/')[2]!;
    assert.deepEqual(await fed.concord.concord.store.getTemp(`interaction-trail:${uid}`), { clientId: RP.client_id });
  });

  it('an expired sign-in of a known service leads back to the service’s home page', async () => {
    const { page } = await loginPage();
    // A fresh browser (no interaction cookie) on a live sign-in's address: expired here, with the way back.
    const other = await new Browser().get(page.url);
    assert.equal(other.status, 400);
    assert.equal(h1(other), 'This sign-in has expired');
    assert.match(other.body, new RegExp(`<a class="button secondary" href="${CLIENT_HOME}">Back to Test RP</a>`));
  });

  it('every error page says what to do and offers a way on (back, try again or help)', async () => {
    const pages: Array<[string, BrowserResponse]> = [
      ['broker_not_found', await new Browser().get(`${fed.concord.issuer}/broker/nobody/callback`)],
      ['session_expired', await new Browser().get(`${fed.concord.issuer}/interaction/unknown-uid`)],
      ['participant_disabled', await new Browser().get((await authorizationRequest(fed.rp, { idp_hint: 'globex' })).url)],
      ['not_found', await new Browser().get(`${fed.concord.issuer}/no/such/page`)],
      ['request_invalid', await new Browser().get(`${fed.concord.issuer}/auth?client_id=nobody&response_type=code&scope=openid`)],
    ];
    for (const [name, page] of pages) {
      assert.ok(page.status >= 400, `${name}: ${page.status}`);
      const actions = /<div class="actions">([\s\S]*?)<\/div>/.exec(page.body)?.[1] ?? '';
      assert.match(actions, /<a |<form /, `${name} offers no way on: ${page.body.slice(0, 800)}`);
      assert.match(page.body, /Reference: <code>/, name);
    }
  });

  it('a page about an organisation shows its name and logo', async () => {
    const page = await new Browser().get((await authorizationRequest(fed.rp, { idp_hint: 'globex' })).url);
    assert.equal(page.status, 403);
    assert.match(page.body, /<p class="participant"><img class="logo" src="\/assets\/logos\/globex\.svg" alt=""><span>Organisation: Globex<\/span><\/p>/);
    assert.match(page.body, /Back to Test RP/);
  });

  it('branding: name, logo, colours and footer links from the configuration, client logo, nothing from another origin', async () => {
    const { page } = await loginPage();
    assert.match(page.body, /<title>Sign in · Example Sign-in<\/title>/);
    assert.match(page.body, /<img class="brand-logo" src="\/assets\/logos\/brand\.svg" alt=""><span class="brand-name">Example Sign-in<\/span>/);
    assert.match(page.body, /<img class="logo" src="\/assets\/logos\/rp\.svg" alt="">/);
    assert.match(page.body, /<footer><a href="https:\/\/example\.org\/privacy">Privacy<\/a><a href="https:\/\/example\.org\/help">Help<\/a><\/footer>/);
    // Everything the page loads comes from Concord: src= and <link href=> are paths.
    const loads = [...page.body.matchAll(/<(?:img|script)[^>]* src="([^"]+)"|<link[^>]* href="([^"]+)"/g)].map((m) => m[1] ?? m[2]!);
    assert.ok(loads.length >= 4);
    for (const url of loads) assert.match(url, /^\/[^/]/, `loaded from elsewhere: ${url}`);
    const csp = page.headers.get('content-security-policy')!;
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.match(csp, /img-src 'self';/, 'images from Concord alone (no data: either)');
    assert.match(csp, /style-src 'self'/);

    const css = await fetch(`${fed.concord.issuer}/assets/concord.css`);
    assert.match(await css.text(), /--accent: #0b5d1e; --accent-dark: #9ee6a8;/);
    const logo = await fetch(`${fed.concord.issuer}/assets/logos/brand.svg`);
    assert.equal(logo.status, 200);
    assert.equal(logo.headers.get('content-type'), 'image/svg+xml');
    assert.equal(await logo.text(), await readFile(path.join(dir, 'logos', 'brand.svg'), 'utf8'));
    const cached = await fetch(`${fed.concord.issuer}/assets/logos/brand.svg`, { headers: { 'if-none-match': logo.headers.get('etag')! } });
    assert.equal(cached.status, 304);
    assert.equal((await fetch(`${fed.concord.issuer}/assets/logos/..%2Fmessages%2Fde.yaml`)).status, 404);
  });

  it('unknown paths: a branded 404 page for browsers, JSON or text for programs; a favicon', async () => {
    const html = await fetch(`${fed.concord.issuer}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', 'accept-language': 'de' } });
    assert.equal(html.status, 404);
    const body = await html.text();
    assert.match(body, /<h1 id="page-title">Diese Seite gibt es nicht<\/h1>/);
    assert.match(body, /Example Sign-in/);
    const json = await fetch(`${fed.concord.issuer}/nope`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    assert.deepEqual(await json.json(), { error: 'not_found', error_description: 'no such endpoint' });
    const any = await fetch(`${fed.concord.issuer}/nope`, { headers: { accept: '*/*' } });
    assert.match(any.headers.get('content-type')!, /json/);
    const text = await fetch(`${fed.concord.issuer}/nope`, { headers: { accept: 'text/plain' } });
    assert.match(text.headers.get('content-type')!, /text\/plain/);
    assert.equal(text.status, 404);

    const ico = await fetch(`${fed.concord.issuer}/favicon.ico`);
    assert.equal(ico.status, 200);
    assert.equal(ico.headers.get('content-type'), 'image/x-icon');
    const bytes = Buffer.from(await ico.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 1, 0], 'an ICO file');
    const svg = await fetch(`${fed.concord.issuer}/assets/favicon.svg`);
    assert.match(await svg.text(), /^<svg /);
  });
});
