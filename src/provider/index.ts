import { createHmac } from 'node:crypto';
import Provider, { errors, interactionPolicy, type Account, type Configuration, type KoaContextWithOIDC, type AsymmetricSigningAlgorithm } from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import type { CookieSigner } from '../http/cookie-keys.ts';
import type { KeySet } from '../keys/index.ts';
import type { Registry } from '../participants/index.ts';
import type { Adapter, Store } from '../store/index.ts';
import type { Logger } from '../observability/index.ts';
import { escapeHtml, inlineScript, pagesOf, renderPage, showError, Trusted } from '../pages/index.ts';
import { indexingAdapter, type LogoutNotice, type SessionClient, type SessionRecord, type Sessions } from '../sessions/index.ts';
import { StoreFullError, StoreUnavailableError } from '../store/index.ts';
import { AccountStore, type BrokeredAccount } from './accounts.ts';
import { SCOPE_CLAIMS } from './claims.ts';
import { clientAdapter, EXTRA_CLIENT_METADATA, toClientMetadata } from './clients.ts';
import { recordJwtAccessTokens, statelessClientCredentials } from './access-tokens.ts';
import { allScopes, resourceIndicators } from './resources.ts';
export { openResourceServers } from './resources.ts';
import { hashedIdAdapter } from './hashed-ids.ts';
import { compactPayloads } from './compact-payloads.ts';
import { answerMissingProof, DPOP_ALGORITHMS } from './dpop.ts';
import { derivedKey } from './derived-key.ts';
import { LOCAL_SIGNING_ALGORITHMS, LocalSigningKey } from './local-signing.ts';

export { AccountStore, accountIdOf, type BrokeredAccount } from './accounts.ts';
export { SCOPE_CLAIMS, OIDC_SCOPES, claimsForScopes } from './claims.ts';
export { toClientMetadata } from './clients.ts';
export { jwtUserinfo } from './userinfo.ts';
export { jwtTokenEndpoints, liveAccessToken } from './access-tokens.ts';
export { sendLogoutToken, LogoutDeliveryError, BACKCHANNEL_LOGOUT_EVENT } from './logout-tokens.ts';
export { trackSessions } from './session-tracking.ts';
export { providerCookie } from './cookies.ts';
export { keyedHash } from './hashed-ids.ts';
import { readSessionAhead } from './session-tracking.ts';
export { dpopNonceSecret, userinfoDPoP } from './dpop.ts';

export interface ProviderDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  accounts: AccountStore;
  keySet: KeySet;
  /** The signer of signed cookies (src/http/cookie-keys.ts), shared with the public Koa app. */
  cookieKeys: CookieSigner;
  /** Secret of the pairwise subject identifiers (KeyManager.pairwiseSalt). */
  pairwiseSalt: string;
  /** HMAC key of the store keys of bearer values (codes, refresh tokens): tokenIdKey() of the same module. */
  tokenIdKey: Buffer;
  /** The 32-byte secret of DPoP nonces (dpop.ts dpopNonceSecret). */
  dpopNonceSecret: Buffer;
  /** Concord sessions: each login's claims and upstream state, their refresh-time checks. */
  sessions: Sessions;
  /** Queues logout tokens (sessions' LogoutDelivery): oidc-provider's own end_session sends through it too. */
  notify: (notices: LogoutNotice[]) => Promise<void>;
  /**
   * What the routes keep with oidc-provider's records, around the store's adapter of model `name`
   * (interactions/trail.ts: a new Interaction's trail); the adapter as it is when absent.
   */
  adapter?: (adapter: Adapter, name: string) => Adapter;
  log: Logger;
}

/** What findAccount answers: oidc-provider's Account, with the session it was found through (extraTokenClaims reads it). */
interface ConcordAccount extends Account {
  participantId: string;
  mapped: Record<string, unknown>;
  session?: SessionRecord;
}

type ClientWithExtras = { clientId: string; skip_consent?: boolean; access_token_claims?: string[]; sectorIdentifier?: string };

/** The one oidc-provider configuration of Concord. Built again (cheaply) when the key set changes. */
export function createProvider(deps: ProviderDeps): Provider {
  const { settings, store, registry, accounts, keySet, cookieKeys, pairwiseSalt, sessions, log } = deps;
  const secure = settings.issuer.startsWith('https://');
  // Every algorithm with a key (keys.algorithms) is offered for what Concord signs per client; access
  // tokens are the deployment's choice (keys.accessTokenAlgorithm). `none` and HMAC never.
  const offered = settings.keys.algorithms as AsymmetricSigningAlgorithm[];
  const accessTokenAlg = () => settings.keys.accessTokenAlgorithm as AsymmetricSigningAlgorithm;
  const t = settings.tokens;
  const withRoutes = deps.adapter ?? ((adapter: Adapter) => adapter);

  // A refresh token's session records are read with its grant (a store that keeps hints of the tokens it issued, redis.ts).
  store.readSessionsWith?.((sessionUid) => sessions.readAhead(sessionUid));
  const configuration: Configuration = {
    // Codes, refresh tokens and other bearer values are stored under a keyed hash of their value (hashed-ids.ts);
    // no record repeats its model or its id (compact-payloads.ts). A code's or refresh token's session
    // is read as soon as the token is (session-tracking.ts). `deps.adapter` adds what the routes keep
    // with oidc-provider's records (a new Interaction's trail: interactions/trail.ts), from the
    // payloads as oidc-provider saves them (outside compactPayloads).
    adapter: (name: string) => {
      if (name === 'Client') return clientAdapter(registry);
      const adapter = readSessionAhead(withRoutes(compactPayloads(hashedIdAdapter(indexingAdapter(store, name, sessions.ttlSeconds), name, deps.tokenIdKey), name, settings.issuer), name), name, sessions);
      // A client-credentials JWT has no record: its revocation marker, or a record of the release before (access-tokens.ts).
      return name === 'ClientCredentials' ? statelessClientCredentials(adapter, store) : adapter;
    },
    clients: [],
    // ES256 and EdDSA keys that sign (not the verify-only ones) sign in place with node:crypto (local-signing.ts).
    jwks: { keys: keySet.jwks.keys.map((jwk) => (jwk.key_ops === undefined && LOCAL_SIGNING_ALGORITHMS.has(jwk.alg ?? '') ? new LocalSigningKey(jwk) : jwk)) } as Configuration['jwks'],
    cookies: {
      keys: cookieKeys,
      // Own names, so a service or partner IdP on the same host (localhost in the demo) cannot clash.
      names: { session: 'concord_session', interaction: 'concord_interaction', resume: 'concord_resume' },
      long: { signed: true, secure, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, secure, httpOnly: true, sameSite: 'lax' },
    },
    claims: SCOPE_CLAIMS,
    scopes: allScopes(settings),
    // Services get the mapped claims in the ID token, without a userinfo round trip.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    extraParams: ['idp_hint'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      // OIDC Registration 2: a client that names no alg gets RS256 ID tokens (and JARM responses, JARM 3).
      id_token_signed_response_alg: 'RS256',
      authorization_signed_response_alg: 'RS256',
    },
    // What discovery lists as *_signing_alg_values_supported, and what a client may register.
    enabledJWA: { idTokenSigningAlgValues: offered, userinfoSigningAlgValues: offered, authorizationSigningAlgValues: offered, dPoPSigningAlgValues: [...DPOP_ALGORITHMS] },
    extraClientMetadata: {
      properties: [...EXTRA_CLIENT_METADATA],
      validator(_ctx, key, value) {
        if (key === 'skip_consent' && value !== undefined && typeof value !== 'boolean') throw new Error('skip_consent must be a boolean');
      },
    },
    features: {
      // LocalSigningKey (local-signing.ts) is oidc-provider's ExternalSigningKey.
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      devInteractions: { enabled: false },
      // OIDC Back-Channel Logout 1.0: clients register backchannel_logout_uri (and _session_required);
      // every way a session ends sends them logout tokens through Concord's delivery (src/sessions).
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      // Clients' userinfo_signed_response_alg (OIDC Core 5.3.2): Concord's userinfo (userinfo.ts) signs
      // the answer for them; oidc-provider validates the metadata and advertises the algorithms.
      jwtUserinfo: { enabled: true },
      // JARM: a client's authorization_signed_response_alg signs its authorization responses
      // (response_mode=jwt, query.jwt, form_post.jwt).
      jwtResponseModes: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // RFC 9449, on purpose (src/provider/dpop.ts): bound tokens for clients that send proofs, required
      // for `dpop_bound_access_tokens` clients; nonces offered always, required with tokens.dpop.requireNonce.
      dPoP: { enabled: true, nonceSecret: deps.dpopNonceSecret, requireNonce: () => t.dpop.requireNonce, allowReplay: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          // After the confirmation, the interactions' logout hook also ends the upstream session (routes.ts).
          const client = ctx.oidc.client;
          // OIDC RP-Initiated Logout 1.0 2: the OP must ask unless an id_token_hint shows the request comes
          // from this session's own service for this user. Then it does not: one confirmation (the
          // partner IdP's, which gets this session's own hint), not two.
          if (await hintIdentifiesSession(ctx)) {
            const fields = { xsrf: String(ctx.oidc.session?.state?.secret ?? ''), logout: 'yes' };
            ctx.body = renderPage(ctx, 'logout-continue', 'logoutContinue.title', {
              action: ctx.oidc.urlFor('end_session_confirm'),
              fields: new Trusted(Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`).join('')),
              script: new Trusted(inlineScript(ctx, "document.addEventListener('DOMContentLoaded',function(){document.forms[0].submit()});")),
            });
            return;
          }
          const participantId = ctx.oidc.session?.accountId?.split(':')[0];
          const organisation = participantId ? registry.participant(participantId)?.config : undefined;
          const pages = pagesOf(ctx);
          const t = pages.translate(ctx);
          ctx.body = renderPage(ctx, 'logout', 'logout.title', {
            target: client ? (client.clientName ?? client.clientId) : pages.settings.branding.name,
            participantBadge: organisation?.logo ? pages.participantBadge(ctx, { name: organisation.displayName, logo: organisation.logo }) : undefined,
            upstreamNote: organisation ? new Trusted(`<p class="hint">${escapeHtml(t('logout.upstreamNote', { participant: organisation.displayName }))}</p>`) : undefined,
            form: new Trusted(form),
          });
        },
        postLogoutSuccessSource: async (ctx) => {
          const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
          const t = pagesOf(ctx).translate(ctx);
          ctx.body = renderPage(ctx, 'logged-out', 'loggedOut.title', { text: name ? t('loggedOut.textClient', { client: name }) : t('loggedOut.text') });
        },
      },
      resourceIndicators: resourceIndicators(settings, accessTokenAlg) as never,
      // RFC 9126, on purpose: POST /request takes the authorization parameters from the client's back
      // end (client authentication as at /token) and answers a request_uri for /auth. It gets the edge
      // checks of /auth (src/http/request-limits.ts), the per-source budget of /auth and the credential
      // failure limits of /token (src/http/rate-limit.ts). A client with
      // `require_pushed_authorization_requests: true` must use it; others may.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false, allowUnregisteredRedirectUris: false },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? t.accessTokenTtl,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? t.clientCredentialsTtl,
      AuthorizationCode: t.authorizationCodeTtl,
      IdToken: t.idTokenTtl,
      RefreshToken: t.refreshTokenTtl,
      Session: t.sessionTtl,
      Interaction: t.interactionTtl,
      Grant: t.grantTtl,
    },
    // Every JWT access token of a grant keeps a record like an opaque one's, so revoking its grant reaches it;
    // a client-credentials one is its own record (access-tokens.ts).
    formats: { customizers: { jwt: recordJwtAccessTokens(deps.tokenIdKey, log) as never } },
    // Refresh tokens rotate on every use; a replayed one revokes the grant (oidc-provider's reuse detection).
    rotateRefreshToken: () => true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    interactions: { policy: loginPolicy(), url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const client = ctx.oidc.client as unknown as ClientWithExtras | undefined;
      const session = ctx.oidc.session;
      if (!client || !session?.accountId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (!client.skip_consent) return undefined;
      // First-party clients: the grant is what they asked for, no consent page.
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      const params = ctx.oidc.params as { scope?: string; resource?: string | string[] } | undefined;
      const requested = new Set(String(params?.scope ?? '').split(' ').filter(Boolean));
      if (requested.size) grant.addOIDCScope([...requested].join(' '));
      // Only what was asked for: a wider grant would silently authorise later, wider requests.
      for (const resource of [ctx.oidc.resourceServers ? Object.values(ctx.oidc.resourceServers) : []].flat()) {
        const scopes = String(resource.scope ?? '').split(' ').filter((scope) => requested.has(scope));
        grant.addResourceScope(resource.identifier(), scopes.join(' '));
      }
      await grant.save();
      session.grantIdFor(client.clientId, grant.jti);
      return grant;
    },
    async findAccount(ctx, accountId, token) {
      const oidcCtx = ctx as KoaContextWithOIDC | undefined;
      // The login this request belongs to: the token's session, or the browser's (single sign-on at /auth).
      const sessionUid = (token as { sessionUid?: string } | undefined)?.sessionUid ?? (oidcCtx?.oidc?.session?.accountId === accountId ? oidcCtx.oidc.session.uid : undefined);
      // At the resume that finishes a login its session has no record yet (trackSessions binds the
      // login after oidc-provider answered, from the resumed interaction's result); a login an earlier
      // version's callback held under its own key is taken now for that bind (Sessions.takeAhead). A
      // session oidc-provider has just made (the browser had none: never saved, no `exp`) has no
      // record to read, and the account is not read: nothing at the resume releases claims, and the
      // participant is the account id's.
      const resuming = !token && oidcCtx?.oidc?.route === 'resume';
      const resumed = resuming ? (oidcCtx.oidc.entities as { Interaction?: { uid?: string } }).Interaction?.uid : undefined;
      if (resumed && sessions.heldApart(oidcCtx?.oidc?.result)) sessions.takeAhead(resumed);
      if (resuming && sessionUid !== undefined && typeof oidcCtx.oidc.session?.exp !== 'number') sessions.madeNow(sessionUid);
      let session = sessionUid === undefined ? undefined : await sessions.get(sessionUid);
      if (session && session.accountId !== accountId) session = undefined;
      // Tokens and sessions from before per-session state: the account's last login, until they expire.
      const legacy: BrokeredAccount | undefined = session || resuming ? undefined : await accounts.find(accountId);
      const participantId = session?.participantId ?? legacy?.participantId ?? (resuming ? accounts.participantOf(accountId) : undefined);
      const participant = participantId === undefined ? undefined : registry.participant(participantId);
      // A participant removed or disabled stops its users at once: sessions, codes and refresh tokens.
      if (!participant?.config.enabled) return undefined;
      // A client restricted to some participants never sees another's account, even through a
      // session made for another client, and even on refresh after the restriction was added.
      const clientId = oidcCtx?.oidc?.client?.clientId;
      const allowed = clientId === undefined ? undefined : registry.client(clientId)?.participants;
      if (allowed && !allowed.includes(participant.config.id)) return undefined;
      if (session && token?.kind === 'RefreshToken') {
        // A refresh asks the partner's IdP again when the participant's policy says it is time (src/sessions/recheck.ts).
        const decision = await sessions.forRefresh(session, participant);
        if (decision.kind === 'ended') {
          // The session is over (its services told); the client's limiter does not count this as a guess.
          oidcCtx!.state.sessionEnded = true;
          throw new errors.InvalidGrant(
            decision.outcome === 'max_age'
              ? 'the session is older than the organisation allows without signing in again'
              : 'the organisation’s sign-in service no longer confirms this session',
          );
        }
        if (decision.kind === 'refused') {
          const unavailable = new errors.CustomOIDCProviderError('temporarily_unavailable', 'the organisation’s sign-in service cannot confirm the session now; try again later');
          Object.assign(unavailable, { status: 503, statusCode: 503, expose: true });
          oidcCtx!.set('Retry-After', '30');
          throw unavailable;
        }
        session = decision.record;
      } else if (session && !token && !sessions.usable(session, participant)) {
        // Single sign-on with a session its IdP can no longer confirm, past session.maxAge: sign in again.
        return undefined;
      }
      // Without its session's record, a token has only an account of before per-session state (its last
      // login's claims) to go by; none there, nothing to vouch for. At the resume, before the login is
      // bound to its session, no token is issued yet and nothing releases claims (code flow only).
      if (!session && token && legacy?.claims === undefined) return undefined;
      const mapped = session?.claims ?? legacy?.claims ?? {};
      const account: ConcordAccount = {
        accountId,
        participantId: participant.config.id,
        mapped,
        ...(session ? { session } : {}),
        claims: async () => ({ ...mapped, sub: accountId, idp: participant.config.id }),
      };
      return account;
    },
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) => {
      const sub = pairwiseSub(client as unknown as ClientWithExtras, accountId);
      // Userinfo gets the pairwise sub back from a JWT; this is how it finds the account again.
      await store.setTemp(pairwiseKey(client.clientId, sub), accountId, t.refreshTokenTtl);
      return sub;
    },
    async extraTokenClaims(ctx, token) {
      // Access tokens carry the participant and the claims the client selected, so services need no
      // call back; and the client's `sid` in the session, so a resource server can match a logout token.
      const { accountId, sessionUid } = token as { accountId?: string; sessionUid?: string };
      if (!accountId) return undefined;
      const found = (ctx as KoaContextWithOIDC | undefined)?.oidc?.account as ConcordAccount | undefined;
      let account: { participantId: string; mapped: Record<string, unknown>; session?: SessionRecord | undefined } | undefined =
        found?.accountId === accountId && found.session?.id === sessionUid ? found : undefined;
      if (!account) {
        const session = sessionUid ? await sessions.get(sessionUid) : undefined;
        const legacy = session ? undefined : await accounts.find(accountId);
        if (session?.accountId === accountId) account = { participantId: session.participantId, mapped: session.claims, session };
        else if (legacy?.claims) account = { participantId: legacy.participantId, mapped: legacy.claims };
      }
      if (!account) return undefined;
      const client = token.client as unknown as ClientWithExtras | undefined;
      const extra: Record<string, unknown> = { idp: account.participantId };
      const sidIn = (clients: SessionClient[] | undefined) => clients?.find((c) => c.clientId === client?.clientId && c.sid)?.sid;
      // A session read ahead holds its record's services only (the first): another's sid is read when asked for.
      let sid = (token as { sid?: string }).sid ?? sidIn(account.session?.clients);
      if (sid === undefined && account.session?.clientsInRecordOnly) sid = sidIn(await sessions.clientsOf(account.session));
      if (sid) extra.sid = sid;
      for (const name of client?.access_token_claims ?? []) {
        if (account.mapped[name] !== undefined && !(name in RESERVED_TOKEN_CLAIMS)) extra[name] = account.mapped[name];
      }
      return extra;
    },
    clientBasedCORS(_ctx, origin, client) {
      return (client.redirectUris ?? []).some((uri) => new URL(uri).origin === origin);
    },
    async renderError(ctx, out, error) {
      if (error instanceof StoreUnavailableError) {
        ctx.set('Retry-After', '5');
        return showError(ctx as never, error instanceof StoreFullError ? 'at_capacity' : 'store_unavailable', { cause: error });
      }
      const status = (error as { status?: number }).status ?? 500;
      // oidc-provider renders this page only when it cannot send the error to the service's redirect_uri (unknown client or URI).
      return showError(ctx as never, status >= 500 ? 'internal' : 'request_invalid', {
        status,
        ...(status >= 500 ? { cause: error } : { detail: `${out.error}: ${out.error_description ?? ''}`.replace(/: $/, '') }),
        log: { error: out.error, description: out.error_description },
      });
    },
  };

  /**
   * Whether the end_session request's id_token_hint (validated by oidc-provider: Concord issued it)
   * names this browser's session: the hint's service has an authorization in it, the hint was issued
   * in this session (its `sid` is the session's for that service; a hint without one, for a service
   * that did not ask for sid, must carry the session's login time as `auth_time`), and its `sub` is
   * the session's account (pairwise for a pairwise service).
   */
  async function hintIdentifiesSession(ctx: KoaContextWithOIDC): Promise<boolean> {
    const hint = (ctx.oidc.entities as { IdTokenHint?: { payload?: { sub?: unknown; sid?: unknown; auth_time?: unknown } } }).IdTokenHint?.payload;
    const { session, client } = ctx.oidc;
    if (!hint || !client || !session?.accountId || !session.authorizations?.[client.clientId]) return false;
    if (hint.sid !== undefined ? hint.sid !== session.sidFor(client.clientId) : hint.auth_time === undefined || hint.auth_time !== session.loginTs) return false;
    const expected = client.subjectType === 'pairwise' ? pairwiseSub(client as unknown as ClientWithExtras, session.accountId) : session.accountId;
    return hint.sub === expected;
  }

  /** The pairwise `sub` of an account for a client (OIDC Core 8.1), per sector. */
  function pairwiseSub(client: ClientWithExtras, accountId: string): string {
    const sector = client.sectorIdentifier ?? client.clientId;
    return createHmac('sha256', pairwiseSalt).update(`${sector}\0${accountId}`).digest('base64url');
  }

  const provider = new Provider(settings.issuer, configuration);
  provider.proxy = settings.trustProxy;
  cacheClients(provider, registry);
  provider.on('grant.error', answerMissingProof);
  // oidc-provider's end_session sends logout tokens itself, inline (the user waits for every service),
  // once, uncounted. Routed to Concord's delivery instead, RP-initiated logout takes the one path every
  // other end of a session takes: queued, retried with back-off, counted per client.
  const clientPrototype = provider.Client.prototype as unknown as { backchannelLogout(this: { clientId: string }, sub: string, sid?: string): Promise<void> };
  clientPrototype.backchannelLogout = function queueLogoutToken(sub, sid) {
    return deps.notify([{ clientId: this.clientId, accountId: sub, ...(sid ? { sid } : {}) }]);
  };
  return provider;
}

/**
 * oidc-provider's `Client.find`, answered from the Client it made for the registry's entry as it is
 * now. oidc-provider finds a client that is not static through the adapter (clients.ts, from the
 * registry) and then serialises and hashes its whole metadata (JSON, SHA-256) to find the Client it
 * made before: at every client-authenticated request (each token, refresh, introspection). The
 * registry replaces a client's entry when it changes, and clients.ts gives one metadata object per
 * entry, so that object says which Client stands for it: a changed client is a new object, found and
 * made by oidc-provider as before. Per provider (a rebuilt one has a Client class of its own).
 */
function cacheClients(provider: Provider, registry: Registry): void {
  const Client = provider.Client as unknown as { find(id: string): Promise<unknown> };
  const find = Client.find.bind(Client);
  const made = new WeakMap<object, unknown>();
  Client.find = async (id: string) => {
    const entry = typeof id === 'string' && id.length > 0 ? registry.client(id) : undefined;
    if (entry === undefined) return find(id);
    const metadata = toClientMetadata(entry);
    const cached = made.get(metadata);
    if (cached !== undefined) return cached;
    const client = await find(id);
    if (client !== undefined) made.set(metadata, client);
    return client;
  };
}

/**
 * oidc-provider's policy, plus:
 *   - a login check: a session whose account findAccount no longer gives (its participant was
 *     disabled or removed) must sign in again, instead of going on with no account (prompt=none
 *     answers login_required);
 *   - a login check: a service asking `acr_values` that the session's acr is not among gets a fresh
 *     sign-in, which passes them on to the upstream (oidc-provider checks only essential acr claims);
 *   - `prompt=select_account` (OIDC Core 3.1.2.1) is accepted: a fresh sign-in, with the upstream
 *     asked to let the user choose the account (the interaction answers it together with login).
 */
function loginPolicy() {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  login.checks.add(
    new interactionPolicy.Check('account_unavailable', 'the signed-in account can no longer be used', 'login_required', (ctx) =>
      Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account,
    ),
  );
  login.checks.add(
    new interactionPolicy.Check('acr_values', 'none of the requested acr_values was obtained', 'login_required', (ctx) => {
      const requested = ctx.oidc.params?.acr_values;
      if (typeof requested !== 'string' || !ctx.oidc.session?.accountId || ctx.oidc.result?.login) return false;
      return !requested.split(' ').includes(String(ctx.oidc.session.acr));
    }),
  );
  policy.add(new interactionPolicy.Prompt({ name: 'select_account', requestable: true }), 0);
  return policy;
}

export const pairwiseKey = (clientId: string, sub: string) => `pairwise:${clientId}:${sub}`;

/** The HMAC key that binds an upstream callback's redirect to its interaction, carried or with its answer (interactions/routes.ts callbackCheck, directCheck; derived-key.ts). */
export function callbackCheckKey(secretsKey: string | undefined, fallbackSecret: string): Buffer {
  return derivedKey(secretsKey, fallbackSecret, 'concord:callback-check:v1');
}

/** The HMAC key of bearer values' store keys (derived-key.ts: from CONCORD_SECRETS_KEY when set). */
export function tokenIdKey(secretsKey: string | undefined, fallbackSecret: string): Buffer {
  return derivedKey(secretsKey, fallbackSecret, 'concord:bearer-ids:v1');
}

const RESERVED_TOKEN_CLAIMS: Record<string, true> = {
  iss: true, sub: true, aud: true, exp: true, iat: true, nbf: true, jti: true, client_id: true, scope: true,
  auth_time: true, acr: true, amr: true, cnf: true, idp: true, sid: true,
};
