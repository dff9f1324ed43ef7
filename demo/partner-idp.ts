import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Context } from 'koa';
import Provider, { type Configuration, type InteractionResults, type SigningAlgorithm } from 'oidc-provider';

/**
 * A demo partner identity provider: a real oidc-provider on 127.0.0.1 with its own small login
 * page (email or username + password, no JavaScript), PKCE required, RFC 9207 `iss` in
 * responses, RP-initiated logout, consent granted automatically for its clients, and the user
 * records' own claims (upn, groups, realm_access, ...) in the ID token so mapping can be shown.
 * Used by `npm run demo` and by the integration tests (drivable with a cookie jar).
 *
 *   node demo/partner-idp.ts [acme|globex] [port]      # runs one on its own
 */

export const DEMO_PASSWORD = 'demo';

export interface PartnerUser {
  sub: string;
  email: string;
  /** Default: DEMO_PASSWORD. */
  password?: string;
  /** Any further claims: name, upn, groups, realm_access, ... (released with the profile scope). */
  [claim: string]: unknown;
}

export interface PartnerClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** Default client_secret_basic. private_key_jwt needs `jwks_uri` (Concord's /broker/jwks). */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';
  /** The client's public keys, for private_key_jwt. */
  jwks_uri?: string;
  /** Answer userinfo as a JWT signed with this algorithm (OIDC Core 5.3.2). */
  userinfo_signed_response_alg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  /**
   * Where this IdP POSTs a logout token when one of its sessions the client took part in ends (OIDC
   * Back-Channel Logout 1.0): Concord's {issuer}/broker/{participantId}/backchannel-logout.
   */
  backchannel_logout_uri?: string;
  /** ID tokens and logout tokens carry the session's `sid`. Default true when backchannel_logout_uri is set. */
  backchannel_logout_session_required?: boolean;
}

export interface PartnerIdpOptions {
  /** Shown on the login page; also names its cookies (so several IdPs on one host do not clash). */
  name: string;
  /** 0 or absent: a random free port. */
  port?: number;
  /** Host name in the issuer URL (default 127.0.0.1); it listens on 127.0.0.1 either way. */
  host?: string;
  /** The email domain its users live in (for the page, and to pick the default demo users). */
  domain: string;
  /** Default: the demo users of `domain` (DEMO_USERS). */
  users?: PartnerUser[];
  clients: PartnerClient[];
  /** Claims added to every user (a user's own value wins). */
  extraClaims?: Record<string, unknown>;
  /** Default RS256. */
  idTokenSigningAlg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  /**
   * true: the claims of the email and profile scopes come from userinfo only (OIDC Core 5.4, and
   * oidc-provider's own default, like LemonLDAP::NG). Default false: in the ID token too, as Entra
   * and Keycloak send them.
   */
  claimsAtUserinfoOnly?: boolean;
  /** Accent colour of its pages. */
  color?: string;
  /**
   * Issue refresh tokens to its clients at every code exchange (as Keycloak does, without
   * `offline_access`), bound to the user's session here: they stop working when the user signs out,
   * is removed, or the session expires. Default false.
   */
  refreshTokens?: boolean;
}

export interface PartnerIdp {
  issuer: string;
  url: string;
  name: string;
  /** The users it knows; remove one (or change its claims) and it stops vouching for them (refresh, userinfo). */
  users: PartnerUser[];
  provider: Provider;
  /** Its ID token signing key, private part included: tests forge what this IdP would sign (logout tokens). */
  signingJwk: JWK;
  close(): Promise<void>;
}

/** The demo partners' users: Acme looks like Entra ID, Globex like Keycloak. */
export const DEMO_USERS: Record<string, PartnerUser[]> = {
  'acme.example': [
    {
      sub: '5f0c1a52-8d1e-4b7a-9f0e-acme00000001',
      email: 'alice@acme.example',
      name: 'Alice Anders',
      given_name: 'Alice',
      family_name: 'Anders',
      upn: 'alice@acme.example',
      oid: '5f0c1a52-8d1e-4b7a-9f0e-acme00000001',
      tid: 'acme-tenant-7d3c',
      groups: ['engineering', 'all-staff'],
      roles: ['Concord.User'],
    },
    {
      sub: '5f0c1a52-8d1e-4b7a-9f0e-acme00000002',
      email: 'carol@acme.example',
      name: 'Carol Chen',
      given_name: 'Carol',
      family_name: 'Chen',
      upn: 'carol@acme.example',
      oid: '5f0c1a52-8d1e-4b7a-9f0e-acme00000002',
      tid: 'acme-tenant-7d3c',
      groups: ['finance', 'all-staff'],
      roles: ['Concord.Admin'],
    },
  ],
  'globex.example': [
    {
      sub: 'f4e1b9c0-0b6d-4c55-9c3a-globex000001',
      email: 'bob@globex.example',
      preferred_username: 'bob',
      name: 'Bob Brown',
      given_name: 'Bob',
      family_name: 'Brown',
      groups: ['/globex/sales', '/globex/staff'],
      realm_access: { roles: ['sales', 'offline_access', 'uma_authorization'] },
      resource_access: { concord: { roles: ['viewer'] } },
    },
  ],
};

const STANDARD_PROFILE = ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'picture', 'locale', 'zoneinfo', 'updated_at'];
const NOT_CLAIMS = new Set(['sub', 'email', 'email_verified', 'password']);
const ACR = 'urn:concord:demo:password';

export async function startPartnerIdp(options: PartnerIdpOptions): Promise<PartnerIdp> {
  const users = options.users ?? DEMO_USERS[options.domain] ?? [];
  const slug = options.name.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '') || 'partner';
  const color = options.color ?? colorFor(options.name);
  const alg = options.idTokenSigningAlg ?? 'RS256';

  // Listen first: the issuer carries the port.
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.host ?? '127.0.0.1'}:${port}`;

  const customClaims = new Set<string>(Object.keys(options.extraClaims ?? {}));
  for (const user of users) for (const key of Object.keys(user)) if (!NOT_CLAIMS.has(key)) customClaims.add(key);
  for (const key of STANDARD_PROFILE) customClaims.delete(key);

  const page = (title: string, body: string) => renderPage({ title, body, partner: options.name, color });
  const jwk = await signingKey(alg);
  const backchannel = options.clients.some((c) => c.backchannel_logout_uri !== undefined);

  const configuration: Configuration = {
    adapter: memoryAdapter(),
    clients: options.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
      grant_types: options.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
      id_token_signed_response_alg: alg as SigningAlgorithm,
      ...(c.jwks_uri ? { jwks_uri: c.jwks_uri } : {}),
      ...(c.userinfo_signed_response_alg ? { userinfo_signed_response_alg: c.userinfo_signed_response_alg } : {}),
      ...(c.backchannel_logout_uri
        ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: c.backchannel_logout_session_required ?? true }
        : {}),
    })),
    jwks: { keys: [jwk] } as Configuration['jwks'],
    enabledJWA: { idTokenSigningAlgValues: [alg as SigningAlgorithm] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      names: { session: `${slug}_session`, interaction: `${slug}_interaction`, resume: `${slug}_resume` },
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      // acr, amr and auth_time of the login travel with the openid scope (as Entra and Keycloak send them).
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: [...STANDARD_PROFILE, ...customClaims],
      sid: null,
      iss: null,
    },
    // Claims in the ID token itself (as Entra and Keycloak do), not only from userinfo, unless asked.
    conformIdTokenClaims: options.claimsAtUserinfoOnly === true,
    acrValues: [ACR],
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Keycloak-style: a refresh token at every code exchange, tied to the session here (expiresWithSession).
    ...(options.refreshTokens ? { issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token') } : {}),
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: backchannel },
      userinfo: { enabled: true },
      jwtUserinfo: { enabled: options.clients.some((c) => c.userinfo_signed_response_alg !== undefined) },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = page(
            'Sign out',
            `<h1>Sign out of ${esc(options.name)}?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page('Signed out', `<h1>Signed out</h1><p>You are signed out of ${esc(options.name)}.</p>`);
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = users.find((u) => u.sub === sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          const { password: _password, ...rest } = user;
          return { ...options.extraClaims, email_verified: true, ...rest, sub };
        },
      };
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, RefreshToken: 8 * 3600, Interaction: 3600, Session: 8 * 3600, Grant: 8 * 3600 },
    clientBasedCORS: () => false,
    // Its clients (Concord, for private_key_jwt: its /broker/jwks) live on loopback beside it: the
    // fetches oidc-provider makes for them go without its special-use address guard.
    fetch: (url, options) => {
      const { dispatcher: _guard, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
      return globalThis.fetch(url, rest);
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Sign-in error</h1><p>${esc(out.error_description ?? out.error)}</p><p class="muted">${esc(out.error)}</p>`);
    },
  };

  const provider = new Provider(issuer, configuration);
  provider.use(interactionRoutes(provider, { users, domain: options.domain, page }).routes());
  server.on('request', provider.callback());

  return {
    issuer,
    url: issuer,
    name: options.name,
    users,
    provider,
    signingJwk: jwk,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The login page and the automatic consent, as Koa routes on the provider itself. */
function interactionRoutes(provider: Provider, opts: { users: PartnerUser[]; domain: string; page: (title: string, body: string) => string }): Router {
  const router = new Router();
  const { users, page } = opts;

  function loginPage(ctx: Context, uid: string, username: string, error?: string) {
    ctx.type = 'html';
    ctx.set('cache-control', 'no-store');
    const demo = users.filter((u) => !u.password || u.password === DEMO_PASSWORD).map((u) => esc(u.email));
    ctx.body = page(
      'Sign in',
      `<h1>Sign in</h1>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="on">
  <label for="username">Email or username</label>
  <input id="username" name="username" type="text" autocomplete="username" required autofocus value="${esc(username)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button class="secondary" type="submit">Cancel</button></form>
${demo.length ? `<p class="muted">Demo accounts: ${demo.join(', ')} (password <code>${DEMO_PASSWORD}</code>)</p>` : ''}`,
    );
  }

  async function finish(ctx: Context, result: InteractionResults, merge: boolean) {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303; // koa keeps a 3xx set before redirect(): the browser GETs the next hop
    ctx.redirect(to);
  }

  router.get('/interaction/:uid', async (ctx) => {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    if (interaction.prompt.name === 'login') {
      const hint = interaction.params.login_hint;
      return loginPage(ctx, interaction.uid, typeof hint === 'string' ? hint : '');
    }
    if (interaction.prompt.name === 'consent') {
      // Its clients are trusted: grant what was asked, without a page.
      const { details } = interaction.prompt;
      const accountId = interaction.session?.accountId;
      const clientId = interaction.params.client_id as string;
      const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId, clientId });
      if (!grant) throw new Error('grant not found');
      const scope = details.missingOIDCScope as string[] | undefined;
      const claims = details.missingOIDCClaims as string[] | undefined;
      const resources = details.missingResourceScopes as Record<string, string[]> | undefined;
      if (scope) grant.addOIDCScope(scope.join(' '));
      if (claims) grant.addOIDCClaims(claims);
      for (const [indicator, scopes] of Object.entries(resources ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      return finish(ctx, { consent: { grantId } }, true);
    }
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Unsupported step</h1><p>${esc(interaction.prompt.name)}</p>`);
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    if (interaction.prompt.name !== 'login') {
      ctx.status = 400;
      ctx.body = 'not a login step';
      return;
    }
    const form = new URLSearchParams(await readBody(ctx));
    const username = (form.get('username') ?? form.get('email') ?? '').trim();
    const password = form.get('password') ?? '';
    const user = users.find(
      (u) => u.email.toLowerCase() === username.toLowerCase() || u.sub === username || (typeof u.preferred_username === 'string' && u.preferred_username === username),
    );
    if (!user || !samePassword(password, user.password ?? DEMO_PASSWORD)) {
      ctx.status = 401;
      return loginPage(ctx, interaction.uid, username, 'Wrong email or password.');
    }
    return finish(ctx, { login: { accountId: user.sub, amr: ['pwd'], acr: ACR, remember: false } }, false);
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    await provider.interactionDetails(ctx.req, ctx.res);
    return finish(ctx, { error: 'access_denied', error_description: 'The user cancelled the sign-in.' }, false);
  });

  return router;
}

/** oidc-provider's storage, in this process: a demo IdP needs no more (and this keeps its start-up warning quiet). */
function memoryAdapter(): NonNullable<Configuration['adapter']> {
  type Payload = Record<string, unknown> & { uid?: string; userCode?: string; grantId?: string; consumed?: number };
  const store = new Map<string, { payload: Payload; expiresAt: number | undefined }>();
  return class MemoryAdapter {
    readonly #name: string;
    constructor(name: string) {
      this.#name = name;
    }
    #key(id: string) {
      return `${this.#name}:${id}`;
    }
    #live(key: string): Payload | undefined {
      const entry = store.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
        store.delete(key);
        return undefined;
      }
      return entry.payload;
    }
    async upsert(id: string, payload: Payload, expiresIn?: number) {
      store.set(this.#key(id), { payload: structuredClone(payload), expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) {
      return this.#live(this.#key(id));
    }
    async findByUid(uid: string) {
      for (const key of store.keys()) if (key.startsWith(`${this.#name}:`) && this.#live(key)?.uid === uid) return this.#live(key);
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const key of store.keys()) if (key.startsWith(`${this.#name}:`) && this.#live(key)?.userCode === userCode) return this.#live(key);
      return undefined;
    }
    async consume(id: string) {
      const payload = this.#live(this.#key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.#key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of store) if (entry.payload.grantId === grantId) store.delete(key);
    }
  } as unknown as NonNullable<Configuration['adapter']>;
}

async function signingKey(alg: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'Ed25519' : alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`, alg, use: 'sig' };
}

function samePassword(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(ctx: Context, limit = 16 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) ctx.throw(413, 'form too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString();
}

function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function colorFor(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 60% 38%)`;
}

/** The demo IdPs' page frame (also the SAML demo IdP's: demo/saml-idp.ts). */
export function renderPage(p: { title: string; body: string; partner: string; color: string }): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(p.title)} · ${esc(p.partner)}</title>
<style>
:root{--accent:${p.color}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f2f4f7;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2433}
main{width:min(24rem,92vw);background:#fff;border-radius:12px;box-shadow:0 6px 24px rgba(20,30,60,.12);overflow:hidden}
header{background:var(--accent);color:#fff;padding:1rem 1.5rem;font-weight:600;letter-spacing:.02em}
header small{display:block;font-weight:400;opacity:.8;font-size:.8rem}
section{padding:1.25rem 1.5rem 1.5rem}
h1{font-size:1.25rem;margin:0 0 1rem}
label{display:block;font-size:.85rem;margin:.75rem 0 .25rem;color:#4a5468}
input{width:100%;padding:.6rem .7rem;border:1px solid #c9d0db;border-radius:8px;font:inherit}
input:focus{outline:2px solid var(--accent);outline-offset:1px}
button{width:100%;margin-top:1rem;padding:.65rem;border:0;border-radius:8px;background:var(--accent);color:#fff;font:inherit;font-weight:600;cursor:pointer}
button.secondary{background:transparent;color:#4a5468;border:1px solid #c9d0db;margin-top:.5rem}
.error{background:#fdecec;color:#8a1c1c;padding:.5rem .75rem;border-radius:8px}
.muted{color:#6b7488;font-size:.85rem;margin-top:1rem}
code{background:#eef1f5;padding:0 .25rem;border-radius:4px}
</style></head>
<body><main><header>${esc(p.partner)}<small>Identity provider (demo)</small></header><section>${p.body}</section></main></body></html>`;
}

if (import.meta.main) {
  const which = process.argv[2] ?? 'acme';
  const port = Number(process.argv[3] ?? (which === 'globex' ? 4002 : 4001));
  const domain = `${which}.example`;
  const redirect = process.env.CONCORD_ISSUER ?? 'http://localhost:3000';
  const idp = await startPartnerIdp({
    name: which === 'globex' ? 'Globex' : 'Acme',
    port,
    host: 'localhost',
    domain,
    clients: [
      {
        client_id: 'concord',
        client_secret: process.env.PARTNER_CLIENT_SECRET ?? 'concord-demo-secret-0123456789',
        redirect_uris: [`${redirect}/broker/${which}/callback`],
        post_logout_redirect_uris: [`${redirect}/broker/${which}/logged-out`],
      },
    ],
  });
  console.log(`${idp.name} IdP: ${idp.issuer} (users: ${idp.users.map((u) => u.email).join(', ')}; password "${DEMO_PASSWORD}")`);
}
