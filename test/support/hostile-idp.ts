import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/**
 * A small, deliberately misbehaving OIDC provider (node:http + jose) for proving that Concord
 * refuses every bad upstream answer. Discovery, JWKS, an authorization endpoint that redirects
 * straight back with a code (no login page), a token endpoint that crafts the ID token per `mode`,
 * and userinfo. It does check PKCE, redirect_uri and the client secret, so a connector that skips
 * them fails the 'ok' case.
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
}

export interface HostileIdp {
  readonly issuer: string;
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly mode: HostileMode;
  setMode(mode: HostileMode): void;
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
}

const OTHER_ISSUER = 'https://evil.example';

export async function startHostileIdp(options: HostileIdpOptions = {}): Promise<HostileIdp> {
  const clientId = options.clientId ?? 'concord';
  const clientSecret = options.clientSecret ?? 'hostile-client-secret-0123456789';
  const domain = options.domain ?? 'hostile.example';
  const foreignDomain = options.foreignDomain ?? 'victim.example';
  const subject = options.subject ?? 'user-1';
  let mode: HostileMode = options.mode ?? 'ok';

  const signing = await generateKeyPair('RS256', { extractable: true });
  const rogue = await generateKeyPair('RS256', { extractable: true });
  const kid = `hostile-${randomBytes(4).toString('hex')}`;
  const publicJwk: JWK = { ...(await exportJWK(signing.publicKey)), kid, alg: 'RS256', use: 'sig' };
  const publicPem = await exportSPKI(signing.publicKey);

  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, string>(); // token -> sub
  const requests: string[] = [];
  let issuer = '';

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };

  const discovery = () => ({
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    userinfo_endpoint: `${issuer}/userinfo`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    // Advertising none and HS256 must not make a connector accept them.
    id_token_signing_alg_values_supported: mode === 'no_acceptable_alg' ? ['HS256'] : ['RS256', 'HS256', 'none'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'email', 'profile'],
    authorization_response_iss_parameter_supported: true,
  });

  async function idToken(issued: IssuedCode): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: subject,
      aud: issued.clientId,
      iat: now,
      exp: now + 300,
      auth_time: now,
      nonce: issued.nonce,
      email: `${subject}@${domain}`,
      email_verified: true,
      name: 'Hostile User',
      amr: ['pwd'],
      acr: 'urn:hostile:pwd',
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

  async function token(req: http.IncomingMessage, res: http.ServerResponse) {
    const form = new URLSearchParams(await readBody(req));
    let id = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString();
      const i = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, i));
      secret = decodeURIComponent(decoded.slice(i + 1));
    }
    if (id !== clientId || secret !== clientSecret) return json(res, 401, { error: 'invalid_client' });
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
    const accessToken = randomBytes(24).toString('base64url');
    accessTokens.set(accessToken, subject);
    return json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: await idToken(issued), scope: 'openid email profile' });
  }

  function authorize(url: URL, res: http.ServerResponse) {
    const p = url.searchParams;
    const redirectUri = p.get('redirect_uri');
    if (p.get('client_id') !== clientId || !redirectUri) return json(res, 400, { error: 'invalid_request' });
    const back = new URL(redirectUri);
    const state = p.get('state');
    if (mode === 'error_response') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The hostile IdP denies access');
    } else {
      const code = randomBytes(24).toString('base64url');
      codes.set(code, {
        clientId,
        redirectUri,
        nonce: p.get('nonce') ?? undefined,
        codeChallenge: p.get('code_challenge') ?? undefined,
        codeChallengeMethod: p.get('code_challenge_method') ?? undefined,
      });
      back.searchParams.set('code', code);
    }
    if (state !== null) back.searchParams.set('state', state);
    if (mode === 'wrong_callback_iss') back.searchParams.set('iss', OTHER_ISSUER);
    else if (mode !== 'missing_callback_iss') back.searchParams.set('iss', issuer);
    res.writeHead(302, { location: back.href, 'cache-control': 'no-store' });
    res.end();
  }

  function userinfo(req: http.IncomingMessage, res: http.ServerResponse) {
    const auth = req.headers.authorization ?? '';
    const sub = auth.startsWith('Bearer ') ? accessTokens.get(auth.slice(7)) : undefined;
    if (!sub) return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    return json(res, 200, {
      sub: mode === 'userinfo_wrong_sub' ? 'someone-else' : sub,
      email: `${sub}@${mode === 'foreign_email' ? foreignDomain : domain}`,
      email_verified: true,
      groups: ['hostile-users'],
    });
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
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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
