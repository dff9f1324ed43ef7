import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, createRemoteJWKSet, exportJWK, exportSPKI, generateKeyPair, jwtVerify, type CryptoKey, type JWK } from 'jose';

/**
 * A small, deliberately misbehaving OIDC provider (node:http + jose) for proving that Concord
 * refuses every bad upstream answer, and copes with every quirky but harmless one. Discovery, JWKS,
 * an authorization endpoint that answers straight away (no login page: redirect, or a form_post
 * page), a token endpoint that crafts the ID token per `mode`, and userinfo. It does check PKCE,
 * redirect_uri and the client's authentication, so a connector that skips them fails the 'ok' case.
 * Quirks (see `Quirks`, switched with setQuirks) make it behave like a particular real IdP.
 *
 * Modes (switch at runtime with setMode):
 *  ok                     a correct RS256 ID token (email in `domain`, amr ["pwd"], acr)
 *  wrong_iss              ID token iss is another issuer
 *  wrong_aud              ID token aud is another client
 *  wrong_nonce            ID token nonce is not the one sent
 *  missing_nonce          ID token has no nonce
 *  expired                ID token exp is an hour ago
 *  alg_none               unsigned ID token (alg "none")
 *  hs256_with_public_key  HS256 "signed" with the RSA public key as the HMAC secret (alg confusion)
 *  unknown_key            signed by an RSA key (and kid) that is not in the JWKS
 *  error_response         the callback is error=access_denied
 *  wrong_callback_iss     the callback's RFC 9207 iss is another issuer
 *  foreign_email          a valid ID token whose email is in `foreignDomain` (email_verified true)
 * Extra modes:
 *  bad_signature          signed by another key under the JWKS key's kid
 *  missing_callback_iss   the callback has no iss although discovery advertises it
 *  future_iat             ID token iat is an hour ahead
 *  wrong_azp              ID token azp names another client
 *  multi_aud              ID token aud is [client, other] without azp
 *  token_error            the token endpoint answers invalid_grant
 *  userinfo_wrong_sub     valid ID token; userinfo answers another sub
 *  no_acceptable_alg      discovery offers HS256 only
 *  token_hangs            the token endpoint accepts the request and never answers
 */
export type HostileMode =
  | 'ok'
  | 'wrong_iss'
  | 'wrong_aud'
  | 'wrong_nonce'
  | 'missing_nonce'
  | 'expired'
  | 'alg_none'
  | 'hs256_with_public_key'
  | 'unknown_key'
  | 'error_response'
  | 'wrong_callback_iss'
  | 'foreign_email'
  | 'bad_signature'
  | 'missing_callback_iss'
  | 'future_iat'
  | 'wrong_azp'
  | 'multi_aud'
  | 'token_error'
  | 'userinfo_wrong_sub'
  | 'no_acceptable_alg'
  | 'token_hangs';

/**
 * The modes whose ID token / callback / discovery a correct connector must refuse
 * (userinfo_wrong_sub only when the connector fetches userinfo). token_hangs is a timeout case.
 */
export const REFUSED_MODES = [
  'wrong_iss',
  'wrong_aud',
  'wrong_nonce',
  'missing_nonce',
  'expired',
  'alg_none',
  'hs256_with_public_key',
  'unknown_key',
  'error_response',
  'wrong_callback_iss',
  'bad_signature',
  'missing_callback_iss',
  'future_iat',
  'wrong_azp',
  'multi_aud',
  'token_error',
  'userinfo_wrong_sub',
  'no_acceptable_alg',
] as const satisfies readonly HostileMode[];

/**
 * Quirks: ways real IdPs follow (or bend) the standards that a broker must cope with, or must name
 * precisely. Unlike modes (attacks a connector must refuse), most quirks must be accepted. A test
 * switches them on one at a time with setQuirks (which replaces the whole set).
 */
export interface Quirks {
  /** email, email_verified and name only at userinfo, as OIDC Core 5.4 allows (LemonLDAP::NG, oidc-provider's default). */
  claimsOnlyAtUserinfo?: boolean;
  /** userinfo answered as a JWT (application/jwt, OIDC Core 5.3.2) signed with its current key, or with a key not in its JWKS. */
  signedUserinfo?: 'current_key' | 'unknown_key';
  /** The one token endpoint auth method it lists and accepts (default: basic and post). */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';
  /** Reads Basic credentials without form-decoding them (LemonLDAP::NG 2.16): a client secret with "-" fails with basic. */
  rawBasicCredentials?: boolean;
  /** For private_key_jwt: where it fetches the client's public keys (Concord's /broker/jwks). */
  clientJwksUri?: string;
  /** token_type in the token response: absent (`null`), or spelled otherwise. Default "Bearer". */
  tokenType?: string | null;
  /** expires_in as a string ("300"). */
  expiresInAsString?: boolean;
  /** The token endpoint answers 200 with a body that is not JSON. */
  tokenResponseNotJson?: boolean;
  /** Its discovery document names a multi-tenant issuer template (`{issuer}/{tenantid}/v2.0`), as Entra ID's /common does. */
  issuerTemplate?: boolean;
  /** Answers the authorization request with this OAuth error (access_denied, login_required, ...). */
  authorizationError?: string;
  /** The token endpoint answers this OAuth error, with an error_description. */
  tokenError?: string;
  /** Its user's single sign-on session began this many seconds ago (auth_time); a prompt=login or a max_age shorter than that makes it sign the user in again (auth_time now). Default 0. */
  sessionAgeSeconds?: number;
  /** Ignores max_age (keeps the older session's auth_time). */
  ignoreMaxAge?: boolean;
  /** The email it releases, instead of `{subject}@{domain}`. */
  email?: string;
  /** Further claims in the ID token (preferred_username, ...). */
  extraClaims?: Record<string, unknown>;
}

export interface HostileIdpOptions {
  /** 0 (default): a random free port on 127.0.0.1. */
  port?: number;
  mode?: HostileMode;
  clientId?: string;
  clientSecret?: string;
  /** The domain of the `email` claim in the normal modes. Default hostile.example. */
  domain?: string;
  /** The domain of the `email` claim in foreign_email. Default victim.example. */
  foreignDomain?: string;
  /** The `sub` of every ID token. Default "user-1". */
  subject?: string;
  quirks?: Quirks;
}

export interface HostileIdp {
  readonly issuer: string;
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly mode: HostileMode;
  setMode(mode: HostileMode): void;
  readonly quirks: Quirks;
  /** Replaces the whole set of quirks (one at a time: `setQuirks({ claimsOnlyAtUserinfo: true })`; none: `setQuirks({})`). */
  setQuirks(quirks: Quirks): void;
  /** Signs with a new key from now on, and publishes only that one (an abrupt rotation, the worst case). */
  rotateKeys(): Promise<void>;
  /** The current signing key's kid. */
  readonly kid: string;
  /** The parameters of the last authorization request it received. */
  readonly lastAuthorization: URLSearchParams | undefined;
  /** How Concord authenticated at its token endpoint, per request: client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt. */
  readonly clientAuthentications: string[];
  /** "METHOD /path" of every request served, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  nonce: string | undefined;
  codeChallenge: string | undefined;
  codeChallengeMethod: string | undefined;
  /** auth_time, acr and amr of this login. */
  authTime: number;
  acr: string;
  amr: string[];
}

const OTHER_ISSUER = 'https://evil.example';

export async function startHostileIdp(options: HostileIdpOptions = {}): Promise<HostileIdp> {
  const clientId = options.clientId ?? 'concord';
  const clientSecret = options.clientSecret ?? 'hostile-client-secret-0123456789';
  const domain = options.domain ?? 'hostile.example';
  const foreignDomain = options.foreignDomain ?? 'victim.example';
  const subject = options.subject ?? 'user-1';
  let mode: HostileMode = options.mode ?? 'ok';
  let quirks: Quirks = options.quirks ?? {};

  let signing = await generateKeyPair('RS256', { extractable: true });
  const rogue = await generateKeyPair('RS256', { extractable: true });
  let kid = `hostile-${randomBytes(4).toString('hex')}`;
  let publicJwk: JWK = { ...(await exportJWK(signing.publicKey)), kid, alg: 'RS256', use: 'sig' };
  let publicPem = await exportSPKI(signing.publicKey);
  let lastAuthorization: URLSearchParams | undefined;
  const clientAuthentications: string[] = [];
  const seenAssertions = new Set<string>();

  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, string>(); // token -> sub
  const requests: string[] = [];
  let issuer = '';

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };

  const discovery = () => ({
    issuer: quirks.issuerTemplate ? `${issuer}/{tenantid}/v2.0` : issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/userinfo`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post'],
    subject_types_supported: ['public'],
    // Advertising none and HS256 must not make a connector accept them.
    id_token_signing_alg_values_supported: mode === 'no_acceptable_alg' ? ['HS256'] : ['RS256', 'HS256', 'none'],
    userinfo_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: quirks.tokenEndpointAuthMethod ? [quirks.tokenEndpointAuthMethod] : ['client_secret_basic', 'client_secret_post'],
    token_endpoint_auth_signing_alg_values_supported: ['RS256', 'ES256', 'HS256'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'email', 'profile'],
    authorization_response_iss_parameter_supported: true,
  });

  /** The user's address as this IdP releases it. */
  const emailOf = () => quirks.email ?? `${subject}@${domain}`;

  async function idToken(issued: IssuedCode): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: subject,
      aud: issued.clientId,
      iat: now,
      exp: now + 300,
      auth_time: issued.authTime,
      nonce: issued.nonce,
      ...(quirks.claimsOnlyAtUserinfo ? {} : { email: emailOf(), email_verified: true, name: 'Hostile User' }),
      amr: issued.amr,
      acr: issued.acr,
      ...quirks.extraClaims,
    };
    let key: CryptoKey | Uint8Array = signing.privateKey;
    let header: Record<string, unknown> = { alg: 'RS256', kid, typ: 'JWT' };
    switch (mode) {
      case 'wrong_iss':
        claims.iss = OTHER_ISSUER;
        break;
      case 'wrong_aud':
        claims.aud = 'someone-else';
        break;
      case 'wrong_nonce':
        claims.nonce = randomBytes(16).toString('base64url');
        break;
      case 'missing_nonce':
        delete claims.nonce;
        break;
      case 'expired':
        claims.iat = now - 7200;
        claims.auth_time = now - 7200;
        claims.exp = now - 3600;
        break;
      case 'future_iat':
        claims.iat = now + 3600;
        claims.exp = now + 7200;
        break;
      case 'wrong_azp':
        claims.azp = 'someone-else';
        break;
      case 'multi_aud':
        claims.aud = [issued.clientId, 'someone-else'];
        break;
      case 'foreign_email':
        claims.email = `${subject}@${foreignDomain}`;
        break;
      case 'alg_none': {
        const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
        return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
      }
      case 'hs256_with_public_key':
        key = new TextEncoder().encode(publicPem);
        header = { alg: 'HS256', kid, typ: 'JWT' };
        break;
      case 'unknown_key':
        key = rogue.privateKey;
        header = { alg: 'RS256', kid: 'not-in-the-jwks', typ: 'JWT' };
        break;
      case 'bad_signature':
        key = rogue.privateKey;
        break;
      default:
        break;
    }
    return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
  }

  /** Which client authentication the token request used, and whether it is this client's (RFC 6749 2.3, RFC 7523 3). */
  async function authenticate(req: http.IncomingMessage, form: URLSearchParams): Promise<{ method: string; ok: boolean }> {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString();
      const i = decoded.indexOf(':');
      // RFC 6749 2.3.1 form-encodes both before Basic; some IdPs forget to decode them.
      const read = quirks.rawBasicCredentials ? (v: string) => v : (v: string) => decodeURIComponent(v.replace(/\+/g, ' '));
      return { method: 'client_secret_basic', ok: read(decoded.slice(0, i)) === clientId && read(decoded.slice(i + 1)) === clientSecret };
    }
    const assertion = form.get('client_assertion');
    if (assertion && form.get('client_assertion_type') === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      const header = JSON.parse(Buffer.from(assertion.split('.')[0] ?? '', 'base64url').toString()) as { alg?: string };
      const method = header.alg === 'HS256' ? 'client_secret_jwt' : 'private_key_jwt';
      try {
        const key = method === 'client_secret_jwt' ? new TextEncoder().encode(clientSecret) : createRemoteJWKSet(new URL(quirks.clientJwksUri ?? 'http://127.0.0.1:1/none'));
        const { payload } = await jwtVerify(assertion, key as Uint8Array, { issuer: clientId, subject: clientId, audience: [`${issuer}/token`, issuer], maxTokenAge: 120 });
        if (typeof payload.jti !== 'string' || seenAssertions.has(payload.jti)) return { method, ok: false };
        seenAssertions.add(payload.jti);
        return { method, ok: form.get('client_id') === null || form.get('client_id') === clientId };
      } catch {
        return { method, ok: false };
      }
    }
    return { method: 'client_secret_post', ok: form.get('client_id') === clientId && form.get('client_secret') === clientSecret };
  }

  async function token(req: http.IncomingMessage, res: http.ServerResponse) {
    const form = new URLSearchParams(await readBody(req));
    const { method, ok } = await authenticate(req, form);
    clientAuthentications.push(method);
    const allowed = quirks.tokenEndpointAuthMethod ? [quirks.tokenEndpointAuthMethod] : ['client_secret_basic', 'client_secret_post'];
    if (!ok || !allowed.includes(method)) return json(res, 401, { error: 'invalid_client', error_description: `client authentication failed (${method})` });
    const id = clientId;
    if (form.get('grant_type') !== 'authorization_code') return json(res, 400, { error: 'unsupported_grant_type' });
    const code = form.get('code') ?? '';
    const issued = codes.get(code);
    codes.delete(code);
    if (!issued || issued.clientId !== id) return json(res, 400, { error: 'invalid_grant', error_description: 'unknown code' });
    if (form.get('redirect_uri') !== issued.redirectUri) return json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (issued.codeChallengeMethod !== 'S256' || challenge !== issued.codeChallenge) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
    }
    if (mode === 'token_hangs') return; // never answers; close() drops the connection
    if (mode === 'token_error') return json(res, 400, { error: 'invalid_grant', error_description: 'the hostile IdP says no' });
    if (quirks.tokenError) return json(res, 400, { error: quirks.tokenError, error_description: `the quirky IdP answers ${quirks.tokenError}` });
    if (quirks.tokenResponseNotJson) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>Signed in!</body></html>');
      return;
    }
    const accessToken = randomBytes(24).toString('base64url');
    accessTokens.set(accessToken, subject);
    const body: Record<string, unknown> = { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: await idToken(issued), scope: 'openid email profile' };
    if (quirks.tokenType === null) delete body.token_type;
    else if (quirks.tokenType !== undefined) body.token_type = quirks.tokenType;
    if (quirks.expiresInAsString) body.expires_in = '300';
    return json(res, 200, body);
  }

  function authorize(url: URL, res: http.ServerResponse) {
    const p = url.searchParams;
    lastAuthorization = new URLSearchParams(p);
    const redirectUri = p.get('redirect_uri');
    if (p.get('client_id') !== clientId || !redirectUri) return json(res, 400, { error: 'invalid_request' });
    const answer = new URLSearchParams();
    const state = p.get('state');
    const error = mode === 'error_response' ? 'access_denied' : quirks.authorizationError;
    if (error) {
      answer.set('error', error);
      answer.set('error_description', `The quirky IdP answers ${error}`);
    } else {
      // Its single sign-on session, unless the request makes it sign the user in again.
      const now = Math.floor(Date.now() / 1000);
      const age = quirks.sessionAgeSeconds ?? 0;
      const maxAge = p.get('max_age');
      const again = (p.get('prompt') ?? '').split(' ').includes('login') || (maxAge !== null && Number(maxAge) < age && !quirks.ignoreMaxAge);
      const acr = (p.get('acr_values') ?? '').split(' ').filter(Boolean)[0] ?? 'urn:hostile:pwd';
      const code = randomBytes(24).toString('base64url');
      codes.set(code, {
        clientId,
        redirectUri,
        nonce: p.get('nonce') ?? undefined,
        codeChallenge: p.get('code_challenge') ?? undefined,
        codeChallengeMethod: p.get('code_challenge_method') ?? undefined,
        authTime: again ? now : now - age,
        acr,
        amr: acr.endsWith(':mfa') ? ['pwd', 'otp'] : ['pwd'],
      });
      answer.set('code', code);
    }
    if (state !== null) answer.set('state', state);
    if (mode === 'wrong_callback_iss') answer.set('iss', OTHER_ISSUER);
    else if (mode !== 'missing_callback_iss') answer.set('iss', issuer);
    if (p.get('response_mode') === 'form_post') {
      // OAuth 2.0 Form Post Response Mode: an auto-submitting form to the redirect URI.
      const inputs = [...answer].map(([k, v]) => `<input type="hidden" name="${escapeAttr(k)}" value="${escapeAttr(v)}">`).join('');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!DOCTYPE html><html><head><title>Submit</title></head><body onload="document.forms[0].submit()"><form method="post" action="${escapeAttr(redirectUri)}">${inputs}<noscript><button type="submit">Continue</button></noscript></form></body></html>`);
      return;
    }
    const back = new URL(redirectUri);
    for (const [k, v] of answer) back.searchParams.set(k, v);
    res.writeHead(302, { location: back.href, 'cache-control': 'no-store' });
    res.end();
  }

  async function userinfo(req: http.IncomingMessage, res: http.ServerResponse) {
    const auth = req.headers.authorization ?? '';
    const sub = auth.startsWith('Bearer ') ? accessTokens.get(auth.slice(7)) : undefined;
    if (!sub) return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    const claims = {
      sub: mode === 'userinfo_wrong_sub' ? 'someone-else' : sub,
      email: mode === 'foreign_email' ? `${sub}@${foreignDomain}` : emailOf(),
      email_verified: true,
      name: 'Hostile User',
      groups: ['hostile-users'],
    };
    if (quirks.signedUserinfo) {
      const key = quirks.signedUserinfo === 'unknown_key' ? rogue.privateKey : signing.privateKey;
      const jwt = await new SignJWT({ ...claims, iss: issuer, aud: clientId })
        .setProtectedHeader({ alg: 'RS256', kid: quirks.signedUserinfo === 'unknown_key' ? 'not-in-the-jwks' : kid })
        .sign(key);
      res.writeHead(200, { 'content-type': 'application/jwt', 'cache-control': 'no-store' });
      res.end(jwt);
      return;
    }
    return json(res, 200, claims);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    requests.push(`${req.method} ${url.pathname}`);
    const route = async () => {
      if (req.method === 'GET' && url.pathname.endsWith('/.well-known/openid-configuration')) return json(res, 200, discovery());
      if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [publicJwk] });
      if (req.method === 'GET' && url.pathname === '/authorize') return authorize(url, res);
      if (req.method === 'POST' && url.pathname === '/token') return token(req, res);
      if (req.method === 'GET' && url.pathname === '/userinfo') return userinfo(req, res);
      return json(res, 404, { error: 'not_found' });
    };
    route().catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;

  return {
    issuer,
    url: issuer,
    clientId,
    clientSecret,
    get mode() {
      return mode;
    },
    setMode(next: HostileMode) {
      mode = next;
    },
    get quirks() {
      return quirks;
    },
    setQuirks(next: Quirks) {
      quirks = next;
    },
    async rotateKeys() {
      signing = await generateKeyPair('RS256', { extractable: true });
      kid = `hostile-${randomBytes(4).toString('hex')}`;
      publicJwk = { ...(await exportJWK(signing.publicKey)), kid, alg: 'RS256', use: 'sig' };
      publicPem = await exportSPKI(signing.publicKey);
    },
    get kid() {
      return kid;
    },
    get lastAuthorization() {
      return lastAuthorization;
    },
    clientAuthentications,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function escapeAttr(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 64 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}
