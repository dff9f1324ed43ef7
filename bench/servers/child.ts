/**
 * One benchmarked server in its own process, so Concord, the bare oidc-provider baseline and the
 * partner IdP each get the same process model and their CPU time can be read separately.
 *
 * Started by bench/lib/children.ts, which sends the spec over IPC. Talks over IPC:
 *   <- { type: 'spec', spec }                          what to start
 *   -> { type: 'ready', url, pid }                     once listening
 *   <- { type: 'cpu', id }  -> { type: 'cpu', id, user, system, rss }   CPU microseconds so far
 *   <- { type: 'stop' }                                closes and exits
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import { pino } from 'pino';
import { createConcord } from '../../src/app.ts';
import { ClientSchema, ConcordSettingsSchema, ParticipantSchema, type LoadedConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { createStore, MemoryStore, type Store } from '../../src/store/index.ts';
import { startPartnerIdp, type PartnerClient, type PartnerUser } from '../../demo/partner-idp.ts';

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
      client: { client_id: string; client_secret: string };
    }
  | {
      kind: 'partner';
      port: number;
      name: string;
      domain: string;
      users: PartnerUser[];
      clients: PartnerClient[];
    };

if (!process.send) {
  process.stderr.write('bench/servers/child.ts is started by bench/lib/children.ts\n');
  process.exit(2);
}

let close: () => Promise<void> = async () => {};

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
  // Production logs every request at info; the lines are written (to /dev/null), not skipped.
  const logger = createLogger({ level: settings.logLevel, destination: pino.destination({ dest: '/dev/null', sync: false }) });
  const concord = await createConcord({ config, logger });
  await concord.listen();
  close = () => concord.close();
  return issuer;
}

async function startBareChild(s: Extract<ChildSpec, { kind: 'bare' }>): Promise<string> {
  const issuer = `http://127.0.0.1:${s.port}`;
  const store: Store = s.store === 'memory' ? new MemoryStore() : await createStore({ url: s.store, prefix: s.storePrefix ?? 'bare:' });
  const { privateKey } = await generateKeyPair(s.algorithm === 'EdDSA' ? 'Ed25519' : s.algorithm, { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(6).toString('hex'), alg: s.algorithm, use: 'sig' };
  const configuration: Configuration = {
    adapter: (name: string) => store.adapter(name),
    clients: [{ ...s.client, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
    jwks: { keys: [jwk] } as Configuration['jwks'],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    enabledJWA: { idTokenSigningAlgValues: [s.algorithm] },
    clientDefaults: { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: s.algorithm },
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
    ttl: { ClientCredentials: 300 },
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
  return issuer;
}

async function startPartnerChild(s: Extract<ChildSpec, { kind: 'partner' }>): Promise<string> {
  const idp = await startPartnerIdp({ name: s.name, domain: s.domain, users: s.users, clients: s.clients, port: s.port });
  close = () => idp.close();
  return idp.issuer;
}

function start(spec: ChildSpec): void {
  const started = spec.kind === 'concord' ? startConcordChild(spec) : spec.kind === 'bare' ? startBareChild(spec) : startPartnerChild(spec);
  started.then(
    (url) => process.send!({ type: 'ready', url, pid: process.pid }),
    (err: unknown) => {
      process.stderr.write(`bench child (${spec.kind}) failed: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

process.on('message', (message: { type: string; id?: number; spec?: ChildSpec }) => {
  if (message.type === 'spec') {
    start(message.spec!);
  } else if (message.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send!({ type: 'cpu', id: message.id, user, system, rss: process.memoryUsage.rss() });
  } else if (message.type === 'stop') {
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    void close()
      .catch(() => {})
      .finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
