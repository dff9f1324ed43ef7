import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Browser, parseForm } from '../../test/support/http-client.ts';
import { DEMO_PASSWORD, type PartnerUser } from '../../demo/partner-idp.ts';
import { startChild, type BenchChild } from './children.ts';
import { freePort } from '../../test/support/ports.ts';
import { percentile } from './report.ts';

/*
 * A lean login driver: one cookie jar per login (test/support/http-client.ts: fetch, redirects
 * followed by hand), the same steps as test/support/federation.ts brokeredLogin, and a plain
 * fetch for the code exchange (no ID-token validation: the RP's work is not what is measured).
 */

export const BENCH_RP = {
  client_id: 'bench-rp',
  client_name: 'Bench RP',
  client_secret: 'bench-rp-secret-0123456789abcdef',
  redirect_uris: ['http://127.0.0.1:9/cb'],
  grant_types: ['authorization_code', 'refresh_token'],
  skip_consent: true,
  access_token_claims: ['groups'],
};

const UPSTREAM_SECRET = 'acme-upstream-secret-0123456789';

/** Partner users user00000@acme.example ..., so each login can be a different person. */
export function partnerUsers(count: number): PartnerUser[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i).padStart(5, '0');
    return {
      sub: `5f0c1a52-8d1e-4b7a-9f0e-${n.padStart(12, '0')}`,
      email: `user${n}@acme.example`,
      name: `User ${n}`,
      given_name: 'User',
      family_name: n,
      upn: `user${n}@acme.example`,
      groups: ['engineering', 'all-staff'],
      roles: ['Concord.User'],
    };
  });
}

/** The participant's mapping in the login benchmarks: a few rules as a real one has, one of them CEL. */
const BENCH_MAPPING = {
  rules: [
    { claim: 'preferred_username', from: 'upn', regex: { pattern: '^([^@]+)@', extract: '$1' } },
    { claim: 'groups', from: 'groups' },
    { claim: 'roles', cel: "claims.roles.map(r, r.lowerAscii())" },
    { claim: 'tenant', value: 'acme' },
  ],
};

export interface LoginRig {
  /** The first (or only) Concord instance. */
  concord: BenchChild;
  /** Every Concord instance; with more than one, `issuer` is a round-robin TCP proxy in front of them. */
  concords: BenchChild[];
  partner: BenchChild;
  issuer: string;
  users: PartnerUser[];
  stop(): Promise<void>;
}

/** Concord (child process) with one participant whose upstream is a real oidc-provider partner IdP (another child). */
export async function startLoginRig(options: {
  store: string;
  storePrefix: string;
  users?: number;
  settings?: Record<string, unknown>;
  /** Fields of the participant beyond the defaults (its `session` policy, ...). */
  participant?: Record<string, unknown>;
  /** The partner issues refresh tokens (for Concord's re-checks at refresh). */
  partnerRefreshTokens?: boolean;
  /** Concord instances on the same store behind one issuer (a round-robin TCP proxy, one connection at a time). Default 1. */
  instances?: number;
}): Promise<LoginRig> {
  const instances = options.instances ?? 1;
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const users = partnerUsers(options.users ?? 2000);
  const partner = await startChild({
    kind: 'partner',
    name: 'Acme',
    domain: 'acme.example',
    users,
    clients: [{ client_id: 'concord', client_secret: UPSTREAM_SECRET, redirect_uris: [`${issuer}/broker/acme/callback`] }],
    ...(options.partnerRefreshTokens ? { refreshTokens: true } : {}),
  });
  const concords: BenchChild[] = [];
  let proxy: net.Server | undefined;
  try {
    for (let i = 0; i < instances; i++) {
      concords.push(
        await startChild({
          kind: 'concord',
          ...(instances === 1 ? { port } : {}),
          settings: {
            ...(instances === 1 ? {} : { issuer }),
            store: options.store,
            storePrefix: options.storePrefix,
            rateLimits: { token: { points: 1_000_000, duration: 60 }, browser: { points: 1_000_000, duration: 60 } },
            ...options.settings,
          },
          participants: [
            {
              id: 'acme',
              displayName: 'Acme',
              domains: ['acme.example'],
              upstream: { type: 'oidc', issuer: partner.url, clientId: 'concord', clientSecret: UPSTREAM_SECRET, allowInsecureHttp: true, scopes: ['openid', 'email', 'profile'] },
              mapping: BENCH_MAPPING,
              ...options.participant,
            },
          ],
          clients: [BENCH_RP],
        }),
      );
    }
    if (instances > 1) proxy = await roundRobin(port, concords.map((c) => Number(new URL(c.url).port)));
  } catch (err) {
    await Promise.all([partner.stop(), ...concords.map((c) => c.stop())]);
    throw err;
  }
  return {
    concord: concords[0]!,
    concords,
    partner,
    issuer,
    users,
    async stop() {
      await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
      await Promise.all([...concords.map((c) => c.stop()), partner.stop()]);
    },
  };
}

/** A load balancer's part, minimally: each new TCP connection to `port` goes to the next of `targets`. */
async function roundRobin(port: number, targets: number[]): Promise<net.Server> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targets[next++ % targets.length]! });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

export interface LoginResult {
  ms: number;
  /** HTTP requests the login took (to Concord and the partner, code exchange included). */
  requests: number;
  tokens: { access_token: string; refresh_token?: string; id_token?: string };
}

export type LoginStep = 'authorize' | 'email' | 'upstream' | 'exchange';

const atRp = (u: URL) => u.href.startsWith(BENCH_RP.redirect_uris[0]!);

/**
 * One whole brokered login over HTTP: /auth -> Concord's login page -> email -> the partner's
 * login page -> password -> the redirect chain back through Concord -> the code at the RP -> the
 * code exchange. `afterStep` runs after each of the four steps (the Redis part counts there).
 */
export async function login(issuer: string, user: PartnerUser, afterStep?: (step: LoginStep) => Promise<void>): Promise<LoginResult> {
  const started = performance.now();
  const browser = new Browser({ timeoutMs: 15_000 });
  const verifier = randomBytes(32).toString('base64url');
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: BENCH_RP.client_id,
    response_type: 'code',
    redirect_uri: BENCH_RP.redirect_uris[0]!,
    scope: 'openid email profile offline_access',
    state: randomBytes(16).toString('base64url'),
    nonce: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();

  let page = await browser.get(auth, { stopAt: atRp });
  if (page.status !== 200 || !page.url.pathname.startsWith('/interaction/')) throw new Error(`no login page: ${page.status} at ${page.url.pathname}`);
  await afterStep?.('authorize');
  let form = parseForm(page.body, '/login');
  page = await browser.post(new URL(form.action, page.url), { ...form.fields, email: user.email }, { stopAt: atRp });
  if (page.status !== 200 || !page.body.includes('password')) throw new Error(`no partner login page: ${page.status} at ${page.url.href}`);
  await afterStep?.('email');
  form = parseForm(page.body, '/login');
  const done = await browser.post(new URL(form.action, page.url), { ...form.fields, username: user.email, password: user.password ?? DEMO_PASSWORD }, { stopAt: atRp });
  const code = done.stoppedAt?.searchParams.get('code');
  if (!code) throw new Error(`no code at the RP: ${done.status} at ${done.url.href}: ${done.body.slice(0, 200)}`);
  await afterStep?.('upstream');
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${BENCH_RP.client_id}:${BENCH_RP.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: BENCH_RP.redirect_uris[0]!, code_verifier: verifier }).toString(),
    signal: AbortSignal.timeout(15_000),
  });
  const tokens = (await response.json()) as LoginResult['tokens'];
  if (response.status !== 200 || !tokens.access_token) throw new Error(`code exchange answered ${response.status}: ${JSON.stringify(tokens)}`);
  await afterStep?.('exchange');
  return { ms: performance.now() - started, requests: browser.history.length + 1, tokens };
}

export interface LoadOfLogins {
  logins: number;
  failures: number;
  firstError?: string;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  requestsPerLogin: number;
}

/**
 * `concurrency` browsers, each doing logins back to back, for `seconds` or `maxLogins`, whichever
 * comes first. Users are taken in turn from `users` (so each login is a new session of a user).
 */
export async function loginLoad(issuer: string, users: PartnerUser[], options: { concurrency: number; seconds: number; maxLogins: number; offset?: number }): Promise<LoadOfLogins> {
  const times: number[] = [];
  let requests = 0;
  let failures = 0;
  let firstError: string | undefined;
  let next = options.offset ?? 0;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + options.seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline && started < options.maxLogins) {
      started++;
      const user = users[next++ % users.length]!;
      try {
        const result = await login(issuer, user);
        times.push(result.ms);
        requests += result.requests;
      } catch (err) {
        failures++;
        firstError ??= (err as Error).message;
        // A failing server must not turn this loop into a busy one.
        if (failures > 50) return;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = Float64Array.from(times).sort();
  return {
    logins: times.length,
    failures,
    ...(firstError ? { firstError } : {}),
    seconds,
    rate: times.length / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    requestsPerLogin: times.length ? requests / times.length : 0,
  };
}
