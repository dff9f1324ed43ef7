/**
 * One benchmarked server in its own process, so Concord, the bare oidc-provider baseline and the
 * partner IdP each get the same process model and their CPU time can be read separately.
 *
 * Started by bench/lib/children.ts, which sends the spec over IPC. Talks over IPC:
 *   <- { type: 'spec', spec }                          what to start
 *   -> { type: 'ready', url, pid, refreshTokens? }     once listening (a bare server's minted refresh tokens)
 *   <- { type: 'cpu', id }  -> { type: 'cpu', id, user, system, rss, heap, redisWrites, redisRounds }   CPU microseconds so far, memory (bytes; heap: V8's heap in use), writes to Redis so far, rounds of them
 *   <- { type: 'profile', id, file? }  -> { type: 'profile', id }   starts a V8 CPU profile, or (with file) stops it and writes it there
 *   <- { type: 'stop' }                                closes and exits
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import { createConcord } from '../../src/app.ts';
import { ClientSchema, ConcordSettingsSchema, ParticipantSchema, type LoadedConfig } from '../../src/config/index.ts';
import { createLogger, logDestination } from '../../src/observability/index.ts';
import { createStore, MemoryStore, type Store } from '../../src/store/index.ts';
import { startPartnerIdp, type PartnerClient, type PartnerUser } from '../../demo/partner-idp.ts';
import { RespTracer } from '../lib/resp-trace.ts';

export type ChildSpec =
  | {
      kind: 'concord';
      port: number;
      /** Settings as in concord.yaml (issuer, store, storePrefix, keys, logLevel, ...). */
      settings: Record<string, unknown>;
      participants?: unknown[];
      clients?: unknown[];
    }
  | {
      kind: 'bare';
      port: number;
      /** 'memory' or a redis:// URL: the same store backends Concord uses. */
      store: string;
      storePrefix?: string;
      algorithm: 'ES256' | 'EdDSA' | 'RS256';
      /** ID tokens in this algorithm instead (a key of its own): Concord signs a client's ID tokens RS256 when it names none. */
      idTokenAlgorithm?: 'ES256' | 'EdDSA' | 'RS256';
      client: { client_id: string; client_secret: string };
      /** Also serve the refresh_token grant (rotating, as Concord's) and mint this many refresh tokens, each of its own grant. */
      mintRefreshTokens?: number;
    }
  | {
      kind: 'partner';
      port: number;
      name: string;
      domain: string;
      users: PartnerUser[];
      clients: PartnerClient[];
      /** Issue refresh tokens at code exchange (Keycloak-style). */
      refreshTokens?: boolean;
    };

if (!process.send) {
  process.stderr.write('bench/servers/child.ts is started by bench/lib/children.ts\n');
  process.exit(2);
}

let close: () => Promise<void> = async () => {};

/**
 * Writes to Redis sockets: a round trip each (ioredis writes one command, or one pipeline or
 * MULTI block, per write, and waits for the answer). Counted for the ports of the store URL.
 * With BENCH_WRITES_DUMP=file, each write is also appended to the file as one line: its number and
 * round, the port it went to and the commands it carries (arguments cut at 60 characters), to see
 * which commands share a round trip.
 */
let redisWrites = 0;
/**
 * Rounds of writes: writes made in one turn of the event loop go out together and are answered
 * together, so they cost one wait, however many sockets they use. On one Redis a round is a write;
 * on a Cluster, a request's commands for three nodes are three writes in one round.
 */
let redisRounds = 0;
let roundOpen = false;
const closeRound = () => {
  roundOpen = false;
};
function countRedisWrites(url: string): void {
  const ports = new Set([...url.matchAll(/:(\d+)(?=[,/?]|$)/g)].map((m) => Number(m[1])));
  if (ports.size === 0) return;
  const dump = process.env.BENCH_WRITES_DUMP;
  // BENCH_BYTES_DUMP=file: each command, once answered, as `B <tab> name <tab> key <tab> bytes sent <tab> bytes received` (bench/login-bytes.ts).
  const bytesDump = process.env.BENCH_BYTES_DUMP;
  const tracer = bytesDump ? new RespTracer((c) => appendFileSync(bytesDump, `B\t${c.name}\t${c.key}\t${c.sent}\t${c.received}\n`)) : undefined;
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function countedWrite(this: net.Socket, ...args: unknown[]) {
    if (this.remotePort !== undefined && ports.has(this.remotePort)) {
      redisWrites++;
      if (!roundOpen) {
        roundOpen = true;
        redisRounds++;
        setImmediate(closeRound);
      }
      if (dump) appendFileSync(dump, `W#${redisWrites} R#${redisRounds} :${this.remotePort} ${respCommands(args[0]).join(' ;; ')}\n`);
      tracer?.written(this, args[0]);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
}

/** The commands in a chunk of RESP requests (`*N` arrays of `$len` bulk strings), each as its words, arguments cut at 60 characters. */
function respCommands(chunk: unknown): string[] {
  const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
  const commands: string[] = [];
  let at = 0;
  const line = () => {
    const end = buf.indexOf('\r\n', at);
    const text = buf.toString('latin1', at, end);
    at = end + 2;
    return text;
  };
  while (at < buf.length && buf[at] === 0x2a /* * */) {
    const words: string[] = [];
    for (let n = Number(line().slice(1)); n > 0; n--) {
      const len = Number(line().slice(1));
      words.push(buf.toString('utf8', at, Math.min(at + len, at + 60)));
      at += len + 2;
    }
    commands.push(words.join(' '));
  }
  return commands;
}

async function startConcordChild(s: Extract<ChildSpec, { kind: 'concord' }>): Promise<string> {
  const issuer = `http://127.0.0.1:${s.port}`;
  const settings = ConcordSettingsSchema.parse({
    issuer,
    port: s.port,
    host: '127.0.0.1',
    admin: { port: 0, host: '127.0.0.1', token: 'bench-admin-token-0123456789' },
    logLevel: 'info',
    shutdown: { drainDelayMs: 0 },
    // Required with a Redis store; one key for every child, which may share a store.
    secretsKey: Buffer.alloc(32, 5).toString('base64'),
    ...s.settings,
  });
  const config: LoadedConfig = {
    dir: '(bench)',
    settings,
    participants: (s.participants ?? []).map((p) => ParticipantSchema.parse(p)),
    clients: (s.clients ?? []).map((c) => ClientSchema.parse(c)),
  };
  // Production logs every request at info; the lines are written (to /dev/null, as deployed: logDestination), not skipped.
  const logger = createLogger({ level: settings.logLevel, destination: logDestination('/dev/null') });
  if (typeof settings.store === 'string' && settings.store !== 'memory') countRedisWrites(settings.store);
  const concord = await createConcord({ config, logger });
  await concord.listen();
  close = () => concord.close();
  return issuer;
}

async function startBareChild(s: Extract<ChildSpec, { kind: 'bare' }>): Promise<{ url: string; refreshTokens?: string[] }> {
  const issuer = `http://127.0.0.1:${s.port}`;
  const store: Store = s.store === 'memory' ? new MemoryStore() : await createStore({ url: s.store, prefix: s.storePrefix ?? 'bare:' });
  const signingKey = async (alg: 'ES256' | 'EdDSA' | 'RS256') => {
    const { privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'Ed25519' : alg, { extractable: true });
    return { ...(await exportJWK(privateKey)), kid: randomBytes(6).toString('hex'), alg, use: 'sig' };
  };
  const idTokenAlg = s.idTokenAlgorithm ?? s.algorithm;
  const keys = [await signingKey(s.algorithm), ...(idTokenAlg !== s.algorithm ? [await signingKey(idTokenAlg)] : [])];
  const refresh = (s.mintRefreshTokens ?? 0) > 0;
  const configuration: Configuration = {
    adapter: (name: string) => store.adapter(name),
    clients: [{ ...s.client, grant_types: refresh ? ['client_credentials', 'refresh_token'] : ['client_credentials'], response_types: [], redirect_uris: [] }],
    jwks: { keys } as Configuration['jwks'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    enabledJWA: { idTokenSigningAlgValues: [idTokenAlg] },
    clientDefaults: { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: idTokenAlg },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Concord's token format: RFC 9068 JWT access tokens for one audience (resource indicators).
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        defaultResource: () => issuer,
        getResourceServerInfo: () => ({ audience: issuer, scope: 'openid', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: s.algorithm } } }),
      },
    },
    ttl: { ClientCredentials: 300, AccessToken: 300, IdToken: 300, RefreshToken: 14 * 86400, Grant: 14 * 86400 },
    // As Concord: refresh tokens rotate, accounts are found (statically here: no store, no upstream).
    ...(refresh
      ? {
          rotateRefreshToken: () => true,
          findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@bench.example`, groups: ['engineering', 'all-staff'] }) }),
        }
      : {}),
  };
  const provider = new Provider(issuer, configuration);
  const server = http.createServer(provider.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(s.port, '127.0.0.1', () => resolve());
  });
  close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await store.close();
  };
  if (!refresh) return { url: issuer };
  // What a code exchange would have left: a grant with the openid scope and a refresh token of it, per user.
  const client = (await provider.Client.find(s.client.client_id))!;
  const refreshTokens: string[] = [];
  for (let i = 0; i < s.mintRefreshTokens!; i++) {
    const accountId = `bench-user-${i}`;
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope('openid email');
    // For the issuer as resource, as Concord's logins grant: the refreshed access token is a JWT (RFC 9068), not opaque.
    grant.addResourceScope(issuer, 'openid email');
    const grantId = await grant.save();
    const token = new provider.RefreshToken({ accountId, client, grantId, scope: 'openid email', resource: issuer, gty: 'authorization_code', authTime: Math.floor(Date.now() / 1000), rotations: 0 } as never);
    refreshTokens.push(await token.save());
  }
  return { url: issuer, refreshTokens };
}

async function startPartnerChild(s: Extract<ChildSpec, { kind: 'partner' }>): Promise<string> {
  const idp = await startPartnerIdp({ name: s.name, domain: s.domain, users: s.users, clients: s.clients, port: s.port, ...(s.refreshTokens ? { refreshTokens: true } : {}) });
  close = () => idp.close();
  return idp.issuer;
}

function start(spec: ChildSpec): void {
  const started: Promise<{ url: string; refreshTokens?: string[] }> =
    spec.kind === 'concord' ? startConcordChild(spec).then((url) => ({ url })) : spec.kind === 'bare' ? startBareChild(spec) : startPartnerChild(spec).then((url) => ({ url }));
  started.then(
    (ready) => process.send!({ type: 'ready', ...ready, pid: process.pid }),
    (err: unknown) => {
      process.stderr.write(`bench child (${spec.kind}) failed: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/**
 * A V8 CPU profile of a window of the child's life (what `node --cpu-prof` writes for its whole
 * life): started without `file`, stopped and written to `file` (.cpuprofile, bench/profile.ts sums it).
 */
let inspector: Session | undefined;
async function profile(file?: string): Promise<void> {
  if (!file) {
    inspector = new Session();
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.start');
    return;
  }
  if (!inspector) throw new Error('no profile started');
  const { profile: taken } = await inspector.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(taken));
  inspector.disconnect();
  inspector = undefined;
}

process.on('message', (message: { type: string; id?: number; spec?: ChildSpec; file?: string }) => {
  if (message.type === 'spec') {
    start(message.spec!);
  } else if (message.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ type: 'cpu', id: message.id, user, system, rss: process.memoryUsage.rss(), heap: process.memoryUsage().heapUsed, redisWrites, redisRounds });
  } else if (message.type === 'profile') {
    void profile(message.file).then(
      () => process.send!({ type: 'profile', id: message.id }),
      (err: unknown) => process.send!({ type: 'profile', id: message.id, error: String(err) }),
    );
  } else if (message.type === 'stop') {
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    void close()
      .catch(() => {})
      .finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
