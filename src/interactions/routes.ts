import { randomBytes, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import { emailDomain } from '../domains/index.ts';
import { MAX_URL_CHARS } from '../http/request-limits.ts';
import type { ActiveParticipant, ConnectorPool, Registry } from '../participants/index.ts';
import { AccountStore, accountIdOf, keyedHash, providerCookie, type BrokeredAccount } from '../provider/index.ts';
import { HELD_LOGIN, refreshWorthKeeping, type Sessions } from '../sessions/index.ts';
import type { Store } from '../store/index.ts';
import type { CallbackInput, ForwardedParams, PendingLogin, UpstreamLogout } from '../upstream/index.ts';
import { UpstreamError } from '../upstream/index.ts';
import { upstreamBackchannelLogout, type UpstreamLogoutOutcome } from './backchannel-logout.ts';
import type { LoginObserver, LoginOutcome } from './login-events.ts';
import { escapeHtml, pagesOf, renderPage, showError, Trusted, type ErrorDetails, type ErrorPage, type ParticipantShown, type WayBack } from '../pages/index.ts';
import type { ClientConfig } from '../config/index.ts';
import { REFERENCE_LOCALE } from '../pages/index.ts';
import { readForm } from './form.ts';
import { finishTestLogin, type TestLoginPending } from './test-login.ts';
import { stateTrailKey, trailKey, TRAIL_TTL_S, type InteractionTrail } from './trail.ts';

export interface InteractionDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  connectors: ConnectorPool;
  accounts: AccountStore;
  sessions: Sessions;
  /** The provider serving now (it is rebuilt when keys rotate). */
  provider: () => Provider;
  observe?: LoginObserver;
  /** Counts each back-channel logout request from a partner by its outcome. */
  observeUpstreamLogout?: (participantId: string | undefined, outcome: UpstreamLogoutOutcome) => void;
  /** HMAC key of the checks that bind a callback's redirect to its interaction, carried or with its answer (provider callbackCheckKey); the same on every instance. */
  callbackCheckKey: Buffer;
}

/** What is kept, single-use, between the redirect to the upstream and its callback, under the pending login's state. */
interface UpstreamLoginRecord {
  interactionUid: string;
  participantId: string;
  clientId: string;
  pending: PendingLogin;
  /** The service's max_age (seconds) when it was passed on: the upstream's auth_time must satisfy it. */
  maxAge?: number;
  startedAt: number;
}

/** Where a pending upstream login is kept, by its state (also a console test login's: test-login.ts). */
export const pendingKey = (state: string) => `upstream-login:${state}`;

/**
 * A callback as it reached /broker/{participantId}/callback, on its way to /interaction/{uid}/callback,
 * where the browser's interaction cookie is checked: carried (single-use, by a random reference) when
 * posted or when its state names no interaction (an earlier version's); else it rides in the
 * redirect itself (directCheck) and is rebuilt from it there.
 */
interface CarriedCallback {
  participantId: string;
  state: string;
  /**
   * The pending login's interaction (its record's `interactionUid`), written by earlier versions,
   * which carried a callback after reading its record: checked against the browser's interaction
   * before anything is taken. Carried now in the same round trip as the record's read, a callback
   * does not name it: the redirect does, bound to the state by its `check` (callbackCheck).
   */
  interactionUid?: string;
  method: 'GET' | 'POST';
  query: string;
  body: string;
}

const callbackKey = (ref: string) => `upstream-callback:${ref}`;

/**
 * What a pending login's key holds once its callback took it (for the trail's hour): the interaction
 * that took it, where a revisit of the upstream's callback URL (Back to the upstream after signing
 * in, which answers again) is sent, to that sign-in's page. It names no participant: an earlier
 * version reading it refuses it as a state mismatch.
 */
interface TakenLogin {
  taken: string;
}
type PendingRecord = UpstreamLoginRecord | TestLoginPending | TakenLogin;
const isTaken = (record: PendingRecord): record is TakenLogin => typeof (record as Partial<TakenLogin>).taken === 'string' && !('participantId' in record);

/**
 * The check of a carried callback's redirect, `/interaction/{uid}/callback?ref&state&check`: an HMAC
 * of the interaction, the state and the reference, made by the broker callback once the pending
 * login under `state` was found to be that interaction's. With it (and the browser's interaction
 * cookie naming that interaction), the callback and the pending login are taken in the same round
 * trip as the interaction's read: nothing another browser, or another interaction, could still
 * finish is taken before it is known to be this one's.
 */
const callbackCheck = (key: Buffer, uid: string, state: string, ref: string) => keyedHash(key, `${uid}\n${state}\n${ref}`);

/**
 * A GET answer's own parameters ride, instead, in the redirect to the interaction's callback:
 * `/interaction/{uid}/callback?{the answer's query}&concord_participant={participantId}&concord_check={check}`,
 * the check an HMAC of the interaction, the participant whose callback received it and the whole
 * answer (its state included): nothing in it can be changed or swapped. The interaction is the one
 * its state names (loginState); it is checked again against the pending login taken there. The
 * ":" keeps these checks apart from callbackCheck's (whose first line is always a uid).
 */
const directCheck = (key: Buffer, uid: string, participantId: string, answer: string) => keyedHash(key, `direct:\n${uid}\n${participantId}\n${answer}`);
/** The parameters the broker callback adds to a GET answer it sends on; an answer that has one already is carried. */
const VIA_PARAM = 'concord_participant';
const CHECK_PARAM = 'concord_check';

/**
 * The state of a login begun here (RFC 6749 4.1.1; opaque to the upstream): `{interaction uid}.{32
 * random bytes, base64url}`. Unguessable by its random part, single use by its pending login (taken
 * once, at the interaction's callback); the uid lets the broker callback send a GET answer on to its
 * interaction without reading the store. An earlier version's state is the random part alone
 * (stateInteraction: undefined, the answer is carried).
 */
const loginState = (uid: string) => `${uid}.${randomBytes(32).toString('base64url')}`;
const LOGIN_STATE = /^([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{43}$/;
/** The interaction a login's state names (loginState), or undefined for an earlier version's state. */
const stateInteraction = (state: string) => LOGIN_STATE.exec(state)?.[1];

/** A carried callback is used by the very next request of the same browser: seconds. */
const CALLBACK_TTL_S = 120;

/** Kept while the browser visits the upstream's logout during an RP-initiated logout; taken only by its own participant's return. */
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
  oidc?: {
    session?: { uid?: string; accountId?: string; destroyed?: boolean; authorizations?: Record<string, { persistsLogout?: boolean }> };
    params?: { logout?: unknown };
  };
}

/** The page for each kind of upstream failure (upstream/errors.ts UpstreamErrorKind). */
const UPSTREAM_PAGES: Record<UpstreamError['kind'], ErrorPage> = {
  unavailable: 'upstream_unavailable',
  misconfigured: 'upstream_misconfigured',
  refused: 'upstream_error',
  invalid: 'upstream_invalid',
  expired: 'session_expired',
};

/**
 * OAuth errors from the upstream that end the sign-in at the service with an error of its own
 * (OIDC Core 3.1.2.6), as the service expects: the user cancelled, or the upstream needs an
 * interaction the request forbade, or it is briefly unavailable. The description is Concord's; the
 * upstream's own is in the log line.
 */
const RETURNED_TO_SERVICE: Record<string, { error: string; error_description: string }> = {
  access_denied: { error: 'access_denied', error_description: 'the user or their organisation declined the sign-in' },
  login_required: { error: 'login_required', error_description: 'the organisation’s sign-in service requires the user to sign in' },
  consent_required: { error: 'consent_required', error_description: 'the organisation’s sign-in service requires the user’s consent' },
  interaction_required: { error: 'interaction_required', error_description: 'the organisation’s sign-in service requires an interaction with the user' },
  account_selection_required: { error: 'account_selection_required', error_description: 'the organisation’s sign-in service requires the user to select an account' },
  temporarily_unavailable: { error: 'temporarily_unavailable', error_description: 'the organisation’s sign-in service is temporarily unavailable' },
  server_error: { error: 'temporarily_unavailable', error_description: 'the organisation’s sign-in service is temporarily unavailable' },
};

/** `prompt` values passed on to the upstream (OIDC Core 3.1.2.1). */
const PROMPTS = new Set(['login', 'none', 'consent', 'select_account']);
/** Seconds an upstream's auth_time may be older than max_age allows (clock skew). */
const AUTH_TIME_TOLERANCE_S = 30;

/**
 * The login, consent and broker-callback routes. The flow: interaction -> home-realm discovery
 * (login_hint, idp_hint or the email form) -> the participant's upstream (with the service's
 * authorization parameters, as the participant forwards them) -> callback (GET, or POST for
 * form_post) -> mapping -> account -> back to oidc-provider, which issues the code, with the
 * upstream's auth_time, acr and amr; or, when the upstream answered an error the service expects,
 * that error at the service.
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const { settings, store, registry, connectors, accounts, sessions } = deps;
  const observe: LoginObserver = deps.observe ?? (() => {});
  const router = new Router();

  /** The interaction of this browser; its pages are in the language the service asked for (ui_locales). */
  async function details(ctx: Context) {
    const interaction = await deps.provider().interactionDetails(ctx.req, ctx.res);
    const uiLocales = interaction.params.ui_locales;
    if (typeof uiLocales === 'string') ctx.state.uiLocales = uiLocales;
    return interaction;
  }

  /** The interaction, or undefined when oidc-provider no longer has it for this browser (finished, expired, no cookie). */
  async function detailsIfAny(ctx: Context) {
    try {
      return await details(ctx);
    } catch (error) {
      if (error instanceof oidcErrors.SessionNotFound) return undefined;
      throw error;
    }
  }

  const serviceName = (clientId: string) => registry.client(clientId)?.client_name ?? clientId;

  /** The way back to the service from an error page of interaction `uid`. */
  function wayBack(uid: string | undefined, clientId: string | undefined): WayBack | undefined {
    if (!uid || !clientId) return undefined;
    return { action: `/interaction/${uid}/abort`, service: serviceName(clientId) };
  }

  /** A participant as its pages show it. */
  function shown(participantId: string | undefined): ParticipantShown | undefined {
    const participant = participantId === undefined ? undefined : registry.participant(participantId);
    return participant ? { name: participant.config.displayName, logo: participant.config.logo } : undefined;
  }

  /** Remembers how a sign-in ended (see InteractionTrail), under its uid. */
  async function markEnded(uid: string, clientId: string, ended: NonNullable<InteractionTrail['ended']>) {
    const trail: InteractionTrail = { clientId, ended };
    await store.setTemp(trailKey(uid), trail, TRAIL_TTL_S);
  }

  /**
   * Takes (single use) the pending login under `state`, leaving in its place the mark of the
   * interaction `uid` that took it (TakenLogin), for a revisit of the upstream's callback. Undefined
   * when there is none, or it was taken already.
   */
  async function takePending(state: string, uid: string): Promise<UpstreamLoginRecord | TestLoginPending | undefined> {
    const found = await swapPending(state, uid);
    return found === undefined || isTaken(found) ? undefined : found;
  }

  /** As takePending, answering the mark found instead when it was taken already. */
  async function swapPending(state: string, uid: string): Promise<PendingRecord | undefined> {
    // The mark names its interaction by nothing (`""`) when the state names it (loginState).
    const mark: TakenLogin = { taken: stateInteraction(state) === uid ? '' : uid };
    return expandPending(state, await store.swapTemp<PendingRecord, TakenLogin>(pendingKey(state), mark, TRAIL_TTL_S));
  }

  /** The pending login (or its mark) under `state`, read (not taken). */
  async function readPending(state: string): Promise<PendingRecord | undefined> {
    return expandPending(state, await store.getTemp<PendingRecord>(pendingKey(state)));
  }

  /**
   * A pending login as it is stored: without what its key says (its state, and the interaction a
   * state of loginState's form names), the participant's own callback URL as its OIDC redirect_uri,
   * nor its start apart from the pending login's `createdAt`. Written once and read back once per
   * login: about 250 bytes each way. expandPending puts them back.
   */
  function compactPending(record: UpstreamLoginRecord): unknown {
    const { interactionUid, pending, startedAt, ...rest } = record;
    const { state, ...kept } = pending;
    if (kept.protocol === 'oidc' && kept.redirectUri === connectors.redirectUri(record.participantId)) delete (kept as Partial<typeof kept>).redirectUri;
    return {
      ...rest,
      ...(interactionUid !== stateInteraction(state) ? { interactionUid } : {}),
      pending: kept,
      ...(startedAt !== pending.createdAt ? { startedAt } : {}),
    };
  }

  /**
   * A pending login record as read under `state`, completed (compactPending); the mark of a taken one
   * with its interaction (swapPending). Records written whole (earlier versions, test logins) are as they were.
   */
  function expandPending(state: string, found: PendingRecord | undefined): PendingRecord | undefined {
    if (found === undefined || found === null || typeof found !== 'object') return found;
    if (isTaken(found)) return found.taken === '' ? { taken: stateInteraction(state) ?? '' } : found;
    if ('testLogin' in found) return found;
    const stored = found as unknown as Omit<UpstreamLoginRecord, 'interactionUid' | 'startedAt' | 'pending'> & { interactionUid?: string; startedAt?: number; pending?: Record<string, unknown> };
    const pending = { ...stored.pending, state: stored.pending?.state ?? state } as Record<string, unknown>;
    if (pending.protocol === 'oidc' && pending.redirectUri === undefined && typeof stored.participantId === 'string') pending.redirectUri = connectors.redirectUri(stored.participantId);
    const interactionUid = stored.interactionUid ?? stateInteraction(state);
    return {
      ...stored,
      ...(interactionUid !== undefined ? { interactionUid } : {}),
      pending: pending as unknown as PendingLogin,
      startedAt: stored.startedAt ?? (pending.createdAt as number),
    } as UpstreamLoginRecord;
  }

  /** Back to the upstream after this interaction's callback took its login, which answered again: to the interaction, as the broker callback sends an earlier state's. */
  function revisited(ctx: Context, uid: string): undefined {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`/interaction/${encodeURIComponent(uid)}`);
    return undefined;
  }

  /**
   * A page of a sign-in oidc-provider no longer has (Back after signing in, a bookmark, a second
   * tab): "this sign-in is finished", on to the service, when it ended; else "expired", with the way
   * back to the service when it is known.
   */
  async function goneInteraction(ctx: Context, uid: string, cause?: unknown) {
    // oidc-provider's uids are 21 url-safe characters; anything else was never a sign-in here.
    const trail = /^[A-Za-z0-9_-]{1,64}$/.test(uid) ? await store.getTemp<InteractionTrail>(trailKey(uid)) : undefined;
    const client = trail ? registry.client(trail.clientId) : undefined;
    const home = client ? serviceHome(client) : undefined;
    ctx.set('Cache-Control', 'no-store');
    if (trail?.ended) {
      const service = trail.clientId && serviceName(trail.clientId);
      ctx.status = 200;
      ctx.body = renderPage(ctx, 'finished', 'finished.title', {
        client: service,
        text: pagesOf(ctx).translate(ctx)(trail.ended === 'signed_in' ? 'finished.signedIn' : 'finished.cancelled', { client: service }),
        clientLogo: pagesOf(ctx).logoImage(client?.logo, 'logo'),
        actions: home ? new Trusted(`<a class="button" href="${escapeHtml(home)}">${escapeHtml(pagesOf(ctx).translate(ctx)('finished.continue', { client: service }))}</a>`) : undefined,
      });
      return;
    }
    const details: ErrorDetails = { ...(cause === undefined ? {} : { cause }), log: { uid, client: trail?.clientId } };
    if (home && trail) details.back = { href: home, service: serviceName(trail.clientId) };
    return showError(ctx, 'session_expired', details);
  }

  function refuse(
    ctx: Context,
    page: ErrorPage,
    outcome: LoginOutcome,
    participant: string | undefined,
    client: string | undefined,
    extra: { cause?: unknown; uid?: string; log?: Record<string, unknown> } & Pick<ErrorDetails, 'message' | 'messageKey' | 'args' | 'retry'> = {},
  ) {
    observe({ participant, client, outcome });
    const { uid, log, ...rest } = extra;
    const back = wayBack(uid, client);
    const about = shown(participant);
    showError(ctx, page, {
      ...rest,
      ...(back ? { back } : {}),
      ...(about ? { participant: about } : {}),
      log: { participant, client, outcome, ...log },
    });
  }

  /** An upstream failure: back to the service when it expects that error, else the page for its kind (with the upstream's own error in the log). */
  async function upstreamFailure(ctx: Context, error: UpstreamError, participant: string, client: string, uid: string | undefined) {
    const returned = error.kind === 'refused' && error.upstreamError ? RETURNED_TO_SERVICE[error.upstreamError] : undefined;
    if (returned && uid) {
      observe({ participant, client, outcome: error.outcome });
      ctx.state.log?.info({ participant, client, outcome: error.outcome, returned: returned.error, ...error.logFields() }, 'the upstream answered an error: returned to the service');
      await markEnded(uid, client, 'cancelled');
      return deps.provider().interactionFinished(ctx.req, ctx.res, returned, { mergeWithLastSubmission: false });
    }
    return refuse(ctx, UPSTREAM_PAGES[error.kind], error.outcome, participant, client, {
      cause: error,
      ...(uid ? { uid, retry: `/interaction/${uid}` } : {}),
      log: error.logFields(),
    });
  }

  /** Checks that the participant may be used for this client now, then redirects to its upstream. */
  async function startUpstream(ctx: Context, uid: string, params: Record<string, unknown>, participant: ActiveParticipant, loginHint: string | undefined) {
    const id = participant.config.id;
    const clientId = String(params.client_id);
    const client = registry.client(clientId);
    if (!participant.config.enabled) return refuse(ctx, 'participant_disabled', 'participant_disabled', id, clientId, { uid });
    if (client?.participants && !client.participants.includes(id)) return refuse(ctx, 'participant_not_allowed', 'participant_not_allowed', id, clientId, { uid });
    const forwarded = forwardedParams(params, participant.config.upstream.forwardParams, loginHint);
    try {
      const { url, pending } = await connectors.get(participant).beginLogin({ redirectUri: connectors.redirectUri(id), params: forwarded, state: loginState(uid) });
      const record: UpstreamLoginRecord = {
        interactionUid: uid,
        participantId: id,
        clientId,
        pending,
        ...(forwarded.max_age !== undefined ? { maxAge: forwarded.max_age } : {}),
        // The login began as its pending login was made.
        startedAt: pending.createdAt,
      };
      await store.setTemp(pendingKey(pending.state), compactPending(record), settings.tokens.interactionTtl);
      ctx.state.log?.info({ participant: id, client: clientId }, 'redirecting to upstream');
      ctx.redirect(url);
    } catch (error) {
      if (error instanceof UpstreamError) return upstreamFailure(ctx, error, id, clientId, uid);
      throw error;
    }
  }

  /** Home-realm discovery from an email address: the canonical domain (domains/index.ts), matched exactly. */
  async function discoverFromEmail(ctx: Context, uid: string, params: Record<string, unknown>, email: string) {
    const clientId = String(params.client_id);
    const domain = emailDomain(email);
    if (!domain) return refuse(ctx, 'invalid_email', 'invalid_email', undefined, clientId, { uid, retry: `/interaction/${uid}` });
    // The page names the domain as the user typed it.
    const typed = email.slice(email.indexOf('@') + 1);
    const claim = registry.domainClaim(domain);
    if (claim && !claim.verified) {
      // Claimed by a participant but not proven (domain-proof/): routes no login, as if unknown.
      return refuse(ctx, 'unknown_domain', 'domain_unverified', claim.participant.config.id, clientId, {
        uid,
        retry: `/interaction/${uid}`,
        messageKey: 'error.unknown_domain.unverified',
        args: { domain: typed },
      });
    }
    const participant = claim?.participant;
    if (!participant) {
      return refuse(ctx, 'unknown_domain', 'unknown_domain', undefined, clientId, { uid, retry: `/interaction/${uid}`, args: { domain: typed } });
    }
    return startUpstream(ctx, uid, params, participant, email);
  }

  /**
   * Home-realm discovery: the work email form. A wrong address is marked aria-invalid, described by
   * the error, and announced (role=alert). Cancel ends the sign-in at the service with access_denied.
   */
  function loginPage(ctx: Context, uid: string, clientId: string, email = '', invalid = false) {
    const client = registry.client(clientId);
    const pages = pagesOf(ctx);
    const t = pages.translate(ctx);
    ctx.body = renderPage(ctx, 'login', 'login.title', {
      client: client?.client_name ?? clientId,
      clientLogo: pages.logoImage(client?.logo, 'logo'),
      action: `/interaction/${uid}/login`,
      cancelAction: `/interaction/${uid}/abort`,
      email,
      invalid: invalid ? new Trusted(' aria-invalid="true"') : undefined,
      errorBlock: invalid ? new Trusted(`<p id="email-error" class="error" role="alert">${escapeHtml(t('login.emailInvalid'))}</p>`) : undefined,
      describedBy: invalid ? 'email-error email-hint' : 'email-hint',
    });
  }

  router.get('/interaction/:uid', async (ctx) => {
    const uid = ctx.params.uid!;
    const interaction = await detailsIfAny(ctx);
    if (!interaction || interaction.uid !== uid) return goneInteraction(ctx, uid);
    const params = interaction.params as Record<string, unknown> & { client_id: string; login_hint?: string; idp_hint?: string };
    ctx.set('Cache-Control', 'no-store');
    // The sign-in's trail (its service) was written with the interaction (trail.ts).

    // select_account (provider/index.ts) is a sign-in like login: discovery again, then the upstream with prompt=select_account.
    if (interaction.prompt.name === 'login' || interaction.prompt.name === 'select_account') {
      if (params.idp_hint) {
        // A participant id, or one of its domains.
        const participant = registry.participant(params.idp_hint) ?? registry.participantForDomain(params.idp_hint);
        if (!participant) return refuse(ctx, 'unknown_participant', 'unknown_domain', undefined, params.client_id, { uid, log: { idp_hint: params.idp_hint.slice(0, 200) } });
        return startUpstream(ctx, uid, params, participant, params.login_hint);
      }
      if (params.login_hint && emailDomain(params.login_hint)) return discoverFromEmail(ctx, uid, params, params.login_hint);
      return loginPage(ctx, uid, params.client_id);
    }

    if (interaction.prompt.name === 'consent') {
      const client = registry.client(params.client_id);
      const session = interaction.session;
      const participantId = session?.accountId?.split(':')[0];
      const scopes = String((interaction.params as { scope?: string }).scope ?? 'openid').split(' ').filter(Boolean);
      const pages = pagesOf(ctx);
      const t = pages.translate(ctx);
      const about = shown(participantId);
      const described = (scope: string) => (pages.messages.catalogues.get(REFERENCE_LOCALE)?.[`consent.scope.${scope}`] === undefined ? scope : t(`consent.scope.${scope}`));
      ctx.body = renderPage(ctx, 'consent', 'consent.title', {
        client: client?.client_name ?? params.client_id,
        clientLogo: pages.logoImage(client?.logo, 'logo'),
        participant: about?.name ?? t('consent.yourOrganisation'),
        participantBadge: about?.logo ? pages.participantBadge(ctx, about) : undefined,
        scopeItems: new Trusted(scopes.map((s) => `<li>${escapeHtml(described(s))}</li>`).join('')),
        action: `/interaction/${uid}/consent`,
      });
      return;
    }
    return showError(ctx, 'internal', { log: { prompt: interaction.prompt.name } });
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const uid = ctx.params.uid!;
    const interaction = await detailsIfAny(ctx);
    if (!interaction || interaction.uid !== uid) return goneInteraction(ctx, uid);
    if (interaction.prompt.name !== 'login' && interaction.prompt.name !== 'select_account') return showError(ctx, 'session_expired');
    const form = await readForm(ctx);
    const email = (form.get('email') ?? '').trim();
    const clientId = String(interaction.params.client_id);
    if (!emailDomain(email)) {
      ctx.status = 400;
      observe({ participant: undefined, client: clientId, outcome: 'invalid_email' });
      return loginPage(ctx, uid, clientId, email.slice(0, 320), true);
    }
    return discoverFromEmail(ctx, uid, interaction.params, email);
  });

  // The way back to the service from an error page: the sign-in ends there with access_denied.
  router.post('/interaction/:uid/abort', async (ctx) => {
    const uid = ctx.params.uid!;
    const interaction = await detailsIfAny(ctx);
    if (!interaction || interaction.uid !== uid) return goneInteraction(ctx, uid);
    await markEnded(uid, String(interaction.params.client_id), 'cancelled');
    return deps.provider().interactionFinished(ctx.req, ctx.res, { error: 'access_denied', error_description: 'the user went back to the service without signing in' }, { mergeWithLastSubmission: false });
  });

  router.post('/interaction/:uid/consent', async (ctx) => {
    const provider = deps.provider();
    const interaction = await detailsIfAny(ctx);
    if (!interaction || interaction.uid !== ctx.params.uid) return goneInteraction(ctx, ctx.params.uid!);
    if (interaction.prompt.name !== 'consent') return showError(ctx, 'session_expired');
    const form = await readForm(ctx);
    if (form.get('decision') !== 'allow') {
      await markEnded(interaction.uid, String(interaction.params.client_id), 'cancelled');
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
    await markEnded(interaction.uid, String(params.client_id), 'signed_in');
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  });

  /** The browser's interaction for a callback, or undefined once the page of a gone one is shown (no interaction cookie, expired, its session changed). */
  async function interactionOrGone(ctx: Context, uid: string) {
    try {
      return await details(ctx);
    } catch (cause) {
      if (!(cause instanceof oidcErrors.SessionNotFound)) throw cause;
      observe({ participant: undefined, client: undefined, outcome: 'session_expired' });
      await goneInteraction(ctx, uid, cause);
      return undefined;
    }
  }

  /**
   * The callback and its pending login of a redirect whose check binds its state to this interaction,
   * in a browser whose interaction cookie names it: both taken (single use) in the same round trip as
   * the interaction's read. `carried` is the carried callback's take, or the answer the redirect
   * itself brought (takeDirectCallback). Undefined once the answer is given (refused, or gone).
   */
  async function takeBoundCallback(ctx: Context, uid: string, state: string, carriedTake: Promise<CarriedCallback | undefined>): Promise<{ carried: CarriedCallback; record: UpstreamLoginRecord } | undefined> {
    const takes = Promise.all([carriedTake, swapPending(state, uid)]);
    takes.catch(() => {}); // awaited below, unless the interaction fails first
    // Gone (expired, or its session changed): what was taken could not finish.
    const interaction = await interactionOrGone(ctx, uid);
    if (!interaction) return undefined;
    const [carried, found] = await takes;
    if (found && isTaken(found) && found.taken === uid && interaction.uid === uid) return revisited(ctx, uid);
    const record = found && !isTaken(found) ? found : undefined;
    const login = record && !('testLogin' in record) ? record : undefined;
    if (!carried || !login || interaction.uid !== uid || login.interactionUid !== uid || carried.state !== state || carried.participantId !== login.participantId) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', record?.participantId ?? carried?.participantId, login?.clientId);
    }
    return { carried, record: login };
  }

  /**
   * The callback and its pending login of a redirect without a check (made by an earlier version), or
   * in a browser without this interaction's cookie: read with the interaction, and taken only once
   * they are known to be this browser's interaction's (another browser burns nothing the real login
   * still needs). Undefined once the answer is given.
   */
  async function takeCheckedCallback(ctx: Context, uid: string, ref: string): Promise<{ carried: CarriedCallback; record: UpstreamLoginRecord } | undefined> {
    // The carried callback is read (not taken) in the same round trip as the interaction.
    const carriedRead = store.getTemp<CarriedCallback>(callbackKey(ref));
    carriedRead.catch(() => {}); // awaited below, unless the interaction fails first
    // Another browser (no interaction cookie): nothing is taken, the real login can still finish.
    const interaction = await interactionOrGone(ctx, uid);
    if (!interaction) return undefined;
    const carried = await carriedRead;
    // A callback that does not name its interaction: its record is read first.
    const read = carried && carried.interactionUid === undefined ? await readPending(carried.state) : undefined;
    const known = read && !isTaken(read) && !('testLogin' in read) ? read : undefined;
    const carriedFor = carried?.interactionUid ?? known?.interactionUid;
    if (!carried || carriedFor === undefined || interaction.uid !== carriedFor || uid !== carriedFor || (known && known.participantId !== carried.participantId)) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', known?.participantId ?? carried?.participantId, known?.clientId);
    }
    // Single use: a replay, or a race with another tab, finds nothing. Only this browser's interaction
    // gets here, so taking both at once burns nothing another browser could still finish.
    const [tookCallback, taken] = await Promise.all([store.takeTemp(callbackKey(ref)), takePending(carried.state, uid)]);
    const record = taken && !('testLogin' in taken) ? taken : undefined;
    if (!tookCallback || !record || record.participantId !== carried.participantId || record.interactionUid !== uid) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', taken?.participantId ?? carried.participantId, record?.clientId);
    }
    return { carried, record };
  }

  /**
   * The answer of a GET callback that rides in its redirect (directCheck): refused, with nothing
   * taken, unless the check holds; then its pending login is taken as a carried one's is (bound, or
   * read with the interaction first). Undefined once the answer is given.
   */
  async function takeDirectCallback(ctx: Context, uid: string): Promise<{ carried: CarriedCallback; record: UpstreamLoginRecord } | undefined> {
    const answer = new URLSearchParams(ctx.querystring);
    const participantId = answer.get(VIA_PARAM);
    const check = answer.get(CHECK_PARAM);
    answer.delete(VIA_PARAM);
    answer.delete(CHECK_PARAM);
    const query = answer.toString();
    const state = answer.get('state');
    if (participantId === null || check === null || state === null || stateInteraction(state) !== uid || !safeEqual(check, directCheck(deps.callbackCheckKey, uid, participantId, query))) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', undefined, undefined);
    }
    const carried: CarriedCallback = { participantId, state, method: 'GET', query, body: '' };
    if (providerCookie(deps.provider(), ctx.req, ctx.res, 'interaction') === uid) return takeBoundCallback(ctx, uid, state, Promise.resolve(carried));
    // Another browser (no interaction cookie, or another's): nothing is taken, the real login can still finish.
    const interaction = await interactionOrGone(ctx, uid);
    if (!interaction) return undefined;
    if (interaction.uid !== uid) return void refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
    const found = await swapPending(state, uid);
    if (found && isTaken(found) && found.taken === uid) return revisited(ctx, uid);
    const record = found && !isTaken(found) && !('testLogin' in found) ? found : undefined;
    if (!record || record.participantId !== participantId || record.interactionUid !== uid) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', record?.participantId ?? participantId, record?.clientId);
    }
    return { carried, record };
  }

  /**
   * Where a GET answer goes on with its own parameters (directCheck), when its state names its
   * interaction (stateInteraction); undefined when it is to be carried (an earlier version's state,
   * an answer with a parameter of Concord's own, or one too long for a redirect).
   */
  function directRedirect(participantId: string, state: string, query: URLSearchParams): string | undefined {
    const uid = stateInteraction(state);
    if (uid === undefined || query.has(VIA_PARAM) || query.has(CHECK_PARAM)) return undefined;
    const answer = query.toString();
    const check = directCheck(deps.callbackCheckKey, uid, participantId, answer);
    const url = `/interaction/${uid}/callback?${answer}&${new URLSearchParams({ [VIA_PARAM]: participantId, [CHECK_PARAM]: check })}`;
    // Within the edge's limit on a request's URL (http/request-limits.ts), else carried.
    return url.length <= MAX_URL_CHARS ? url : undefined;
  }

  // The upstream's answer lands here: by redirect (GET, response_mode=query) or posted (form_post).
  // The interaction cookie is SameSite=Lax with the path /interaction/{uid}: it comes neither here nor
  // with a cross-site POST. So this route only sends the answer on to /interaction/{uid}/callback by
  // a 303: a top-level GET, which brings the cookie, and there the cookie binds the answer to the
  // browser that began the login (no login CSRF, whichever way the answer came). A GET answer whose
  // state names its interaction rides in that redirect, under its check (directRedirect: no store
  // call); any other is carried (stored, single-use, under a random reference) after the pending login
  // under its state is found.
  async function brokerCallback(ctx: Context) {
    const participantId = ctx.params.participantId!;
    const participant = registry.participant(participantId);
    if (!participant) return refuse(ctx, 'unknown_participant', 'unknown_participant', undefined, undefined, { log: { path: ctx.path } });
    let body = new URLSearchParams();
    if (ctx.method === 'POST') {
      const raw = (ctx.state.checked as { rawForm?: string } | undefined)?.rawForm;
      try {
        body = raw !== undefined ? new URLSearchParams(raw) : await readForm(ctx);
      } catch (cause) {
        return refuse(ctx, 'session_expired', 'callback_invalid', participantId, undefined, { cause });
      }
    }
    const callback: CallbackInput = { method: ctx.method === 'POST' ? 'POST' : 'GET', query: new URLSearchParams(ctx.querystring), body };
    const state = connectors.get(participant).callbackState(callback);
    if (!state || state.length > 512) return refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
    // A GET answer whose state names its interaction goes on with its own parameters, bound by their
    // check: no store call here (the pending login is taken there, once, as a carried one's is).
    const direct = callback.method === 'GET' ? directRedirect(participantId, state, callback.query) : undefined;
    if (direct) {
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 303;
      return ctx.redirect(direct);
    }
    // The pending login is read and the callback carried in one round trip (the callback does not
    // wait for the record: the redirect names the interaction, bound to the state by its check).
    const ref = randomBytes(24).toString('base64url');
    const carried: CarriedCallback = { participantId, state, method: callback.method, query: callback.query.toString(), body: body.toString() };
    const [found] = await Promise.all([
      readPending(state),
      store.setTemp(callbackKey(ref), carried, Math.min(CALLBACK_TTL_S, settings.tokens.interactionTtl)),
    ]);
    const record = found && !isTaken(found) ? found : undefined;
    if (!record || record.participantId !== participantId || 'testLogin' in record) {
      // Carried for nothing: not left behind.
      await store.deleteTemp(callbackKey(ref));
    }
    if (!record) {
      // Back to the upstream after signing in, which answered again: that sign-in's page says it is
      // finished (or, should it not have finished, that it expired). The login's mark names it; an
      // earlier version kept it under the state's trail instead (read until those expire).
      const finished = found ? (found as TakenLogin).taken : await store.getTemp<string>(stateTrailKey(state));
      if (finished) {
        ctx.set('Cache-Control', 'no-store');
        ctx.status = 303;
        return ctx.redirect(`/interaction/${encodeURIComponent(finished)}`);
      }
    }
    if (!record || record.participantId !== participantId) return refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
    if ('testLogin' in record) {
      // A console test login: single use, and it ends here (no interaction, no service).
      if (!(await store.takeTemp(pendingKey(state)))) return refuse(ctx, 'session_expired', 'state_mismatch', participantId, undefined);
      return finishTestLogin(ctx, store, connectors, participant, record, callback);
    }
    const uid = record.interactionUid;
    const query = new URLSearchParams({ ref, state, check: callbackCheck(deps.callbackCheckKey, uid, state, ref) });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`/interaction/${uid}/callback?${query}`);
  }
  router.get('/broker/:participantId/callback', brokerCallback);
  router.post('/broker/:participantId/callback', brokerCallback);
  // SAML's HTTP-POST binding (SAML bindings 3.5): the Response posted to the ACS, RelayState in the
  // role of state; from here on the same path as any callback.
  router.post('/saml/:participantId/acs', brokerCallback);

  /** The callback carried under `ref` (the redirect `?ref&state&check`) and its pending login. Undefined once the answer is given. */
  async function takeCarriedCallback(ctx: Context, uid: string): Promise<{ carried: CarriedCallback; record: UpstreamLoginRecord } | undefined> {
    const ref = ctx.query.ref;
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 64) {
      return void refuse(ctx, 'session_expired', 'state_mismatch', undefined, undefined);
    }
    const { state, check } = ctx.query;
    const bound =
      typeof state === 'string' && state.length > 0 && state.length <= 512 && typeof check === 'string' &&
      safeEqual(check, callbackCheck(deps.callbackCheckKey, uid, state, ref)) &&
      providerCookie(deps.provider(), ctx.req, ctx.res, 'interaction') === uid;
    return bound ? takeBoundCallback(ctx, uid, state, store.takeTemp<CarriedCallback>(callbackKey(ref))) : takeCheckedCallback(ctx, uid, ref);
  }

  router.get('/interaction/:uid/callback', async (ctx) => {
    const uid = ctx.params.uid!;
    // A GET answer rides in the redirect (concord_check); a posted one, or an earlier state's, is carried (ref).
    const taken = ctx.query[CHECK_PARAM] !== undefined ? await takeDirectCallback(ctx, uid) : await takeCarriedCallback(ctx, uid);
    if (!taken) return;
    const { carried, record } = taken;
    const { participantId, clientId } = record;

    const participant = registry.participant(participantId);
    if (!participant) return refuse(ctx, 'unknown_participant', 'unknown_participant', participantId, clientId, { uid });
    if (!participant.config.enabled) return refuse(ctx, 'participant_disabled', 'participant_disabled', participantId, clientId, { uid });

    let identity;
    try {
      const callback: CallbackInput = { method: carried.method, query: new URLSearchParams(carried.query), body: new URLSearchParams(carried.body) };
      identity = await connectors.get(participant).completeLogin(callback, record.pending);
    } catch (error) {
      if (error instanceof UpstreamError) return upstreamFailure(ctx, error, participantId, clientId, uid);
      throw error;
    }

    // max_age (OIDC Core 3.1.2.1): the service asked for an authentication that recent, and the
    // upstream was asked for it too; an older one is not passed off as fresh.
    const now = Math.floor(Date.now() / 1000);
    if (record.maxAge !== undefined && identity.authTime !== undefined && identity.authTime + record.maxAge + AUTH_TIME_TOLERANCE_S < now) {
      observe({ participant: participantId, client: clientId, outcome: 'upstream_error' });
      ctx.state.log?.warn({ participant: participantId, client: clientId, maxAge: record.maxAge, authTime: identity.authTime }, 'the upstream did not re-authenticate within max_age: login_required returned to the service');
      return deps.provider().interactionFinished(
        ctx.req,
        ctx.res,
        { error: 'login_required', error_description: 'the organisation’s sign-in service did not re-authenticate the user within max_age' },
        { mergeWithLastSubmission: false },
      );
    }

    const outcome = participant.mapping.apply(identity.claims);
    if (!outcome.ok) {
      observe({ participant: participantId, client: clientId, outcome: outcome.code });
      const back = wayBack(uid, clientId);
      return showError(ctx, outcome.code === 'mapping_rejected' ? 'mapping_rejected' : 'claims_not_accepted', {
        ...(outcome.message ? { message: outcome.message } : {}),
        ...(back ? { back } : {}),
        ...(shown(participantId) ? { participant: shown(participantId)! } : {}),
        log: { participant: participantId, client: clientId, outcome: outcome.code, rule: outcome.ruleIndex, requirement: outcome.requirement },
      });
    }

    const accountId = accountIdOf(participantId, identity.subject);
    // auth_time, acr and amr of Concord's tokens are the upstream's: it is where the user authenticated.
    const login = {
      accountId,
      ...(identity.authTime !== undefined ? { ts: Math.min(identity.authTime, now) } : {}),
      ...(identity.amr ? { amr: identity.amr } : {}),
      ...(identity.acr ? { acr: identity.acr } : {}),
    };
    // What this login keeps (its claims, its upstream session, what its logout and re-checks need)
    // goes to the Concord session oidc-provider puts it in, not to the account (src/sessions): sealed
    // for this interaction, it rides in the interaction's result (HELD_LOGIN) to the resume, where it
    // is bound to that session; no key of its own.
    const confirmedAt = sessions.nowSeconds();
    // Only a re-check state a re-check can use (none that expires before the first is due).
    const refresh = refreshWorthKeeping(identity.refresh, participant.config.session, confirmedAt);
    // The upstream state (its tokens) is written once, here, under a key of its own that the session
    // takes over; the held login only names it (Sessions.holdAtCallback).
    const { held, written } = sessions.holdAtCallback(uid, {
      accountId,
      participantId,
      claims: outcome.claims,
      ...(identity.sessionId !== undefined ? { upstreamSessionId: identity.sessionId } : {}),
      upstream: { ...(identity.logout ? { logout: identity.logout } : {}), ...(refresh ? { refresh } : {}) },
      confirmedAt,
    }, settings.tokens.interactionTtl);
    // The account, the trail, the upstream state and the interaction's result (with the held login)
    // go out together (one round trip): none depends on another. The browser is sent on only once
    // all are written; should one fail, the browser gets the error page.
    const [, , , returnTo] = await Promise.all([
      written,
      accounts.save({ accountId, participantId, upstreamIssuer: identity.issuer, upstreamSubject: identity.subject, claims: outcome.claims, updatedAt: now }),
      markEnded(uid, clientId, 'signed_in'),
      // The select_account prompt (provider/index.ts) is answered by this sign-in too.
      deps.provider().interactionResult(ctx.req, ctx.res, { login, select_account: {}, [HELD_LOGIN]: held }, { mergeWithLastSubmission: false }),
    ]);
    observe({ participant: participantId, client: clientId, outcome: 'success', durationMs: Date.now() - record.startedAt, upstreamMs: identity.durationMs });
    ctx.state.log?.info({ participant: participantId, client: clientId }, 'brokered login succeeded');
    // As interactionFinished answers: 303 to the authorization endpoint's resume.
    ctx.status = 303;
    ctx.redirect(returnTo);
  });

  // RP-initiated logout. oidc-provider ends the Concord session at the confirm step and redirects to the
  // RP's post_logout_redirect_uri (with its state). When the user's participant offers a logout
  // endpoint, that redirect is kept under a random id and the browser visits the upstream first (with
  // what the login kept for it: for OIDC the upstream ID token as id_token_hint); the upstream sends it
  // back to /broker/{participantId}/logged-out with the id as state, and from there on to the RP.
  router.post(END_SESSION_CONFIRM, async (ctx, next) => {
    await next();
    const { oidc } = ctx as unknown as EndSessionContext;
    const session = oidc?.session;
    const accountId = session?.accountId;
    const returnTo = ctx.response.get('Location');
    if (ctx.status !== 303 || !returnTo || !session?.uid || !accountId) return;
    // This session's own upstream logout hint (not the account's last login's), read before the session's record goes.
    const upstream = await sessions.upstream(session.uid);
    const record = await sessions.get(session.uid);
    await sessions.afterEndSession(session.uid, { destroyed: session.destroyed === true, ...(session.authorizations ? { authorizations: session.authorizations } : {}) });
    if (!oidc?.params?.logout || !session.destroyed) return;
    const legacy = record ? undefined : await accounts.find(accountId);
    const participant = registry.participant(record?.participantId ?? legacy?.participantId ?? '');
    if (!participant) return;
    const participantId = participant.config.id;
    try {
      const id = randomBytes(24).toString('base64url');
      const logout = upstream.logout ?? (legacy ? upstreamLogoutOf(legacy) : undefined);
      const url = await connectors.get(participant).logoutUrl({
        postLogoutRedirectUri: upstreamLogoutReturn(settings.issuer, participantId),
        state: id,
        ...(logout ? { logout } : {}),
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
      if (error instanceof UpstreamError && error.kind === 'unavailable') {
        // The IdP's session may outlive this logout: say so (a shared computer), then go on to the service.
        ctx.status = 200;
        ctx.remove('Location');
        ctx.set('Cache-Control', 'no-store');
        const about = shown(participantId);
        ctx.body = renderPage(ctx, 'logged-out-upstream-unavailable', 'loggedOut.title', {
          participant: participant.config.displayName,
          participantBadge: about?.logo ? pagesOf(ctx).participantBadge(ctx, about) : undefined,
          continueUrl: returnTo,
        });
      }
    }
  });

  /** The upstream's logout is done: on to where oidc-provider was sending the browser, by the logout's state. */
  async function continueAfterUpstreamLogout(ctx: Context, participantId: string, state: unknown) {
    const key = typeof state === 'string' && state.length > 0 && state.length <= 256 ? logoutKey(state) : undefined;
    // Checked before it is taken: another participant's return path cannot use up this one's record.
    const found = key ? await store.getTemp<UpstreamLogoutRecord>(key) : undefined;
    const record = found && found.participantId === participantId ? await store.takeTemp<UpstreamLogoutRecord>(key!) : undefined;
    ctx.set('Cache-Control', 'no-store');
    if (!record) {
      // Signed out already; without its record there is nowhere safe to send the browser on to.
      ctx.body = renderPage(ctx, 'logged-out', 'loggedOut.title', { text: pagesOf(ctx).translate(ctx)('loggedOut.text') });
      return;
    }
    ctx.status = 303;
    ctx.redirect(record.returnTo);
  }

  router.get('/broker/:participantId/logged-out', (ctx) => continueAfterUpstreamLogout(ctx, ctx.params.participantId!, ctx.query.state));

  // SAML single logout (SAML profiles 4.4), HTTP-Redirect or HTTP-POST binding: the IdP's
  // LogoutResponse to Concord's LogoutRequest (then on to the service, as above), or the IdP's own
  // LogoutRequest, which ends the user's Concord sessions and is answered with a signed LogoutResponse.
  async function singleLogout(ctx: Context) {
    const participantId = ctx.params.participantId!;
    const participant = registry.participant(participantId);
    const connector = participant && connectors.get(participant);
    if (!connector?.logoutMessage) {
      return showError(ctx, 'broker_not_found', { log: { participant: participant ? participantId : undefined, outcome: 'broker_not_found', path: ctx.path.slice(0, 200) } });
    }
    const raw = (ctx.state.checked as { rawForm?: string } | undefined)?.rawForm;
    const callback: CallbackInput = {
      method: ctx.method === 'POST' ? 'POST' : 'GET',
      query: new URLSearchParams(ctx.querystring),
      body: new URLSearchParams(ctx.method === 'POST' ? (raw ?? '') : ''),
      rawQuery: ctx.querystring,
    };
    let message;
    try {
      message = await connector.logoutMessage(callback);
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      return showError(ctx, UPSTREAM_PAGES[error.kind], { cause: error, log: { participant: participantId, outcome: error.outcome, logout: true, ...error.logFields() } });
    }
    if (message.kind === 'logout_response') return continueAfterUpstreamLogout(ctx, participantId, message.state);
    // IdP-initiated: the Concord sessions of that upstream session (its SessionIndex), or of the
    // subject, end here, as any partner's logout ends them (their services are told).
    let ended = false;
    if (message.subject !== undefined || message.sessionIndex !== undefined) {
      const found = await sessions.endByUpstream({
        participantId,
        ...(message.subject !== undefined ? { subject: message.subject } : {}),
        ...(message.sessionIndex !== undefined ? { sessionId: message.sessionIndex } : {}),
      });
      ended = true;
      ctx.state.log?.info({ participant: participantId, by: message.sessionIndex !== undefined ? 'SessionIndex' : 'NameID', sessions: found.length }, 'the IdP ended its session: the Concord sessions ended');
    } else {
      ctx.state.log?.warn({ participant: participantId }, 'the IdP ended a session Concord cannot match (no SessionIndex, no persistent NameID as the subject): nothing ended here');
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(await message.respond(ended));
  }
  router.get('/saml/:participantId/slo', singleLogout);
  router.post('/saml/:participantId/slo', singleLogout);

  // Concord's SP metadata for a SAML participant, for its IdP to register (and re-read at a key rollover).
  router.get('/saml/:participantId/metadata', (ctx) => {
    const participant = registry.participant(ctx.params.participantId!);
    const metadata = participant && connectors.get(participant).serviceMetadata?.();
    if (!metadata) return showError(ctx, 'broker_not_found', { log: { outcome: 'broker_not_found', path: ctx.path.slice(0, 200) } });
    ctx.type = metadata.contentType;
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = metadata.body;
  });

  // A partner's IdP ends its sessions by the back channel (OIDC Back-Channel Logout 1.0).
  router.post(
    '/broker/:participantId/backchannel-logout',
    upstreamBackchannelLogout({ registry, connectors, sessions, store, ...(deps.observeUpstreamLogout ? { observe: deps.observeUpstreamLogout } : {}) }),
  );

  // Anything else under /broker/: Concord's page, a log line with its reference, and a count.
  router.all('/broker/{*rest}', (ctx) => {
    const known = /^\/broker\/[^/]+\/(callback|logged-out|backchannel-logout)$/.test(ctx.path);
    if (known && ctx.path.endsWith('/backchannel-logout')) {
      ctx.status = 405;
      ctx.set('Allow', 'POST');
      ctx.body = { error: 'invalid_request', error_description: 'use POST with a logout_token' };
      return;
    }
    refuse(ctx, 'broker_not_found', 'broker_not_found', undefined, undefined, { log: { method: ctx.method, path: ctx.path.slice(0, 200) } });
    if (known) {
      ctx.status = 405;
      ctx.set('Allow', ctx.path.endsWith('/callback') ? 'GET, POST' : 'GET');
    }
  });

  router.all('/saml/{*rest}', (ctx) => {
    const known = /^\/saml\/[^/]+\/(acs|slo|metadata)$/.exec(ctx.path)?.[1];
    showError(ctx, 'broker_not_found', { log: { outcome: 'broker_not_found', method: ctx.method, path: ctx.path.slice(0, 200) } });
    if (known) {
      ctx.status = 405;
      ctx.set('Allow', known === 'acs' ? 'POST' : known === 'slo' ? 'GET, POST' : 'GET');
    }
  });

  return router;
}

/**
 * The service's authorization parameters to pass on, as far as the participant forwards them
 * (`upstream.forwardParams`); `loginHint` is the address the user typed, or the service's hint.
 */
function forwardedParams(params: Record<string, unknown>, allowed: readonly string[], loginHint: string | undefined): ForwardedParams {
  const out: ForwardedParams = {};
  const words = (value: unknown) => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);
  if (allowed.includes('login_hint') && loginHint) out.login_hint = loginHint;
  if (allowed.includes('prompt')) {
    const prompt = words(params.prompt).filter((p) => PROMPTS.has(p));
    if (prompt.length) out.prompt = prompt;
  }
  if (allowed.includes('max_age')) {
    const maxAge = typeof params.max_age === 'number' ? params.max_age : typeof params.max_age === 'string' && /^\d{1,10}$/.test(params.max_age) ? Number(params.max_age) : undefined;
    if (maxAge !== undefined && Number.isSafeInteger(maxAge) && maxAge >= 0) out.max_age = maxAge;
  }
  if (allowed.includes('acr_values')) {
    const acr = words(params.acr_values);
    if (acr.length) out.acr_values = acr;
  }
  if (allowed.includes('ui_locales')) {
    const locales = words(params.ui_locales);
    if (locales.length) out.ui_locales = locales;
  }
  return out;
}

/** What the account kept for its upstream logout; accounts saved before the logout shape existed kept the ID token alone. */
function upstreamLogoutOf(account: BrokeredAccount): UpstreamLogout | undefined {
  if (account.upstreamLogout) return account.upstreamLogout;
  const legacy = (account as { upstreamIdToken?: unknown }).upstreamIdToken;
  return typeof legacy === 'string' ? { protocol: 'oidc', idTokenHint: legacy } : undefined;
}

/** Where a participant's IdP sends the browser back after its own logout; register it there as a post_logout_redirect_uri. */
export function upstreamLogoutReturn(issuer: string, participantId: string): string {
  return `${issuer}/broker/${participantId}/logged-out`;
}

/**
 * The service's home page, where Concord's pages send people back to once its sign-in is over:
 * its client_uri, else the origin of its first web redirect URI. None for a native app.
 */
export function serviceHome(client: ClientConfig): string | undefined {
  if (client.client_uri) return client.client_uri;
  const first = client.application_type === 'web' ? client.redirect_uris[0] : undefined;
  if (!first) return undefined;
  const url = new URL(first);
  return url.protocol === 'https:' || url.protocol === 'http:' ? `${url.origin}/` : undefined;
}

/** Whether two strings are equal, in a time that does not depend on where they differ. */
function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
