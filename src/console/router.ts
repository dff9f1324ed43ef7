import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import * as oidc from 'openid-client';
import { AdminError } from '../admin/index.ts';
import { ClientSchema, type ClientConfig } from '../config/index.ts';
import { ConcordError } from '../errors.ts';
import { MappingError } from '../mapping/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import { allowPolicy } from './allow.ts';
import { stateOf, type ConsoleDeps } from './context.ts';
import { errorPanel } from './forms.ts';
import { html, page } from './html.ts';
import { adminPages } from './pages-admin.ts';
import { onboardingPages } from './pages-onboard.ts';
import { overviewPage } from './pages-overview.ts';
import { participantPages } from './pages-participant.ts';
import { consoleSessions, type ConsoleSession } from './sessions.ts';

/** The console's built-in OIDC client at Concord (public, PKCE): never in the store, refused by the admin API. */
export const CONSOLE_CLIENT_ID = 'concord-console';

/** Security headers of every console response: nothing inline, nothing framed, nothing cached. */
export const CONSOLE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const CSS = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'console.css'), 'utf8');

/** The console's client registration: a public client (PKCE, no secret: every instance serves it alike), first-party (no consent). */
export function consoleClient(origin: string): ClientConfig {
  return ClientSchema.parse({
    client_id: CONSOLE_CLIENT_ID,
    client_name: 'Concord console',
    application_type: 'web',
    redirect_uris: [`${origin}/console/callback`],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'none',
    skip_consent: true,
    scope: 'openid email profile groups roles',
  });
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Everything under /console (the caller mounts it on the admin listener only). */
export function consoleRouter(deps: ConsoleDeps): Middleware {
  const { settings, log } = deps;
  const allow = allowPolicy(settings.console.allow);
  const secure = () => deps.origin().startsWith('https://');
  let sessionsStore: ReturnType<typeof consoleSessions> | undefined;
  const sessions = () =>
    (sessionsStore ??= consoleSessions({ store: deps.store, idleSeconds: settings.console.idleTimeout, maxAgeSeconds: settings.console.maxAge, secure: secure() }));
  const tokens = deps.adminTokens.map((t) => digest(t.token));
  let discovered: Promise<oidc.Configuration> | undefined;
  const concordAsIssuer = () =>
    (discovered ??= oidc
      .discovery(new URL(settings.issuer), CONSOLE_CLIENT_ID, undefined, oidc.None(), settings.issuer.startsWith('http://') ? { execute: [oidc.allowInsecureRequests] } : undefined)
      .catch((error: unknown) => {
        discovered = undefined;
        throw error;
      }));

  const router = new Router({ prefix: '/console' });

  // ---- always open: the stylesheet, sign-in, the OIDC callback -------------------------------

  router.get('/assets/console.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = CSS;
  });

  function signInPage(ctx: Context, session: ConsoleSession, problem?: string) {
    const oidcOn = settings.console.allow !== undefined;
    ctx.type = 'html';
    ctx.body = page(
      { title: 'Sign in' },
      html`${problem ? html`<p class="error" role="alert">${problem}</p>` : ''}
      ${oidcOn
        ? html`<p>Administrators sign in through Concord, with their organisation's account.</p><p><a class="button" href="/console/login/oidc">Sign in with Concord</a></p>`
        : html`<p>Sign-in through Concord is not configured (<code>console.allow</code>): use the admin token.</p>`}
      <h2>Break-glass sign-in</h2>
      <p>With the admin API's bearer token (<code>CONCORD_ADMIN_TOKEN</code>), when sign-in through Concord is unavailable. Changes are recorded as <code>admin-token</code>.</p>
      <form method="post" action="/console/login/token" class="stack">
        <input type="hidden" name="_csrf" value="${session.csrf}">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="off" required>
        <div><button type="submit">Sign in with the admin token</button></div>
      </form>`,
    );
  }

  router.get('/login', async (ctx) => {
    const state = stateOf(ctx);
    if (state.session.admin) return ctx.redirect('/console/');
    signInPage(ctx, state.session);
  });

  router.get('/login/oidc', async (ctx) => {
    if (settings.console.allow === undefined) return ctx.redirect('/console/login');
    const { id, session } = stateOf(ctx);
    const config = await concordAsIssuer();
    const login = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
    await sessions().save(id, { ...session, login });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${deps.origin()}/console/callback`,
      scope: 'openid email profile groups roles',
      state: login.state,
      nonce: login.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(login.codeVerifier),
      code_challenge_method: 'S256',
    });
    ctx.redirect(url.href);
  });

  router.get('/callback', async (ctx) => {
    const { id, session } = stateOf(ctx);
    if (!session.login) {
      return signInPage(ctx, session, 'That sign-in was not started here, or it took too long. Sign in again.');
    }
    const config = await concordAsIssuer();
    const current = new URL(`${deps.origin()}/console/callback`);
    for (const [k, v] of Object.entries(ctx.query)) if (typeof v === 'string' && k !== 'again') current.searchParams.set(k, v);
    let claims: Record<string, unknown>;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: session.login.codeVerifier, expectedState: session.login.state, expectedNonce: session.login.nonce });
      const idClaims = tokens.claims() as Record<string, unknown>;
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, String(idClaims.sub));
      claims = { ...userinfo, ...idClaims };
    } catch (error) {
      const reference = String(ctx.state.requestId ?? '');
      ctx.state.log?.warn({ reference, err: { message: (error as Error).message, code: (error as { code?: string }).code } }, 'console sign-in through Concord failed');
      await sessions().save(id, { ...session, login: undefined } as ConsoleSession);
      return signInPage(ctx, session, `The sign-in did not complete (${(error as { error?: string }).error ?? 'error'}). Try again. Reference: ${reference}`);
    }
    const decision = allow(claims);
    const sub = String(claims.sub);
    if (!decision.allowed) {
      ctx.state.log?.warn({ sub, idp: claims.idp, reason: decision.reason }, 'console sign-in refused: console.allow is false for these claims');
      await sessions().destroy(ctx, id);
      ctx.status = 403;
      ctx.type = 'html';
      ctx.body = page(
        { title: 'Not an administrator' },
        html`<p class="error" role="alert">You signed in as <strong>${String(claims.email ?? claims.name ?? sub)}</strong>${claims.idp ? html` (through ${String(claims.idp)})` : ''}, but this account is not allowed to use the Concord console.</p>
        <p>Administrators are those the deployment's <code>console.allow</code> rule accepts. If you should be one, ask whoever runs Concord. Reference: <code>${String(ctx.state.requestId ?? '')}</code>.</p>
        <p><a href="/console/login">Back to sign-in</a></p>`,
      );
      return;
    }
    // A new session at sign-in: no id chosen before it carries an admin (no fixation).
    await sessions().destroy(ctx, id);
    const name = String(claims.email ?? claims.name ?? sub);
    await sessions().create(ctx, { admin: { actor: sub, name, via: 'oidc' }, signedInAt: Date.now() });
    ctx.state.log?.info({ sub, idp: claims.idp }, 'console sign-in');
    ctx.redirect('/console/');
  });

  router.post('/login/token', async (ctx) => {
    const { id, session } = stateOf(ctx);
    const presented = digest(String(ctx.state.form.get('token') ?? ''));
    let match = false;
    for (const t of tokens) if (timingSafeEqual(presented, t)) match = true;
    if (!match) {
      ctx.state.log?.warn('console sign-in with a wrong admin token');
      ctx.status = 401;
      return signInPage(ctx, session, tokens.length === 0 ? 'No admin token is configured (CONCORD_ADMIN_TOKEN).' : 'That is not the admin token.');
    }
    await sessions().destroy(ctx, id);
    await sessions().create(ctx, { admin: { actor: 'admin-token', name: 'admin token (break-glass)', via: 'admin-token' }, signedInAt: Date.now() });
    ctx.state.log?.warn('console sign-in with the admin token (break-glass)');
    ctx.status = 303;
    ctx.redirect('/console/');
  });

  router.post('/logout', async (ctx) => {
    await sessions().destroy(ctx, stateOf(ctx).id);
    ctx.status = 303;
    ctx.redirect('/console/login');
  });

  // ---- signed in -------------------------------------------------------------------------------

  const pages = new Router({ prefix: '/console' });
  overviewPage(pages, deps);
  participantPages(pages, deps);
  onboardingPages(pages, deps);
  adminPages(pages, deps);

  const OPEN = new Set(['/console/login', '/console/login/oidc', '/console/callback', '/console/login/token', '/console/logout', '/console/assets/console.css']);

  /** Loads (or starts) the session; checks the CSRF token of every POST before any route runs. */
  async function sessionAndCsrf(ctx: Context, next: Next) {
    let loaded = await sessions().load(ctx);
    if (!loaded && ctx.path === '/console/assets/console.css') return next();
    if (!loaded && ctx.path === '/console/callback' && ctx.query.again === undefined) {
      // The SameSite=Strict cookie does not come with a navigation that began on another site
      // (Concord's public origin): one same-site step (a meta refresh, no script) brings it. No new
      // session here: its cookie would replace the one that holds the sign-in under way.
      const target = escapeAttr(`/console/callback?${ctx.querystring}&again=1`);
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${target}"><title>Signing in</title></head><body><main><p><a href="${target}">Continue signing in</a></p></main></body></html>`;
      return;
    }
    loaded ??= await sessions().create(ctx);
    ctx.state.console = { ...loaded, sessions: sessions() };
    if (ctx.method === 'POST') {
      ctx.state.form = await readConsoleForm(ctx);
      if (!sessions().csrfMatches(loaded.session, ctx.state.form.get('_csrf'))) {
        ctx.state.log?.warn({ path: ctx.path }, 'console form refused: missing or wrong CSRF token');
        ctx.status = 403;
        ctx.type = 'html';
        ctx.body = page(
          { title: 'Form refused' },
          html`<p class="error" role="alert">This form was refused: it did not carry this session's security token. Forms expire when the session does (after ${Math.round(settings.console.idleTimeout / 60)} minutes without activity) and after sign-in or sign-out.</p><p><a href="/console/">Back to the console</a> and try again.</p>`,
        );
        return;
      }
    }
    if (!OPEN.has(ctx.path) && !loaded.session.admin) {
      if (ctx.method === 'GET') return ctx.redirect('/console/login');
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = page({ title: 'Signed out' }, html`<p class="error" role="alert">Your console session has ended.</p><p><a href="/console/login">Sign in again</a>.</p>`);
      return;
    }
    await next();
    // Each request a signed-in admin makes keeps the session alive for another idle period.
    const after = ctx.state.console as { id: string; session: ConsoleSession };
    if (after.session.admin && ctx.status < 500 && OPEN.has(ctx.path) === false) await sessions().save(after.id, after.session).catch(() => {});
  }

  /** Refusals of the shared operations become a page that says what and where; anything else a page with a reference. */
  async function errors(ctx: Context, next: Next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.type = 'html';
        ctx.body = page({ title: 'Not found' }, html`<p>There is no console page at <code>${ctx.path}</code>.</p><p><a href="/console/">Overview</a></p>`);
      }
    } catch (error) {
      const known = error instanceof AdminError || error instanceof MappingError || error instanceof DomainConflictError || (error instanceof ConcordError && error.expose);
      const reference = String(ctx.state.requestId ?? randomBytes(6).toString('hex'));
      if (known) ctx.state.log?.info({ error: (error as ConcordError).code, reference }, 'console action refused');
      else ctx.state.log?.error({ err: error, reference }, 'console request failed');
      ctx.status = known ? ((error as ConcordError).status ?? 422) : 500;
      ctx.type = 'html';
      const admin = (ctx.state.console as { session?: ConsoleSession } | undefined)?.session;
      ctx.body = page(
        { title: known ? 'Not done' : 'Something went wrong', ...(admin?.admin ? { admin: { name: admin.admin.name, csrf: admin.csrf } } : {}) },
        html`${known ? errorPanel(error) : html`<p class="error" role="alert">The console could not do this. Nothing may have been changed.</p>`}
        <p>Reference: <code>${reference}</code></p>
        <p><a href="${safeBack(ctx)}">Back</a></p>`,
      );
    }
  }

  const handle = compose([errors, sessionAndCsrf, router.routes(), router.allowedMethods(), pages.routes(), pages.allowedMethods()]) as Middleware;
  const securityHeaders = async (ctx: Context, next: Next) => {
    ctx.set('Content-Security-Policy', CONSOLE_CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');
    if (secure()) ctx.set('Strict-Transport-Security', 'max-age=31536000');
    await next();
    if (ctx.path !== '/console/assets/console.css') ctx.set('Cache-Control', 'no-store');
  };

  return async function consoleApp(ctx, next) {
    if (!settings.console.enabled || (ctx.path !== '/console' && !ctx.path.startsWith('/console/'))) return next();
    if (ctx.path === '/console') return ctx.redirect('/console/');
    log.debug({ path: ctx.path }, 'console request');
    return compose([securityHeaders, handle])(ctx, async () => {});
  };
}

const escapeAttr = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** Back to the page the form was on (same origin only), or the overview. */
function safeBack(ctx: Context): string {
  const path = ctx.path.replace(/\/(enable|disable|revoke-sessions|rotate|check|dry-run|edit|end|delete|test-login|mapping|create|upstream|credentials)$/, '');
  return path.startsWith('/console/') && ctx.method === 'POST' ? path.replace(/\/domains\/[^/]+$/, '') : '/console/';
}

const MAX_FORM_BYTES = 512 * 1024;

/** A urlencoded form (console forms are small: a participant document with its rules at most). */
async function readConsoleForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new AdminError(413, 'body_too_large', `the form is larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
