import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose';

export type TestSigningAlg = 'ES256' | 'EdDSA' | 'RS256' | 'PS256';

export interface JwksServerOptions {
  /** Algorithm of the generated keys. Default ES256. */
  alg?: TestSigningAlg;
  /** Default `aud` of signed tokens. Default "https://api.example.test". */
  audience?: string;
  /** Path appended to the origin to form the issuer, e.g. "/tenant-a". Default none. */
  issuerPath?: string;
}

export interface JwksServerKey {
  readonly kid: string;
  readonly alg: TestSigningAlg;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  published: boolean;
}

export type JwksEndpoint = 'discovery' | 'jwks';

export interface JwksServer {
  /** `http://127.0.0.1:{port}` plus issuerPath. */
  readonly issuer: string;
  readonly discoveryUrl: string;
  readonly jwksUri: string;
  /** Default audience of `sign()`. */
  readonly audience: string;
  /** Live counters of requests served (failed ones included). */
  readonly requests: { discovery: number; jwks: number; other: number };
  /** The kid `sign()` uses by default. */
  readonly kid: string;
  /** Every key generated so far, by kid, published or not. */
  readonly keys: ReadonlyMap<string, JwksServerKey>;
  /**
   * A compact JWT signed with the current key (or with the key whose kid is `header.kid`, if the
   * server has it). Defaults: a valid Concord access token (typ at+jwt; iss, sub, aud, client_id,
   * iat, exp in 5 min, jti, scope "openid"). `claims` override them; a claim set to undefined is
   * left out. `header` overrides alg/kid/typ (an unknown kid is kept as is, signed with the current key).
   */
  sign(claims?: Record<string, unknown>, header?: Partial<JWTHeaderParameters>): Promise<string>;
  /** A new key. Published in the JWKS and made current unless told otherwise. Returns its kid. */
  rotate(options?: { publish?: boolean; activate?: boolean }): Promise<string>;
  /** Shows or hides a key in the JWKS. */
  setPublished(kid: string, published: boolean): void;
  /** The next `times` requests to `endpoint` are answered with `status` (default 503). */
  failNext(endpoint: JwksEndpoint, times?: number, status?: number): void;
  /** Extra fields for (or overrides of) the discovery document. */
  discoveryOverrides: Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * A tiny Concord stand-in for tests of anything that verifies Concord tokens: serves
 * `/.well-known/openid-configuration` and `/jwks` for a generated key set on 127.0.0.1, counts the
 * requests, signs tokens.
 */
export async function startJwksServer(options: JwksServerOptions = {}): Promise<JwksServer> {
  const alg = options.alg ?? 'ES256';
  const audience = options.audience ?? 'https://api.example.test';
  const issuerPath = (options.issuerPath ?? '').replace(/\/+$/, '');
  const keys = new Map<string, JwksServerKey>();
  const requests = { discovery: 0, jwks: 0, other: 0 };
  const failures: Record<JwksEndpoint, { times: number; status: number }> = {
    discovery: { times: 0, status: 503 },
    jwks: { times: 0, status: 503 },
  };
  let currentKid = '';
  let issuer = '';

  async function addKey(publish: boolean): Promise<JwksServerKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg.toLowerCase()}-${keys.size + 1}-${randomUUID().slice(0, 8)}`;
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const key: JwksServerKey = { kid, alg, privateKey, publicJwk, published: publish };
    keys.set(kid, key);
    return key;
  }

  currentKid = (await addKey(true)).kid;

  const discoveryPath = `${issuerPath}/.well-known/openid-configuration`;
  const jwksPath = `${issuerPath}/jwks`;

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const endpoint: JwksEndpoint | undefined = path === discoveryPath ? 'discovery' : path === jwksPath ? 'jwks' : undefined;
    if (endpoint === undefined || req.method !== 'GET') {
      requests.other++;
      res.writeHead(404).end();
      return;
    }
    requests[endpoint]++;
    const failure = failures[endpoint];
    if (failure.times > 0) {
      failure.times--;
      res.writeHead(failure.status, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
      return;
    }
    const body =
      endpoint === 'discovery'
        ? {
            issuer,
            jwks_uri: `${issuer}/jwks`,
            authorization_endpoint: `${issuer}/auth`,
            token_endpoint: `${issuer}/token`,
            id_token_signing_alg_values_supported: [alg],
            ...handle.discoveryOverrides,
          }
        : { keys: [...keys.values()].filter((k) => k.published).map((k) => k.publicJwk) };
    res.writeHead(200, { 'content-type': endpoint === 'jwks' ? 'application/jwk-set+json' : 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}${issuerPath}`;

  const handle: JwksServer = {
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksUri: `${issuer}/jwks`,
    audience,
    requests,
    get kid() {
      return currentKid;
    },
    keys,
    discoveryOverrides: {},
    async sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        iss: issuer,
        sub: 'acme:alice',
        aud: audience,
        client_id: 'test-client',
        iat: now,
        exp: now + 300,
        jti: randomUUID(),
        scope: 'openid',
        ...claims,
      };
      for (const name of Object.keys(payload)) if (payload[name] === undefined) delete payload[name];
      const key = keys.get(header.kid ?? currentKid) ?? keys.get(currentKid)!;
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);
    },
    async rotate({ publish = true, activate = true } = {}) {
      const key = await addKey(publish);
      if (activate) currentKid = key.kid;
      return key.kid;
    },
    setPublished(kid, published) {
      const key = keys.get(kid);
      if (!key) throw new Error(`no key ${kid}`);
      key.published = published;
    },
    failNext(endpoint, times = 1, status = 503) {
      failures[endpoint] = { times, status };
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
  return handle;
}
