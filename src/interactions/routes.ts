import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import type { ActiveParticipant, ConnectorPool, Registry } from '../participants/index.ts';
import { domainOf } from '../participants/index.ts';
import { AccountStore, accountIdOf } from '../provider/index.ts';
import type { Store } from '../store/index.ts';
import type { PendingUpstreamLogin } from '../upstream/index.ts';
import { UpstreamError } from '../upstream/index.ts';
import type { LoginObserver, LoginOutcome } from './login-events.ts';
import { showError, type ErrorPage } from './pages.ts';
import { readForm } from './form.ts';
import { renderPage, Trusted, escapeHtml } from './views.ts';

export interface InteractionDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  connectors: ConnectorPool;
  accounts: AccountStore;
  /** The provider serving now (it is rebuilt when keys rotate). */
  provider: () => Provider;
  observe?: LoginObserver;
}

/** What is kept, single-use, between the redirect to the upstream and its callback. */
interface UpstreamLoginRecord {
  interactionUid: string;
  participantId: string;
  clientId: string;
  pending: PendingUpstreamLogin;
  startedAt: number;
}

const pendingKey = (state: string) => `upstream-login:${state}`;

/** Kept, single-use, while the browser visits the upstream's end_session_endpoint during logout. */
interface UpstreamLogoutRecord {
  participantId: string;
  /** Where oidc-provider sent the browser after ending the Concord session: the RP's post_logout_redirect_uri (+ state) or its own page. */
  returnTo: string;
}

const logoutKey = (id: string) => `upstream-logout:${id}`;

/** oidc-provider's route that ends the session once the user confirmed the logout (features.rpInitiatedLogout). */
const END_SESSION_CONFIRM = '/session/end/confirm';

/** What the logout hook reads of oidc-provider's context after it ended a session. */
interface EndSessionContext {
  oidc?: { session?: { accountId?: string; destroyed?: boolean }; params?: { logout?: unknown } };
}

const UPSTREAM_PAGES: Record<string, ErrorPage> = {
  upstream_unreachable: 'upstream_unavailable',
  upstream_timeout: 'upstream_unavailable',
  discovery_invalid: 'upstream_unavailable',
  upstream_error: 'upstream_error',
  state_mismatch: 'session_expired',
  iss_mismatch: 'upstream_invalid',
  token_invalid: 'upstream_invalid',
  userinfo_invalid: 'upstream_invalid',
};

/**
 * The login, consent and broker-callback routes. The flow: interaction -> home-realm discovery
 * (login_hint, idp_hint or the email form) -> the participant's upstream -> callback -> mapping
 * -> account -> back to oidc-provider, which issues the code.
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { settings, store, registry, connectors, accounts } = deps;
  const observe: LoginObserver = deps.observe ?? (() => {});
  const router = new Router();

  async function details(ctx: Context) {
    return deps.provider().interactionDetails(ctx.req, ctx.res);
  }

  function refuse(ctx: Context, page: ErrorPage, outcome: LoginOutcome, participant: string | undefined, client: string | undefined, extra: { cause?: unknown; message?: string } = {}) {
    observe({ participant, client, outcome });
    showError(ctx, page, { ...extra, log: { participant, client, outcome } });
  }

  /** Checks that the participant may be used for this client now, then redirects to its upstream. */
  async function startUpstream(ctx: Context, uid: string, clientId: string, participant: ActiveParticipant, loginHint: string | undefined) {
    const id = participant.config.id;
    const client = registry.client(clientId);
    if (!participant.config.enabled) return refuse(ctx, 'participant_disabled', 'participant_disabled', id, clientId);
    if (client?.participants && !client.participants.includes(id)) return refuse(ctx, 'participant_not_allowed', 'participant_not_allowed', id, clientId);
    try {
      const { url, pending } = await connectors.get(participant).beginLogin({
        redirectUri: connectors.redirectUri(id),
        ...(loginHint ? { loginHint } : {}),
      });
      const record: UpstreamLoginRecord = { interactionUid: uid, participantId: id, clientId, pending, startedAt: Date.now() };
      await store.setTemp(pendingKey(pending.state), record, settings.tokens.interactionTtl);
      ctx.state.log?.info({ participant: id, client: clientId }, 'redirecting to upstream');
      ctx.redirect(url);
    } catch (error) {
      if (error instanceof UpstreamError) {
        return refuse(ctx, UPSTREAM_PAGES[error.code] ?? 'upstream_unavailable', error.code as LoginOutcome, id, clientId, { cause: error });
      }
      throw error;
    }
  }

  /** Home-realm discovery from an email address: exact, case-insensitive domain match. */
  async function discoverFromEmail(ctx: Context, uid: string, clientId: string, email: string) {
    const domain = domainOf(email);
    if (!domain) return refuse(ctx, 'invalid_email', 'invalid_email', undefined, clientId);
    const participant = registry.participantForDomain(domain);
    if (!participant) return refuse(ctx, 'unknown_domain', 'unknown_domain', undefined, clientId, { message: `No partner organisation signs in with addresses at ${domain}. Check the address, or ask your administrator whether your organisation is connected.` });
    return startUpstream(ctx, uid, clientId, participant, email);
  }

  function loginPage(ctx: Context, uid: string, clientId: string, email = '', error?: string) {
    const client = registry.client(clientId);
    ctx.type = 'html';
    ctx.body = renderPage('login', 'Sign in', {
      clientName: client?.client_name ?? clientId,
      action: `/interaction/${uid}/login`,
      email,
      errorBlock: error ? new Trusted(`<p id="email-error" class="error" role="alert">${escapeHtml(error)}</p>`) : undefined,
      errorId: error ? ' email-error' : '',
    });
  }

  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await details(ctx);
    const uid = ctx.params.uid!;
    if (interaction.uid !== uid) return showError(ctx, 'session_expired');
    const params = interaction.params as { client_id: string; login_hint?: string; idp_hint?: string };
    ctx.set('Cache-Control', 'no-store');

    if (interaction.prompt.name === 'login') {
      if (params.idp_hint) {
        const participant = registry.participant(params.idp_hint);
        if (!participant) return refuse(ctx, 'unknown_participant', 'unknown_domain', undefined, params.client_id);
        return startUpstream(ctx, uid, params.client_id, participant, params.login_hint);
      }
      if (params.login_hint && domainOf(params.login_hint)) return discoverFromEmail(ctx, uid, params.client_id, params.login_hint);
      return loginPage(ctx, uid, params.client_id);
    }

    if (interaction.prompt.name === 'consent') {
      const client = registry.client(params.client_id);
      const session = interaction.session;
      const participantId = session?.accountId?.split(':')[0];
      const scopes = String((interaction.params as { scope?: string }).scope ?? 'openid').split(' ');
      ctx.type = 'html';
      ctx.body = renderPage('consent', 'Allow access', {
        clientName: client?.client_name ?? params.client_id,
        participantName: (participantId && registry.participant(participantId)?.config.displayName) ?? 'your organisation',
        scopeItems: new Trusted(scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')),
        action: `/interaction/${uid}/consent`,
      });
      return;
    }
    return showError(ctx, 'internal', { log: { prompt: interaction.prompt.name } });
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const interaction = await details(ctx);
    const uid = ctx.params.uid!;
    if (interaction.uid !== uid || interaction.prompt.name !== 'login') return showError(ctx, 'session_expired');
    const form = await readForm(ctx);
    const email = (form.get('email') ?? '').trim();
    const clientId = String(interaction.params.client_id);
    if (!domainOf(email)) {
      ctx.status = 400;
      observe({ participant: undefined, client: clientId, outcome: 'invalid_email' });
      return loginPage(ctx, uid, clientId, email.slice(0, 320), 'Enter a full work email address, like you@your-organisation.example.');
    }
    return discoverFromEmail(ctx, uid, clientId, email);
  });

  router.post('/interaction/:uid/consent', async (ctx) => {
    const provider = deps.provider();
    const interaction = await details(ctx);
    if (interaction.uid !== ctx.params.uid || interaction.prompt.name !== 'consent') return showError(ctx, 'session_expired');
    const form = await readForm(ctx);
    if (form.get('decision') !== 'allow') {
      return provider.interactionFinished(ctx.req, ctx.res, { error: 'access_denied', error_description: 'the user denied the request' }, { mergeWithLastSubmission: false });
    }
    const { params, session, grantId, prompt } = interaction;
    const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) });
    if (!grant) return showError(ctx, 'session_expired');
    const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const id = await grant.save();
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  });

  // The upstream's redirect lands here; the interaction cookie's path is /interaction/{uid}, so the
  // browser is sent on there, where the cookie binds the callback to the browser that began the login.
  router.get('/broker/:participantId/callback', async (ctx) => {
    const participantId = ctx.params.participantId!;
    const state = ctx.query.state;
    if (typeof state !== 'string' || state.length === 0 || state.length > 256) {
      return refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
    }
    const record = await store.getTemp<UpstreamLoginRecord>(pendingKey(state));
    if (!record || record.participantId !== participantId) return refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
    ctx.status = 303;
    ctx.redirect(`/interaction/${record.interactionUid}/callback?${ctx.querystring}`);
  });

  router.get('/interaction/:uid/callback', async (ctx) => {
    const state = ctx.query.state;
    if (typeof state !== 'string' || state.length === 0 || state.length > 256) {
      return refuse(ctx, 'session_expired', 'state_mismatch', undefined, undefined);
    }
    let interaction;
    try {
      interaction = await details(ctx);
    } catch (cause) {
      return refuse(ctx, 'session_expired', 'session_expired', undefined, undefined, { cause });
    }
    // Single use: a replayed callback finds nothing.
    const record = await store.takeTemp<UpstreamLoginRecord>(pendingKey(state));
    if (!record || interaction.uid !== record.interactionUid || ctx.params.uid !== record.interactionUid) {
      return refuse(ctx, 'session_expired', 'state_mismatch', record?.participantId, record?.clientId);
    }
    const participantId = record.participantId;

    const participant = registry.participant(participantId);
    if (!participant) return refuse(ctx, 'unknown_participant', 'unknown_domain', participantId, record.clientId);
    if (!participant.config.enabled) return refuse(ctx, 'participant_disabled', 'participant_disabled', participantId, record.clientId);

    let identity;
    try {
      // openid-client checks the callback against the redirect URI the upstream knows.
      const callbackUrl = new URL(`${connectors.redirectUri(participantId)}?${ctx.querystring}`);
      identity = await connectors.get(participant).completeLogin(callbackUrl, record.pending);
    } catch (error) {
      if (error instanceof UpstreamError) {
        return refuse(ctx, UPSTREAM_PAGES[error.code] ?? 'upstream_invalid', error.code as LoginOutcome, participantId, record.clientId, { cause: error });
      }
      throw error;
    }

    const outcome = participant.mapping.apply(identity.claims);
    if (!outcome.ok) {
      observe({ participant: participantId, client: record.clientId, outcome: outcome.code });
      return showError(ctx, outcome.code === 'mapping_rejected' ? 'mapping_rejected' : 'claims_not_accepted', {
        ...(outcome.message ? { message: outcome.message } : {}),
        log: { participant: participantId, client: record.clientId, outcome: outcome.code, rule: outcome.ruleIndex, requirement: outcome.requirement },
      });
    }

    const accountId = accountIdOf(participantId, identity.subject);
    await accounts.save({
      accountId,
      participantId,
      upstreamIssuer: identity.issuer,
      upstreamSubject: identity.subject,
      claims: outcome.claims,
      upstreamIdToken: identity.idToken,
      updatedAt: Math.floor(Date.now() / 1000),
    });
    observe({ participant: participantId, client: record.clientId, outcome: 'success', durationMs: Date.now() - record.startedAt, upstreamMs: identity.durationMs });
    ctx.state.log?.info({ participant: participantId, client: record.clientId }, 'brokered login succeeded');
    const login = {
      accountId,
      ...(identity.amr ? { amr: identity.amr } : {}),
      ...(identity.acr ? { acr: identity.acr } : {}),
    };
    return deps.provider().interactionFinished(ctx.req, ctx.res, { login }, { mergeWithLastSubmission: false });
  });

  // RP-initiated logout. oidc-provider ends the Concord session at the confirm step and redirects to the
  // RP's post_logout_redirect_uri (with its state). When the user's participant offers an
  // end_session_endpoint, that redirect is kept under a random id and the browser visits the upstream
  // first (id_token_hint = the upstream ID token of the account); the upstream sends it back to
  // /broker/{participantId}/logged-out with the id as state, and from there on to the RP.
  router.post(END_SESSION_CONFIRM, async (ctx, next) => {
    await next();
    const { oidc } = ctx as unknown as EndSessionContext;
    const accountId = oidc?.session?.accountId;
    const returnTo = ctx.response.get('Location');
    if (ctx.status !== 303 || !returnTo || !oidc?.params?.logout || !oidc.session?.destroyed || !accountId) return;
    const account = await accounts.find(accountId);
    const participant = account && registry.participant(account.participantId);
    if (!account || !participant) return;
    const participantId = participant.config.id;
    try {
      const id = randomBytes(24).toString('base64url');
      const url = await connectors.get(participant).endSessionUrl({
        postLogoutRedirectUri: upstreamLogoutReturn(settings.issuer, participantId),
        state: id,
        ...(account.upstreamIdToken ? { idTokenHint: account.upstreamIdToken } : {}),
      });
      if (!url) return;
      const record: UpstreamLogoutRecord = { participantId, returnTo };
      await store.setTemp(logoutKey(id), record, settings.tokens.interactionTtl);
      ctx.state.log?.info({ participant: participantId }, 'signed out; ending the upstream session');
      ctx.status = 303;
      ctx.redirect(url);
    } catch (error) {
      // The Concord session is over either way; an unreachable upstream only skips its own logout.
      ctx.state.log?.warn({ participant: participantId, err: error }, 'upstream logout skipped');
      if (error instanceof UpstreamError && (error.code === 'upstream_unreachable' || error.code === 'upstream_timeout')) {
        // The IdP's session may outlive this logout: say so (a shared computer), then go on to the service.
        ctx.status = 200;
        ctx.remove('Location');
        ctx.set('Cache-Control', 'no-store');
        ctx.type = 'html';
        ctx.body = renderPage('logged-out-upstream-unavailable', 'Signed out', { participant: participant.config.displayName, continueUrl: returnTo });
      }
    }
  });

  router.get('/broker/:participantId/logged-out', async (ctx) => {
    const state = ctx.query.state;
    const record = typeof state === 'string' && state.length > 0 && state.length <= 256 ? await store.takeTemp<UpstreamLogoutRecord>(logoutKey(state)) : undefined;
    ctx.set('Cache-Control', 'no-store');
    if (!record || record.participantId !== ctx.params.participantId) {
      // Signed out already; without its record there is nowhere safe to send the browser on to.
      ctx.type = 'html';
      ctx.body = renderPage('logged-out', 'Signed out', { clientSuffix: '' });
      return;
    }
    ctx.status = 303;
    ctx.redirect(record.returnTo);
  });

  return router;
}

/** Where a participant's IdP sends the browser back after its own logout; register it there as a post_logout_redirect_uri. */
export function upstreamLogoutReturn(issuer: string, participantId: string): string {
  return `${issuer}/broker/${participantId}/logged-out`;
}
