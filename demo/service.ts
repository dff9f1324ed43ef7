import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { concordKoa, createVerifier, type ConcordState } from 'concord-verify';

/**
 * The demo service: a relying party of Concord. It signs users in with the authorization code
 * flow + PKCE, verifies Concord's access token offline with `concord-verify`, as any service
 * would, and shows the verified, mapped claims. Its API (`/api/*`) is guarded by the `concordKoa`
 * middleware; the signed-in page calls it with the user's access token. Signing out goes through
 * Concord (RP-initiated logout) and ends on "You are signed out"; when Concord ends the user's
 * session for any other reason (the organisation signed them out, an administrator), its logout
 * token at /backchannel-logout (OIDC Back-Channel Logout 1.0) ends the service's own session too.
 */
export interface DemoServiceOptions {
  issuer: string;
  port: number;
  /** The URL this service is reached at (its redirect URI's origin). */
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** The audience of the access tokens it accepts (its resource indicator). */
  audience: string;
}

export interface DemoService {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

interface Session {
  idClaims: Record<string, unknown>;
  accessClaims: Record<string, unknown>;
  accessToken: string;
  idToken: string;
}

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const json = (value: unknown) => esc(JSON.stringify(value, null, 2));
const list = (value: unknown) =>
  Array.isArray(value) && value.length > 0 ? value.map((v) => `<span class="tag">${esc(v)}</span>`).join(' ') : '<span class="muted">none</span>';

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f27;background:#f3f5f9}
header{background:#1b2a4a;color:#fff;padding:.9rem 1.5rem;display:flex;justify-content:space-between;align-items:center}
header strong{letter-spacing:.02em}
header span{opacity:.75;font-size:.9rem}
main{max-width:52rem;margin:2rem auto;padding:0 1rem}
.card{background:#fff;border-radius:12px;box-shadow:0 4px 24px rgb(0 0 0 / .06);padding:1.5rem 1.75rem;margin-bottom:1.25rem}
h1{font-size:1.5rem;margin:0 0 .75rem}
h2{font-size:1.1rem;margin:0 0 .75rem}
p{margin:0 0 1rem}
table{border-collapse:collapse;width:100%}
th{text-align:left;color:#5b6472;font-weight:600;width:9rem;vertical-align:top;padding:.35rem 0}
td{padding:.35rem 0;word-break:break-all}
pre{background:#f3f5f9;padding:1rem;border-radius:8px;overflow:auto;font-size:.85rem;margin:0}
code{background:#eef1f5;padding:0 .25rem;border-radius:4px}
.tag{display:inline-block;background:#e6ecfb;color:#1d3f99;border-radius:999px;padding:0 .6rem;font-size:.85rem}
.muted{color:#5b6472}
.ok{color:#1a7f37;font-weight:600}
.bad{color:#b3261e;font-weight:600}
a.button{display:inline-block;padding:.6rem 1.2rem;background:#2557d6;color:#fff;border-radius:8px;text-decoration:none;font-weight:600}
a.button.secondary{background:#fff;color:#2557d6;border:1px solid #2557d6}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.25rem}
.grid .card{margin-bottom:0;min-width:0}
.grid pre{white-space:pre-wrap;word-break:break-all}
@media (max-width:46rem){.grid{grid-template-columns:minmax(0,1fr)}}
`;

const page = (title: string, body: string) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)} · Demo Service</title>
<style>${STYLE}</style></head><body><header><strong>Demo Service</strong><span>a relying party of Concord</span></header><main>${body}</main></body></html>`;

export async function startDemoService(options: DemoServiceOptions): Promise<DemoService> {
  let config: oidc.Configuration | undefined;
  const configuration = async () =>
    (config ??= await oidc.discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
      execute: options.issuer.startsWith('http://') ? [oidc.allowInsecureRequests] : [],
    }));
  const verifier = createVerifier({ issuer: options.issuer, audience: options.audience });
  const pending = new Map<string, PendingLogin>();
  const sessions = new Map<string, Session>();
  /** Sessions Concord ended by its logout token: their next page says so, once. */
  const endedByConcord = new Set<string>();
  const concordKeys = createRemoteJWKSet(new URL(`${options.issuer}/jwks`));
  const redirectUri = `${options.baseUrl}/callback`;
  let boundPort = options.port;

  const app = new Koa<ConcordState>();
  app.keys = [crypto.randomUUID()];
  const router = new Router<ConcordState>();

  /** Calls this service's own API with the user's access token, as a browser app or another service would. */
  async function callApi(accessToken: string) {
    const res = await fetch(`http://127.0.0.1:${boundPort}/api/whoami`, { headers: { authorization: `Bearer ${accessToken}` } });
    return { status: res.status, body: (await res.json().catch(() => null)) as unknown };
  }

  const signedOutPage = (why: string) =>
    page(
      'Signed out',
      `<section class="card"><h1 id="signed-out">You are signed out</h1><p>${esc(why)}</p>
<p><a class="button" href="/login" id="sign-in">Sign in again</a></p></section>`,
    );

  router.get('/', async (ctx) => {
    const cookie = ctx.cookies.get('demo_session', { signed: true }) ?? '';
    if (endedByConcord.delete(cookie)) {
      ctx.cookies.set('demo_session', null, { signed: true });
      ctx.body = signedOutPage('Your session ended at Concord (you signed out elsewhere, or your organisation ended it), so this service signed you out too.');
      return;
    }
    const session = sessions.get(cookie);
    if (!session) {
      ctx.body = page(
        'Welcome',
        `<section class="card"><h1>Welcome</h1><p>This service trusts Concord: sign in with your organisation's account, whichever partner organisation you belong to.</p>
<p><a class="button" href="/login" id="sign-in">Sign in with Concord</a></p>
<p class="muted">Demo accounts: <code>alice@acme.example</code>, <code>carol@acme.example</code>, <code>bob@globex.example</code> (password <code>demo</code>).</p></section>`,
      );
      return;
    }
    const id = session.idClaims;
    const api = await callApi(session.accessToken);
    ctx.body = page(
      'Signed in',
      `<section class="card"><h1>Hello <span id="name">${esc(id.name ?? id.email ?? id.sub)}</span></h1>
<p>Signed in through <strong id="idp">${esc(id.idp)}</strong>. These claims come from Concord, after the organisation's mapping rules.</p>
<table id="summary">
<tr><th>Subject</th><td><code id="sub">${esc(id.sub)}</code></td></tr>
<tr><th>Email</th><td id="email">${esc(id.email ?? '')}${id.email_verified === true ? ' <span class="ok">verified</span>' : ''}</td></tr>
<tr><th>Groups</th><td id="groups">${list(id.groups)}</td></tr>
<tr><th>Roles</th><td id="roles">${list(id.roles)}</td></tr>
<tr><th>Sign-in method</th><td><span id="amr">${esc(Array.isArray(id.amr) ? id.amr.join(', ') : '')}</span> <span class="muted">${esc(id.acr ?? '')}</span></td></tr>
</table>
<p style="margin-top:1rem"><a class="button secondary" href="/logout" id="sign-out">Sign out</a></p></section>
<section class="card"><h2>This service's API, guarded by <code>concordKoa</code></h2>
<p><code>GET /api/whoami</code> with the access token: <span id="api-status" class="${api.status === 200 ? 'ok' : 'bad'}">HTTP ${api.status}</span></p>
<pre id="api-result">${json(api.body)}</pre></section>
<div class="grid">
<section class="card"><h2>ID token claims</h2><pre id="id-claims">${json(id)}</pre></section>
<section class="card"><h2>Access token, verified offline</h2><pre id="access-claims">${json(session.accessClaims)}</pre></section>
</div>`,
    );
  });

  router.get('/login', async (ctx) => {
    const cfg = await configuration();
    const login: PendingLogin = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
    pending.set(login.state, login);
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: 'openid email profile groups roles',
      state: login.state,
      nonce: login.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(login.codeVerifier),
      code_challenge_method: 'S256',
      ...(typeof ctx.query.login_hint === 'string' ? { login_hint: ctx.query.login_hint } : {}),
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const cfg = await configuration();
    const state = String(ctx.query.state ?? '');
    const login = pending.get(state);
    pending.delete(state);
    if (!login) {
      ctx.status = 400;
      ctx.body = page('Error', `<section class="card"><h1>Sign-in failed</h1><p>Unknown or used state. <a href="/">Start again</a>.</p></section>`);
      return;
    }
    try {
      const tokens = await oidc.authorizationCodeGrant(cfg, new URL(ctx.href.replace(/^https?:\/\/[^/]+/, options.baseUrl)), {
        expectedState: login.state,
        expectedNonce: login.nonce,
        pkceCodeVerifier: login.codeVerifier,
        idTokenExpected: true,
      });
      const accessClaims = await verifier(tokens.access_token);
      const id = crypto.randomUUID();
      sessions.set(id, { idClaims: tokens.claims() as Record<string, unknown>, accessClaims: { ...accessClaims }, accessToken: tokens.access_token, idToken: tokens.id_token! });
      ctx.cookies.set('demo_session', id, { signed: true, httpOnly: true, sameSite: 'lax' });
      ctx.redirect('/');
    } catch (error) {
      ctx.status = 400;
      const e = error as { code?: string; error?: string; message?: string };
      ctx.body = page('Error', `<section class="card"><h1>Sign-in failed</h1><p>${esc(e.error ?? e.code ?? 'error')}: ${esc(e.message)}</p><p><a href="/">Start again</a></p></section>`);
    }
  });

  router.get('/logout', async (ctx) => {
    const id = ctx.cookies.get('demo_session', { signed: true }) ?? '';
    const session = sessions.get(id);
    sessions.delete(id);
    ctx.cookies.set('demo_session', null, { signed: true });
    const cfg = await configuration();
    ctx.redirect(
      oidc.buildEndSessionUrl(cfg, {
        post_logout_redirect_uri: `${options.baseUrl}/signed-out`,
        ...(session ? { id_token_hint: session.idToken } : {}),
      }).href,
    );
  });

  router.get('/signed-out', (ctx) => {
    ctx.body = signedOutPage('You signed out of this service, of Concord and, where your organisation allows it, of your organisation’s sign-in.');
  });

  /**
   * Concord's logout token (OIDC Back-Channel Logout 1.0 2.6, as a relying party must check it): its
   * signature by Concord's keys, `typ` logout+jwt, `iss`, `aud` = this client, `iat`/`exp`, the event,
   * no `nonce`; then this service's sessions of that `sid` (or of that `sub`) end.
   */
  router.post('/backchannel-logout', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req as AsyncIterable<Buffer>) chunks.push(chunk);
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '';
      const { payload } = await jwtVerify(token, concordKeys, { issuer: options.issuer, audience: options.clientId, typ: 'logout+jwt', requiredClaims: ['iat', 'jti'] });
      const events = payload.events as Record<string, unknown> | undefined;
      if (typeof events?.[BACKCHANNEL_LOGOUT_EVENT] !== 'object' || payload.nonce !== undefined || (payload.sid === undefined && payload.sub === undefined)) throw new Error('not a logout token');
      for (const [id, session] of sessions) {
        const matches = payload.sid !== undefined ? session.idClaims.sid === payload.sid : session.idClaims.sub === payload.sub;
        if (!matches) continue;
        sessions.delete(id);
        endedByConcord.add(id);
      }
      ctx.status = 200;
      ctx.body = '';
    } catch {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request' };
    }
  });

  /** An API protected by Concord access tokens: what a real service would expose. */
  const api = new Router<ConcordState>({ prefix: '/api' });
  api.use(concordKoa(verifier, { realm: 'demo-service' }));
  api.get('/whoami', (ctx) => {
    const { sub, idp, client_id, scope, groups, roles } = ctx.state.concord;
    ctx.body = { sub, idp, client_id, scope, groups, roles };
  });

  app.use(router.routes());
  app.use(api.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  boundPort = (server.address() as AddressInfo).port;
  return {
    url: options.baseUrl,
    port: boundPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
