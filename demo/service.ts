import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import * as oidc from 'openid-client';
import { createVerifier } from '../src/verify/index.ts';

/**
 * The demo service: a relying party of Concord. It signs users in with the authorization code
 * flow + PKCE, then verifies Concord's access token offline with `concord/verify`, as any
 * service would, and shows the verified, mapped claims.
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

interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title: string, body: string) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}pre{background:#f3f5f9;padding:1rem;border-radius:8px;overflow:auto}a.button{display:inline-block;padding:.6rem 1.2rem;background:#2557d6;color:#fff;border-radius:8px;text-decoration:none}</style></head><body>${body}</body></html>`;

export async function startDemoService(options: DemoServiceOptions) {
  let config: oidc.Configuration | undefined;
  const configuration = async () =>
    (config ??= await oidc.discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
      execute: options.issuer.startsWith('http://') ? [oidc.allowInsecureRequests] : [],
    }));
  const verifier = createVerifier({ issuer: options.issuer, audience: options.audience });
  const pending = new Map<string, PendingLogin>();
  const sessions = new Map<string, { idClaims: Record<string, unknown>; accessClaims: unknown; idToken: string }>();
  const redirectUri = `${options.baseUrl}/callback`;

  const app = new Koa();
  app.keys = [crypto.randomUUID()];
  const router = new Router();

  router.get('/', async (ctx) => {
    const session = sessions.get(ctx.cookies.get('demo_session', { signed: true }) ?? '');
    if (!session) {
      ctx.body = page('Demo Service', `<h1>Demo Service</h1><p>This service trusts Concord. Sign in with your organisation's account.</p>
<p><a class="button" href="/login" id="sign-in">Sign in with Concord</a></p>
<p>Try <code>alice@acme.example</code> or <code>bob@globex.example</code> (password <code>demo</code>).</p>`);
      return;
    }
    ctx.body = page('Signed in', `<h1>Signed in</h1>
<p>Hello <strong id="name">${esc(session.idClaims.name ?? session.idClaims.email ?? session.idClaims.sub)}</strong> from <strong id="idp">${esc(session.idClaims.idp)}</strong>.</p>
<h2>ID token claims</h2><pre id="id-claims">${esc(JSON.stringify(session.idClaims, null, 2))}</pre>
<h2>Access token, verified offline with concord/verify</h2><pre id="access-claims">${esc(JSON.stringify(session.accessClaims, null, 2))}</pre>
<p><a class="button" href="/logout" id="sign-out">Sign out</a></p>`);
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
      ctx.body = page('Error', `<h1>Sign-in failed</h1><p>Unknown or used state. <a href="/">Start again</a>.</p>`);
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
      sessions.set(id, { idClaims: tokens.claims() as Record<string, unknown>, accessClaims, idToken: tokens.id_token! });
      ctx.cookies.set('demo_session', id, { signed: true, httpOnly: true, sameSite: 'lax' });
      ctx.redirect('/');
    } catch (error) {
      ctx.status = 400;
      const e = error as { code?: string; error?: string; message?: string };
      ctx.body = page('Error', `<h1>Sign-in failed</h1><p>${esc(e.error ?? e.code ?? 'error')}: ${esc(e.message)}</p><p><a href="/">Start again</a></p>`);
    }
  });

  router.get('/logout', async (ctx) => {
    const id = ctx.cookies.get('demo_session', { signed: true }) ?? '';
    const session = sessions.get(id);
    sessions.delete(id);
    ctx.cookies.set('demo_session', null);
    const cfg = await configuration();
    ctx.redirect(
      oidc.buildEndSessionUrl(cfg, {
        post_logout_redirect_uri: `${options.baseUrl}/`,
        ...(session ? { id_token_hint: session.idToken } : {}),
      }).href,
    );
  });

  /** An API protected by Concord access tokens: what a real service would expose. */
  router.get('/api/whoami', async (ctx) => {
    const header = ctx.get('authorization');
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    try {
      ctx.body = await verifier(token);
    } catch (error) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', `Bearer error="invalid_token"`);
      ctx.body = { error: 'invalid_token', code: (error as { code?: string }).code };
    }
  });

  app.use(router.routes());
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  return {
    url: options.baseUrl,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
