import { createHmac } from 'node:crypto';
import Provider, { interactionPolicy, type Configuration, type KoaContextWithOIDC, type AsymmetricSigningAlgorithm } from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import type { KeySet } from '../keys/index.ts';
import type { Registry } from '../participants/index.ts';
import type { Store } from '../store/index.ts';
import type { Logger } from '../observability/index.ts';
import { newReference } from '../observability/index.ts';
import { escapeHtml, renderPage, Trusted } from '../interactions/views.ts';
import { showError } from '../interactions/pages.ts';
import { StoreFullError, StoreUnavailableError } from '../store/index.ts';
import { AccountStore } from './accounts.ts';
import { SCOPE_CLAIMS } from './claims.ts';
import { clientAdapter, EXTRA_CLIENT_METADATA } from './clients.ts';
import { allScopes, resourceIndicators } from './resources.ts';
export { openResourceServers } from './resources.ts';
import { indexingAdapter } from './offboarding.ts';
import { hashedIdAdapter } from './hashed-ids.ts';

export { AccountStore, accountIdOf, type BrokeredAccount } from './accounts.ts';
export { SCOPE_CLAIMS, OIDC_SCOPES, claimsForScopes } from './claims.ts';
export { toClientMetadata } from './clients.ts';
export { jwtUserinfo } from './userinfo.ts';
export { endAccountSessions, revokeParticipantSessions, type RevocationReport } from './offboarding.ts';

export interface ProviderDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  accounts: AccountStore;
  keySet: KeySet;
  cookieKeys: string[];
  /** Secret of the pairwise subject identifiers (KeyManager.pairwiseSalt). */
  pairwiseSalt: string;
  /** HMAC key of the store keys of bearer values (codes, refresh tokens): tokenIdKey() of the same module. */
  tokenIdKey: Buffer;
  log: Logger;
}

type ClientWithExtras = { clientId: string; skip_consent?: boolean; access_token_claims?: string[]; sectorIdentifier?: string };

/** The one oidc-provider configuration of Concord. Built again (cheaply) when the key set changes. */
export function createProvider(deps: ProviderDeps): Provider {
  const { settings, store, registry, accounts, keySet, cookieKeys, pairwiseSalt, log } = deps;
  const secure = settings.issuer.startsWith('https://');
  const signingAlg = () => (keySet.jwks.keys[0]?.alg ?? 'ES256') as AsymmetricSigningAlgorithm;
  const t = settings.tokens;

  const configuration: Configuration = {
    // Codes, refresh tokens and other bearer values are stored under a keyed hash of their value (hashed-ids.ts).
    adapter: (name: string) => (name === 'Client' ? clientAdapter(registry) : hashedIdAdapter(indexingAdapter(store, name), name, deps.tokenIdKey)),
    clients: [],
    jwks: keySet.jwks as Configuration['jwks'],
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
      id_token_signed_response_alg: signingAlg(),
    },
    enabledJWA: { idTokenSigningAlgValues: [signingAlg()] },
    extraClientMetadata: {
      properties: [...EXTRA_CLIENT_METADATA],
      validator(_ctx, key, value) {
        if (key === 'skip_consent' && value !== undefined && typeof value !== 'boolean') throw new Error('skip_consent must be a boolean');
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          // After the confirmation, the interactions' logout hook also ends the upstream session (routes.ts).
          const client = ctx.oidc.client;
          const participantId = ctx.oidc.session?.accountId?.split(':')[0];
          const organisation = participantId ? registry.participant(participantId)?.config.displayName : undefined;
          ctx.body = renderPage('logout', 'Sign out', {
            target: client ? (client.clientName ?? client.clientId) : 'Concord',
            upstreamNote: organisation
              ? new Trusted(`<p class="hint">You signed in with your ${escapeHtml(organisation)} account; Concord signs you out there too where your organisation allows it.</p>`)
              : undefined,
            form: new Trusted(form),
          });
        },
        postLogoutSuccessSource: async (ctx) => {
          const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
          ctx.type = 'html';
          ctx.body = renderPage('logged-out', 'Signed out', { clientSuffix: name ? ` of ${name}` : '' });
        },
      },
      resourceIndicators: resourceIndicators(settings, signingAlg) as never,
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
    async findAccount(ctx, accountId) {
      const account = await accounts.find(accountId);
      if (!account) return undefined;
      // A participant removed or disabled stops its users at once: sessions, codes and refresh tokens.
      if (!registry.participant(account.participantId)?.config.enabled) return undefined;
      // A client restricted to some participants never sees another's account, even through a
      // session made for another client, and even on refresh after the restriction was added.
      const clientId = (ctx as KoaContextWithOIDC | undefined)?.oidc?.client?.clientId;
      const allowed = clientId === undefined ? undefined : registry.client(clientId)?.participants;
      if (allowed && !allowed.includes(account.participantId)) return undefined;
      return {
        accountId,
        claims: async () => ({ ...account.claims, sub: accountId, idp: account.participantId }),
      };
    },
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) => {
      const sector = (client as unknown as ClientWithExtras).sectorIdentifier ?? client.clientId;
      const sub = createHmac('sha256', pairwiseSalt).update(`${sector}\0${accountId}`).digest('base64url');
      // Userinfo gets the pairwise sub back from a JWT; this is how it finds the account again.
      await store.setTemp(pairwiseKey(client.clientId, sub), accountId, t.refreshTokenTtl);
      return sub;
    },
    async extraTokenClaims(_ctx, token) {
      // Access tokens carry the participant and the claims the client selected, so services need no call back.
      const accountId = (token as { accountId?: string }).accountId;
      if (!accountId) return undefined;
      const account = await accounts.find(accountId);
      if (!account) return undefined;
      const client = token.client as unknown as ClientWithExtras | undefined;
      const extra: Record<string, unknown> = { idp: account.participantId };
      for (const name of client?.access_token_claims ?? []) {
        if (account.claims[name] !== undefined && !(name in RESERVED_TOKEN_CLAIMS)) extra[name] = account.claims[name];
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
      const reference = (ctx.state.requestId as string | undefined) ?? newReference();
      const status = (error as { status?: number }).status ?? 500;
      (ctx.state.log ?? log)[status >= 500 ? 'error' : 'warn'](
        { reference, error: out.error, description: out.error_description, err: status >= 500 ? error : undefined },
        'authorization error page',
      );
      ctx.type = 'html';
      ctx.body = renderPage('error', 'Sign-in error', {
        heading: status >= 500 ? 'Something went wrong' : 'This sign-in request cannot be completed',
        message: status >= 500 ? 'Concord could not complete the request. Please try again.' : `${out.error_description ?? out.error}`,
        reference,
      });
    },
  };

  const provider = new Provider(settings.issuer, configuration);
  provider.proxy = settings.trustProxy;
  return provider;
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

/**
 * The HMAC key of bearer values' store keys. From CONCORD_SECRETS_KEY when set (required with Redis:
 * the same on every instance, and not in the store a reader could see); else from the embedded store's
 * own secret, which lives and dies with the process.
 */
export function tokenIdKey(secretsKey: string | undefined, fallbackSecret: string): Buffer {
  const base = secretsKey ? Buffer.from(secretsKey, 'base64') : Buffer.from(fallbackSecret, 'utf8');
  return createHmac('sha256', base).update('concord:bearer-ids:v1').digest();
}

const RESERVED_TOKEN_CLAIMS: Record<string, true> = {
  iss: true, sub: true, aud: true, exp: true, iat: true, nbf: true, jti: true, client_id: true, scope: true,
  auth_time: true, acr: true, amr: true, cnf: true, idp: true,
};
