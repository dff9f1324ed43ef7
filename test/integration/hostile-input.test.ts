import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { requestContext } from '../../src/observability/index.ts';
import { MemoryStore, type Store } from '../../src/store/index.ts';
import { DEMO_PASSWORD } from '../../demo/partner-idp.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';
import { RP, startFederation, type Federation } from '../support/federation.ts';
import { Browser, parseForm } from '../support/http-client.ts';

/** A client that asks for consent, to reach the consent page. */
const CONSENT_CLIENT = { ...RP, client_id: 'rp-consent', client_name: 'Consent RP', skip_consent: false };

/** A store that records which request (by X-Request-Id) made each call, adapters included. */
function countingStore(inner: Store): { store: Store; callsBy(requestId: string): string[] } {
  const calls: Array<{ requestId: string | undefined; op: string }> = [];
  const record = (op: string) => calls.push({ requestId: requestContext.getStore()?.requestId, op });
  const wrap = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop, t) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          record(`${prefix}${String(prop)}`);
          const result = (value as (...a: unknown[]) => unknown).apply(t, args);
          return prop === 'adapter' ? wrap(result as object, `adapter(${String(args[0])}).`) : result;
        };
      },
    });
  return { store: wrap(inner, ''), callsBy: (id) => calls.filter((c) => c.requestId === id).map((c) => c.op) };
}

interface Checked {
  status: number;
  headers: Headers;
  body: string;
  storeCalls: string[];
}

describe('hostile input', () => {
  let fed: Federation;
  let counting: ReturnType<typeof countingStore>;
  let issuer: string;
  const redirectUri = RP.redirect_uris[0]!;

  before(async () => {
    counting = countingStore(new MemoryStore());
    fed = await startFederation({ store: counting.store, clients: [RP, CONSENT_CLIENT] });
    issuer = fed.concord.issuer;
  });
  after(() => fed.close());

  /** One request with its own request id; returns what the store was asked while serving it. */
  async function send(pathAndQuery: string, init: RequestInit = {}): Promise<Checked> {
    const requestId = `hostile-${randomBytes(6).toString('hex')}`;
    const response = await fetch(`${issuer}${pathAndQuery}`, {
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
      ...init,
      headers: { accept: 'text/html', 'x-request-id': requestId, ...(init.headers as Record<string, string> | undefined) },
    });
    const body = await response.text();
    return { status: response.status, headers: response.headers, body, storeCalls: counting.callsBy(requestId) };
  }

  const authQuery = (params: Record<string, string> = {}) =>
    new URLSearchParams({ client_id: RP.client_id, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256', state: 'st-1', ...params }).toString();
  const token = (body: string, headers: Record<string, string> = {}) =>
    send('/token', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`, ...headers },
    });

  function assertErrorRedirect(r: Checked, expect: { state?: string; description: RegExp }) {
    assert.equal(r.status, 303, r.body.slice(0, 300));
    const location = new URL(r.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, redirectUri);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.match(location.searchParams.get('error_description') ?? '', expect.description);
    assert.equal(location.searchParams.get('state'), expect.state ?? null);
    assert.equal(location.searchParams.get('iss'), issuer);
    assert.deepEqual(r.storeCalls, [], 'refused before any store call');
  }

  function assertErrorPage(r: Checked, status = 400) {
    assert.equal(r.status, status, r.body.slice(0, 300));
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(r.headers.get('location'), null, 'never a redirect to an unchecked URI');
    assert.match(r.body, /invalid_request/);
    assert.deepEqual(r.storeCalls, [], 'refused before any store call');
  }

  function assertJsonError(r: Checked, status = 400) {
    assert.equal(r.status, status, r.body.slice(0, 300));
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'invalid_request');
    assert.deepEqual(r.storeCalls, [], 'refused before any store call');
  }

  describe('the edge check, as the control case shows, runs before the store', () => {
    it('a well-formed authorization request does reach the store', async () => {
      const r = await send(`/auth?${authQuery()}`);
      assert.equal(r.status, 303);
      assert.match(r.headers.get('location') ?? '', /\/interaction\//);
      assert.ok(r.storeCalls.length > 0, 'the control: an interaction is saved');
    });
  });

  describe('/auth with a valid client and redirect_uri: invalid_request back to the client', () => {
    for (const [name, value] of [
      ['state', 's'.repeat(513)],
      ['nonce', 'n'.repeat(513)],
      ['login_hint', `${'x'.repeat(510)}@acme.example`],
      ['idp_hint', 'i'.repeat(513)],
      ['scope', `openid ${'s'.repeat(1024)}`],
      ['code_challenge', 'c'.repeat(129)],
    ] as const) {
      it(`${name} over its limit`, async () => {
        const r = await send(`/auth?${authQuery({ [name]: value })}`);
        assertErrorRedirect(r, { ...(name === 'state' ? {} : { state: 'st-1' }), description: new RegExp(`${name} is longer than`) });
      });
    }

    it('a repeated parameter', async () => {
      assertErrorRedirect(await send(`/auth?${authQuery()}&scope=openid+email`), { state: 'st-1', description: /scope must not be provided twice/ });
    });

    it('a control character (header injection attempt) in a parameter', async () => {
      const r = await send(`/auth?${authQuery({ login_hint: 'a@acme.example\r\nSet-Cookie: x=1' })}`);
      assertErrorRedirect(r, { state: 'st-1', description: /login_hint contains control characters/ });
      assert.equal(r.headers.get('set-cookie'), null);
    });

    it('in the response mode the client asked for (fragment)', async () => {
      const r = await send(`/auth?${authQuery({ response_mode: 'fragment', nonce: 'n'.repeat(600) })}`);
      assert.equal(r.status, 303);
      const location = new URL(r.headers.get('location')!);
      assert.equal(location.search, '');
      assert.equal(new URLSearchParams(location.hash.slice(1)).get('error'), 'invalid_request');
    });

    for (const [label, raw] of [
      ['not UTF-8', '%FF%FE'],
      ['a broken percent-escape', '%E0%A4%A'],
      ['a lone surrogate', '%ED%A0%80'],
    ] as const) {
      it(`${label} in a parameter`, async () => {
        assertErrorRedirect(await send(`/auth?${authQuery()}&nonce=${raw}`), { state: 'st-1', description: /percent-encoding/ });
      });
    }

    it('too many parameters', async () => {
      const many = Array.from({ length: 70 }, (_, i) => `p${i}=1`).join('&');
      assertErrorRedirect(await send(`/auth?${authQuery()}&${many}`), { state: 'st-1', description: /more than 64 parameters/ });
    });

    it('in a POST form too', async () => {
      const r = await send('/auth', { method: 'POST', body: authQuery({ state: 'st-2', nonce: 'n'.repeat(600) }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assertErrorRedirect(r, { state: 'st-2', description: /nonce is longer than/ });
    });
  });

  describe('/auth without a client or redirect_uri to trust: the error page', () => {
    it('client_id over 200 characters', async () => assertErrorPage(await send(`/auth?${authQuery({ client_id: 'c'.repeat(201), state: 's'.repeat(600) })}`)));
    it('client_id given twice', async () => assertErrorPage(await send(`/auth?${authQuery()}&client_id=${RP.client_id}`)));
    it('an unregistered redirect_uri', async () => assertErrorPage(await send(`/auth?${authQuery({ redirect_uri: 'https://evil.example/cb', nonce: 'n'.repeat(600) })}`)));
    it('redirect_uri given twice', async () => assertErrorPage(await send(`/auth?${authQuery()}&redirect_uri=${encodeURIComponent(redirectUri)}`)));
    it('a client_id that is not UTF-8', async () => assertErrorPage(await send(`/auth?${authQuery()}`.replace(`client_id=${RP.client_id}`, 'client_id=%FF%FE'))));
    it('a redirect_uri with a broken percent-escape', async () => assertErrorPage(await send(`/auth?${authQuery()}`.replace(/redirect_uri=[^&]+/, 'redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fc%E0%A4%A'))));
    it('raw bytes (not percent-encoded) in the query', async () => {
      // fetch would encode them; a raw socket does not.
      const { connect } = await import('node:net');
      const { port } = new URL(issuer);
      const head = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(Buffer.concat([Buffer.from('GET /auth?login_hint=caf'), Buffer.from([0xe9]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n')]));
        });
        let data = '';
        socket.on('data', (chunk) => (data += chunk.toString('latin1')));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
      // Node's HTTP parser refuses this one itself; what it lets through, the edge check refuses.
      assert.match(head, /^HTTP\/1\.1 400 /);
    });
    it('a URL over 8 KB: 414', async () => assertErrorPage(await send(`/auth?${authQuery({ claims: 'x'.repeat(8200) })}`), 414));
  });

  describe('/token: JSON invalid_request', () => {
    it('the control: a well-formed request with a made-up code reaches the store', async () => {
      const r = await token(`grant_type=authorization_code&code=${'a'.repeat(43)}&redirect_uri=${encodeURIComponent(redirectUri)}&code_verifier=${'v'.repeat(43)}`);
      assert.equal(r.status, 400);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'invalid_grant');
      assert.ok(r.storeCalls.length > 0);
    });
    it('a code over its limit', async () => assertJsonError(await token(`grant_type=authorization_code&code=${'a'.repeat(2049)}`)));
    it('a repeated grant_type', async () => assertJsonError(await token('grant_type=authorization_code&grant_type=refresh_token&refresh_token=x')));
    it('a body that is not UTF-8', async () => assertJsonError(await token('grant_type=refresh_token&refresh_token=%C3%28')));
    it('raw bytes that are not UTF-8', async () => {
      const r = await send('/token', { method: 'POST', body: Buffer.from([0x67, 0x3d, 0xff, 0xfe]), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assertJsonError(r);
    });
    it('a repeated grant_type in a form whose Content-Type is spelt otherwise, or names its charset', async () => {
      for (const type of ['Application/X-WWW-Form-Urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8']) {
        assertJsonError(await token('grant_type=client_credentials&grant_type=client_credentials', { 'content-type': type }));
      }
    });
    it('a charset other than UTF-8', async () => assertJsonError(await token('grant_type=client_credentials', { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' })));
    it('a body over 32 KB: 413', async () => assertJsonError(await token(`grant_type=refresh_token&x=${'a'.repeat(40_000)}`), 413));
    it('a streamed (chunked) body over 32 KB: 413', async () => {
      const chunk = new TextEncoder().encode(`a=${'b'.repeat(16_000)}&`);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 4; i++) controller.enqueue(chunk);
          controller.close();
        },
      });
      const r = await send('/token', { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/x-www-form-urlencoded' } } as RequestInit);
      assertJsonError(r, 413);
    });
    it('a huge query on /token', async () => assertJsonError(await send(`/token?x=${'a'.repeat(9000)}`, { method: 'POST', headers: { accept: 'application/json' } }), 414));
  });

  describe('the upstream callback', () => {
    it('the control: a well-formed callback with an unknown state looks it up', async () => {
      const r = await send('/broker/acme/callback?state=abc&code=def');
      assert.equal(r.status, 400);
      assert.ok(r.storeCalls.length > 0);
    });
    it('an oversized code', async () => assertErrorPage(await send(`/broker/acme/callback?state=abc&code=${'c'.repeat(2049)}`)));
    it('a repeated state', async () => assertErrorPage(await send('/broker/acme/callback?state=abc&state=def&code=x')));
    it('non-UTF-8 on the interaction callback', async () => assertErrorPage(await send('/interaction/abc/callback?state=%FF&code=x')));
  });

  describe('security headers on every kind of HTML page', () => {
    function assertSecureHtml(label: string, status: number, headers: Headers, body: string) {
      assert.match(headers.get('content-type') ?? '', /text\/html/, `${label}: HTML (status ${status})`);
      const csp = headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, `${label}: CSP ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/, `${label}: frame-ancestors`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${label}: no unsafe-inline`);
      assert.equal(headers.get('x-frame-options'), 'DENY', label);
      assert.equal(headers.get('x-content-type-options'), 'nosniff', label);
      assert.equal(headers.get('referrer-policy'), 'no-referrer', label);
      assert.match(headers.get('cache-control') ?? '', /no-store/, label);
      assert.equal(headers.get('strict-transport-security'), null, `${label}: no HSTS on an http issuer`);
      // What the CSP would block must not be on the page: inline scripts (unless the CSP names their
      // hash, as oidc-provider's auto-submitting forms do), style attributes and blocks.
      for (const [, script = ''] of body.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
        const hash = `'sha256-${createHash('sha256').update(script).digest('base64')}'`;
        assert.ok(new RegExp(`script-src[^;]*${hash.replace(/[+/=]/g, '\\$&')}`).test(csp), `${label}: an inline script the CSP does not allow (${hash}): ${csp}`);
        assert.doesNotMatch(csp, /script-src[^;]*'none'/, `${label}: 'none' next to a hash`);
      }
      assert.doesNotMatch(body, /\sstyle\s*=|<style/i, `${label}: inline style`);
    }

    it('the login page, the error pages (Concord, edge check, oidc-provider), logout and signed-out', async () => {
      const browser = new Browser();
      const login = await browser.get(`${issuer}/auth?${authQuery()}`);
      assert.match(login.url.pathname, /^\/interaction\//);
      assert.match(login.body, /name="email"/);
      assertSecureHtml('login', login.status, login.headers, login.body);

      const unknown = await browser.post(new URL(parseForm(login.body, '/login').action, login.url), { email: 'someone@unknown.example' });
      assert.equal(unknown.status, 400);
      assertSecureHtml('Concord error page', unknown.status, unknown.headers, unknown.body);

      const provider = await send('/auth?client_id=nobody&response_type=code&scope=openid');
      assert.equal(provider.status, 400);
      assertSecureHtml("oidc-provider's error page", provider.status, provider.headers, provider.body);

      const edge = await send(`/auth?client_id=${'x'.repeat(300)}`);
      assertSecureHtml('edge check page', edge.status, edge.headers, edge.body);

      // Without a session oidc-provider answers with its auto-submitting form (an inline script).
      const autoLogout = await send('/session/end');
      assert.equal(autoLogout.status, 200);
      assert.match(autoLogout.body, /<script>/);
      assertSecureHtml('logout (auto-submit)', autoLogout.status, autoLogout.headers, autoLogout.body);

      const signedOut = await send('/broker/acme/logged-out');
      assertSecureHtml('signed out', signedOut.status, signedOut.headers, signedOut.body);
    });

    it('the consent page and the logout confirmation', async () => {
      const browser = new Browser();
      const query = authQuery({ client_id: CONSENT_CLIENT.client_id, login_hint: 'alice@acme.example' });
      const partner = await browser.get(`${issuer}/auth?${query}`);
      assert.ok(partner.body.includes('password'), `the partner's login page, got ${partner.url.href}`);
      const form = parseForm(partner.body, '/login');
      const consent = await browser.post(new URL(form.action, partner.url), { ...form.fields, username: 'alice@acme.example', password: DEMO_PASSWORD });
      assert.equal(consent.url.origin, issuer);
      assert.match(consent.body, /Allow access|consent/i);
      assertSecureHtml('consent', consent.status, consent.headers, consent.body);

      // Signed in now: the logout confirmation is Concord's own page.
      const logout = await browser.get(`${issuer}/session/end`);
      assert.equal(logout.status, 200);
      assert.match(logout.body, /op\.logoutForm/);
      assertSecureHtml('logout', logout.status, logout.headers, logout.body);
    });
  });
});

describe('security headers on an https issuer', () => {
  let instance: TestConcord;
  before(async () => {
    instance = await startConcord({ clients: [CONFIDENTIAL_CLIENT], logLevel: 'info', settings: { issuer: 'https://concord.example' } });
  });
  after(() => instance.close());

  it('adds HSTS to pages and API answers', async () => {
    const base = `http://127.0.0.1:${instance.concord.settings.port}`;
    for (const path of ['/auth?client_id=nobody', `/auth?client_id=${'x'.repeat(300)}`, '/session/end', '/.well-known/openid-configuration', '/healthz']) {
      const r = await fetch(`${base}${path}`, { redirect: 'manual', headers: { accept: 'text/html' } });
      await r.body?.cancel();
      assert.match(r.headers.get('strict-transport-security') ?? '', /max-age=\d{7,}/, path);
    }
  });
});
