import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { DEMO_PASSWORD, startPartnerIdp, type PartnerClient, type PartnerIdp, type PartnerIdpOptions, type PartnerUser } from '../../demo/partner-idp.ts';
import type { Store } from '../../src/store/index.ts';
import { startConcord, type TestConcord } from './concord.ts';
import { Browser, parseForm } from './http-client.ts';
import { freePort } from './ports.ts';

/** Where Concord sends the browser back after an upstream logout (registered at each partner IdP). */
export const upstreamLogoutReturn = (issuer: string, participantId: string) => `${issuer}/broker/${participantId}/logged-out`;

/** Where a partner IdP sends Concord its logout tokens (OIDC Back-Channel Logout 1.0). */
export const upstreamBackchannelLogoutUri = (issuer: string, participantId: string) => `${issuer}/broker/${participantId}/backchannel-logout`;

export const RP = {
  client_id: 'rp',
  client_name: 'Test RP',
  client_secret: 'rp-secret-0123456789abcdef',
  redirect_uris: ['http://127.0.0.1:9999/cb'],
  post_logout_redirect_uris: ['http://127.0.0.1:9999/bye'],
  grant_types: ['authorization_code', 'refresh_token'],
  skip_consent: true,
  access_token_claims: ['groups', 'roles'],
};

export interface Federation {
  concord: TestConcord;
  acme: PartnerIdp;
  globex: PartnerIdp;
  /** openid-client's view of Concord for the RP client. */
  rp: oidc.Configuration;
  close(): Promise<void>;
}

export interface FederationOptions {
  store?: Store;
  settings?: Record<string, unknown>;
  /** Extra fields per participant (e.g. mapping, enabled). */
  acme?: Record<string, unknown>;
  globex?: Record<string, unknown>;
  clients?: unknown[];
  acmeUsers?: PartnerUser[];
  /** Further participants (hostile or unreachable upstreams), after acme and globex. */
  participants?: unknown[];
  port?: number;
  /**
   * How both partner IdPs run beyond the defaults (refresh tokens, ...) and, with `backchannelLogout`,
   * whether they send Concord logout tokens (to its /broker/{id}/backchannel-logout).
   */
  partners?: { partner?: Partial<PartnerIdpOptions>; backchannelLogout?: boolean };
  /** Concord's clock (Unix ms): domain proof's grace period, sessions' ages. */
  now?: () => number;
  /** Concord's configuration directory (messages/, logos/). */
  dir?: string;
}

/** The secret Concord's client at a participant's partner IdP has in these tests. */
export const upstreamSecret = (participantId: string) => `${participantId}-upstream-secret-0123456789`;

/**
 * A partner IdP (demo/partner-idp.ts) with Concord registered as its client `concord` for
 * participant `participantId` of the Concord at `concordIssuer`: the broker callback and the
 * upstream logout return as its redirect URIs. `port` brings one back on the port it had.
 */
export function startParticipantIdp(options: {
  concordIssuer: string;
  participantId: string;
  name: string;
  domain: string;
  users?: PartnerUser[] | undefined;
  port?: number;
  /** How Concord's client is registered there, beyond the defaults (token_endpoint_auth_method, jwks_uri, ...). */
  client?: Partial<PartnerClient>;
  /** The IdP's own options beyond the defaults (claimsAtUserinfoOnly, host, ...). */
  partner?: Partial<PartnerIdpOptions>;
}): Promise<PartnerIdp> {
  const { concordIssuer, participantId } = options;
  return startPartnerIdp({
    name: options.name,
    domain: options.domain,
    ...(options.users ? { users: options.users } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...options.partner,
    clients: [
      {
        client_id: 'concord',
        client_secret: upstreamSecret(participantId),
        redirect_uris: [`${concordIssuer}/broker/${participantId}/callback`],
        post_logout_redirect_uris: [upstreamLogoutReturn(concordIssuer, participantId)],
        ...options.client,
      },
    ],
  });
}

/** Concord with two real partner IdPs (oidc-provider) and an RP client, all on loopback. */
export async function startFederation(options: FederationOptions = {}): Promise<Federation> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const partner = (name: string, domain: string, id: string, users?: PartnerUser[]) =>
    startParticipantIdp({
      concordIssuer: issuer,
      participantId: id,
      name,
      domain,
      users,
      ...(options.partners?.partner ? { partner: options.partners.partner } : {}),
      ...(options.partners?.backchannelLogout ? { client: { backchannel_logout_uri: upstreamBackchannelLogoutUri(issuer, id) } } : {}),
    });
  const [acme, globex] = await Promise.all([partner('Acme', 'acme.example', 'acme', options.acmeUsers), partner('Globex', 'globex.example', 'globex')]);
  // `extra.upstream` is merged into the upstream below (so a test can change one setting of it).
  const participant = (id: string, name: string, domain: string, idp: PartnerIdp, { upstream, ...extra }: Record<string, unknown> = {}) => ({
    id,
    displayName: name,
    domains: [domain],
    upstream: {
      type: 'oidc',
      issuer: idp.issuer,
      clientId: 'concord',
      clientSecret: upstreamSecret(id),
      allowInsecureHttp: true,
      scopes: ['openid', 'email', 'profile'],
      ...(upstream as Record<string, unknown> | undefined),
    },
    ...extra,
  });
  let concord: TestConcord;
  try {
    concord = await startConcord({
      port,
      participants: [participant('acme', 'Acme', 'acme.example', acme, options.acme), participant('globex', 'Globex', 'globex.example', globex, options.globex), ...(options.participants ?? [])],
      clients: options.clients ?? [RP],
      ...(options.settings ? { settings: options.settings } : {}),
      ...(options.store ? { store: options.store } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.dir ? { dir: options.dir } : {}),
    });
  } catch (err) {
    // Left running, the partner IdPs would keep the test process alive after the failure.
    await Promise.all([acme.close(), globex.close()]);
    throw err;
  }
  const rp = await oidc.discovery(new URL(issuer), RP.client_id, RP.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  return {
    concord,
    acme,
    globex,
    rp,
    async close() {
      await concord.close();
      await Promise.all([acme.close(), globex.close()]);
    },
  };
}

export interface Authorization {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** An authorization request as a well-behaved RP makes it: PKCE S256, state, nonce. */
export async function authorizationRequest(rp: oidc.Configuration, params: Record<string, string> = {}): Promise<Authorization> {
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(rp, {
    redirect_uri: RP.redirect_uris[0]!,
    scope: 'openid email profile groups offline_access',
    state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    ...params,
  });
  return { url, state, nonce, codeVerifier };
}

const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);

/**
 * Drives a whole brokered login over HTTP: Concord's login page (email) -> the partner's login
 * page (password) -> back through Concord -> the RP's redirect URI, which is returned, not requested.
 * Throws with the page it got stuck on when the chain does not reach the RP.
 */
export async function brokeredLogin(browser: Browser, auth: Authorization, user: { email?: string; username?: string; password?: string }): Promise<URL> {
  let page = await browser.get(auth.url, { stopAt: atRp });
  if (page.stoppedAt) return page.stoppedAt;
  // Concord's own login page (a login_hint or idp_hint goes straight on to the partner's).
  if (page.url.origin === auth.url.origin && page.url.pathname.startsWith('/interaction/')) {
    assert.equal(page.status, 200, `Concord's login page: ${page.body.slice(0, 300)}`);
    const form = parseForm(page.body, '/login');
    page = await browser.post(new URL(form.action, page.url), { ...form.fields, email: user.email ?? '' }, { stopAt: atRp });
    if (page.stoppedAt) return page.stoppedAt;
  }
  if (page.status !== 200 || !page.body.includes('password')) {
    throw Object.assign(new Error(`stuck at ${page.url.href} (${page.status})`), { page });
  }
  const form = parseForm(page.body, '/login');
  const done = await browser.post(new URL(form.action, page.url), { ...form.fields, username: user.username ?? user.email ?? '', password: user.password ?? DEMO_PASSWORD }, { stopAt: atRp });
  if (!done.stoppedAt) throw Object.assign(new Error(`no redirect to the RP: ${done.status} at ${done.url.href}`), { page: done });
  return done.stoppedAt;
}

/** The code exchange, with every check openid-client makes (state, iss, nonce, PKCE, ID token). */
export function exchange(rp: oidc.Configuration, callback: URL, auth: Authorization) {
  return oidc.authorizationCodeGrant(rp, callback, { expectedState: auth.state, expectedNonce: auth.nonce, pkceCodeVerifier: auth.codeVerifier, idTokenExpected: true });
}

/** Login + exchange in one step, for tests about what comes after. */
export async function signedIn(fed: Federation, email: string, params: Record<string, string> = {}) {
  const browser = new Browser();
  const auth = await authorizationRequest(fed.rp, params);
  const callback = await brokeredLogin(browser, auth, { email });
  const tokens = await exchange(fed.rp, callback, auth);
  return { browser, auth, callback, tokens };
}
