import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

/*
 * Helpers shared by the admin and CLI tests: a tiny upstream that serves only discovery and a
 * JWKS (enough for the registration check and for the login redirect), an admin API caller,
 * and polling.
 */

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const UPSTREAM_SECRET = 'upstream-secret-DO-NOT-LEAK-4f1c2b';
export const CLIENT_SECRET = 'client-secret-DO-NOT-LEAK-9a8b7c6d';
/** 32 bytes, base64: secrets are sealed in the store with it. */
export const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');

export interface DiscoveryServer {
  issuer: string;
  authorizationEndpoint: string;
  /** What discovery says the issuer is: the real one, or another (a misconfigured or spoofing upstream). */
  issuerMismatch: boolean;
  requests: number;
  close(): Promise<void>;
}

export async function startDiscoveryServer(): Promise<DiscoveryServer> {
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const state: DiscoveryServer = {
    issuer,
    authorizationEndpoint: `${issuer}/authorize`,
    issuerMismatch: false,
    requests: 0,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server.on('request', (req, res) => {
    state.requests++;
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      return json({
        issuer: state.issuerMismatch ? `${issuer}/someone-else` : issuer,
        authorization_endpoint: state.authorizationEndpoint,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        authorization_response_iss_parameter_supported: true,
      });
    }
    if (req.url === '/jwks') return json({ keys: [jwk] });
    res.writeHead(404).end();
  });
  return state;
}

export function participantDoc(id: string, issuer: string, domain: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    displayName: `${id} Corp`,
    domains: [domain],
    upstream: { type: 'oidc', issuer, clientId: `concord-at-${id}`, clientSecret: UPSTREAM_SECRET, allowInsecureHttp: true },
    mapping: { rules: [{ claim: 'department', from: 'dept' }, { require: 'claims.active == true', name: 'active-only', message: 'Your account is not active.' }] },
    ...extra,
  };
}

export function clientDoc(id: string, extra: Record<string, unknown> = {}) {
  return {
    client_id: id,
    client_name: `Client ${id}`,
    client_secret: CLIENT_SECRET,
    redirect_uris: ['http://127.0.0.1:9999/callback'],
    skip_consent: true,
    ...extra,
  };
}

export interface ApiResponse {
  status: number;
  body: any;
  text: string;
}

/** Calls the admin API; every response text is kept so a test can check no secret ever came back. */
/** `token` null: no Authorization header at all. */
export function adminApi(baseUrl: string, token: string | null = ADMIN_TOKEN) {
  const seen: string[] = [];
  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    seen.push(text);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  }
  return {
    call,
    get: (path: string) => call('GET', path),
    post: (path: string, body?: unknown) => call('POST', path, body),
    put: (path: string, body?: unknown) => call('PUT', path, body),
    del: (path: string) => call('DELETE', path),
    /** Every response body received so far. */
    responses: () => seen.join('\n'),
  };
}

/** Polls until `check` returns a truthy value (or stops throwing); fails after `timeoutMs`. Returns the elapsed ms. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 1000, what = 'condition'): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return { value, ms: performance.now() - started };
      last = new Error(`${what}: still false`);
    } catch (error) {
      last = error;
    }
    if (performance.now() - started > timeoutMs) {
      throw new Error(`${what} not reached within ${timeoutMs} ms: ${(last as Error)?.message ?? last}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const uniquePrefix = (name: string) => `concord-test:${name}:${randomUUID()}:`;

export const REDIS_URL = process.env.CONCORD_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** Removes every key of one test run from the shared Redis. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** An authorization request as a relying party would send it (PKCE S256, any valid challenge). */
export function authorizationUrl(issuer: string, clientId: string, loginHint: string): string {
  const params = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: 'http://127.0.0.1:9999/callback',
    scope: 'openid email',
    state: randomUUID(),
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    login_hint: loginHint,
  });
  return `${issuer}/auth?${params}`;
}
