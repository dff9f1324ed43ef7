import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { adminRouter, createAuditLog, createConfigSync, upstreamCheck } from './admin/index.ts';
import type { LoadedConfig } from './config/index.ts';
import { errorBoundary } from './http/errors.ts';
import { securityHeaders } from './http/security-headers.ts';
import { interactionRoutes, stylesheet, type LoginObserver } from './interactions/index.ts';
import { KeyManager } from './keys/index.ts';
import { createLogger, createMetrics, requestLogging, type Logger, type Metrics } from './observability/index.ts';
import { ConnectorPool, Registry } from './participants/index.ts';
import { AccountStore, createProvider, jwtUserinfo, pairwiseKey } from './provider/index.ts';
import { createSecretBox, type SecretBox } from './secrets/index.ts';
import { createStore, StoreUnavailableError, type Store } from './store/index.ts';

export interface ConcordOptions {
  config: LoadedConfig;
  logger?: Logger;
  /** Use this store instead of the one named in the settings (tests share one). */
  store?: Store;
  observe?: LoginObserver;
}

export interface Concord {
  readonly settings: LoadedConfig['settings'];
  readonly store: Store;
  readonly registry: Registry;
  readonly keys: KeyManager;
  readonly secrets: SecretBox;
  readonly accounts: AccountStore;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The provider serving now; rebuilt when the key set changes. */
  provider(): Provider;
  /** The public Koa app (OIDC, login pages, health). */
  readonly publicApp: Koa;
  /** The internal Koa app (admin API, metrics). */
  readonly adminApp: Koa;
  /** Starts both listeners; port 0 picks free ports. Returns the bound addresses. */
  listen(): Promise<{ publicUrl: string; adminUrl: string }>;
  /** Readiness off, stop accepting, finish requests in flight, close the store. */
  close(): Promise<void>;
  ready(): Promise<boolean>;
}

export async function createConcord(options: ConcordOptions): Promise<Concord> {
  const { settings, participants, clients } = options.config;
  const log = options.logger ?? createLogger({ level: settings.logLevel });
  const metrics = createMetrics();
  const store = options.store ?? (await createStore({ url: settings.store, prefix: settings.storePrefix }));
  const secrets = createSecretBox(settings.secretsKey);
  if (!secrets.encrypting) log.warn('CONCORD_SECRETS_KEY is not set: signing keys and secrets are kept unencrypted in the store');

  const maxTokenTtl = Math.max(settings.tokens.accessTokenTtl, settings.tokens.idTokenTtl, settings.tokens.clientCredentialsTtl, ...settings.resourceServers.map((rs) => rs.accessTokenTtl ?? 0));
  const keys = new KeyManager({
    store,
    secrets,
    algorithm: settings.keys.algorithm,
    activationDelay: settings.keys.activationDelay,
    retireGrace: settings.keys.retireGrace,
    maxTokenTtl,
    rotateEvery: settings.keys.rotateEvery,
  });
  await keys.init();

  const registry = new Registry();
  for (const participant of participants) registry.setParticipant(participant);
  for (const client of clients) registry.setClient(client);

  const accounts = new AccountStore(store, Math.max(settings.tokens.refreshTokenTtl, settings.tokens.sessionTtl, settings.tokens.grantTtl));
  const connectors = new ConnectorPool(settings, log);
  // The files seeded the registry above; from here the store is the truth, shared by every instance.
  const sync = createConfigSync({ store, registry, secrets, metrics, log, seed: { participants, clients } });
  await sync.start();

  // The provider is rebuilt when the key set changes (a key activates, is added or leaves).
  // Requests already inside the old one finish there.
  let providerState: { provider: Provider; fingerprint: string; middleware: Koa.Middleware };
  const storeErrors = new WeakSet<object>();
  function buildProvider(): void {
    const keySet = keys.keySet();
    const provider = createProvider({ settings, store, registry, accounts, keySet, cookieKeys: keys.cookieKeys(), log });
    provider.on('server_error', (ctx: Koa.Context, error: unknown) => {
      if (error instanceof StoreUnavailableError) {
        storeErrors.add(ctx);
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: 'temporarily_unavailable', error_description: 'the session store is unavailable' };
      } else {
        (ctx.state?.log ?? log).error({ err: error }, 'oidc-provider server error');
      }
    });
    providerState = { provider, fingerprint: keySet.fingerprint, middleware: compose(provider.middleware) as Koa.Middleware };
  }
  buildProvider();

  async function followKeys(): Promise<void> {
    await keys.reload();
    await keys.rotateIfDue();
    await keys.sweep();
    if (keys.keySet().fingerprint !== providerState.fingerprint) {
      buildProvider();
      log.info({ keys: providerState.fingerprint }, 'signing keys changed; provider rebuilt');
    }
  }
  const unsubscribeKeys = await keys.onRemoteChange(() => void followKeys().catch((err) => log.warn({ err }, 'key reload failed')));
  const keyTimer = setInterval(() => void followKeys().catch((err) => log.warn({ err }, 'key reload failed')), 1000);
  keyTimer.unref();

  let shuttingDown = false;
  async function ready(): Promise<boolean> {
    if (shuttingDown) return false;
    try {
      await store.ping();
      return keys.keySet().jwks.keys.length > 0;
    } catch {
      return false;
    }
  }

  const publicApp = new Koa({ keys: keys.cookieKeys(), proxy: settings.trustProxy });
  publicApp.silent = true;
  const base = new Router();
  base.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  base.get('/readyz', async (ctx) => {
    const ok = await ready();
    ctx.status = ok ? 200 : 503;
    ctx.body = { status: ok ? 'ready' : shuttingDown ? 'shutting_down' : 'store_unavailable' };
  });
  base.get('/assets/concord.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = stylesheet();
  });
  const interactions = interactionRoutes({
    settings,
    store,
    registry,
    connectors,
    accounts,
    provider: () => providerState.provider,
    ...(options.observe ? { observe: options.observe } : {}),
  });

  publicApp.use(requestLogging(log));
  publicApp.use(securityHeaders({ https: settings.issuer.startsWith('https://') }));
  publicApp.use(errorBoundary());
  publicApp.use(base.routes());
  publicApp.use(interactions.routes());
  publicApp.use(
    jwtUserinfo({ settings, keys, accounts, registry, pairwiseAccount: (clientId, sub) => store.getTemp<string>(pairwiseKey(clientId, sub)) }),
  );
  publicApp.use(async (ctx, next) => {
    const { middleware } = providerState;
    await middleware(ctx, next);
  });

  const adminApp = new Koa({ proxy: false });
  adminApp.silent = true;
  adminApp.use(requestLogging(log.child({ listener: 'admin' })));
  const adminBase = new Router();
  adminBase.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  adminApp.use(adminBase.routes());
  adminApp.use(
    adminRouter(
      { settings, store, registry, sync, audit: createAuditLog(store), keys, accounts, checkUpstream: upstreamCheck(settings), log },
      settings.admin.token ? [{ label: 'admin', token: settings.admin.token }] : [],
    ),
  );

  let publicServer: http.Server | undefined;
  let adminServer: http.Server | undefined;

  const listenOn = (app: Koa, port: number, host: string) =>
    new Promise<http.Server>((resolve, reject) => {
      const server = http.createServer(app.callback());
      server.keepAliveTimeout = 65_000;
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  const urlOf = (server: http.Server, host: string) => {
    const { port } = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  };

  return {
    settings,
    store,
    registry,
    keys,
    secrets,
    accounts,
    log,
    metrics,
    provider: () => providerState.provider,
    publicApp,
    adminApp,
    ready,
    async listen() {
      publicServer = await listenOn(publicApp, settings.port, settings.host);
      adminServer = await listenOn(adminApp, settings.admin.port, settings.admin.host);
      return { publicUrl: urlOf(publicServer, settings.host), adminUrl: urlOf(adminServer, settings.admin.host) };
    },
    async close() {
      shuttingDown = true;
      clearInterval(keyTimer);
      const stop = (server: http.Server | undefined) =>
        new Promise<void>((resolve) => {
          if (!server?.listening) return resolve();
          server.close(() => resolve());
          server.closeIdleConnections();
        });
      await Promise.all([stop(publicServer), stop(adminServer)]);
      await unsubscribeKeys().catch(() => {});
      await sync.stop();
      await store.close();
    },
  };
}
