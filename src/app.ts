import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import compose from 'koa-compose';
import type Provider from 'oidc-provider';
import { adminOperations, adminRouter, createAuditLog, createConfigSync, upstreamCheck, type AdminDeps } from './admin/index.ts';
import { consoleClient, consoleRouter, instanceHeartbeat, LoginTally } from './console/index.ts';
import { ConfigError, type LoadedConfig } from './config/index.ts';
import { createDomainProof, type DomainProof } from './domain-proof/index.ts';
import { ConcordError } from './errors.ts';
import { errorBoundary } from './http/errors.ts';
import { CookieKeys } from './http/cookie-keys.ts';
import { securityHeaders } from './http/security-headers.ts';
import { createRateLimits } from './http/rate-limit.ts';
import { replaceForm, requestLimits, type CheckedRequest } from './http/request-limits.ts';
import { postedFormToQuery } from './http/posted-form.ts';
import { routeOf, routeTable, routing, type RouteName } from './http/route.ts';
import { interactionRoutes, pendingKey, testLogins, trailingInteractions, type LoginObserver } from './interactions/index.ts';
import { loadPages } from './pages/index.ts';
import { BrokerClientKeys, CLIENT_KEY_COLLECTION, KeyManager, SAML_KEY_COLLECTION, SamlSpKeys } from './keys/index.ts';
import { clientLabel, createLogger, createMetrics, loginMetrics, observeKeyAges, participantLabel, providerMetrics, requestLogging, startTracing, timedStore, type Logger, type Metrics } from './observability/index.ts';
import { ConnectorPool, Registry, UpstreamWatch } from './participants/index.ts';
import { AccountStore, callbackCheckKey, createProvider, dpopNonceSecret, jwtTokenEndpoints, jwtUserinfo, openResourceServers, pairwiseKey, sendLogoutToken, tokenIdKey, trackSessions, userinfoDPoP } from './provider/index.ts';
import { LogoutDelivery, Sessions } from './sessions/index.ts';
import { createSecretBox, type SecretBox } from './secrets/index.ts';
import { createStore, StoreFullError, StoreUnavailableError, withRequestReads, type Store } from './store/index.ts';
import { listenError } from './startup/index.ts';
import { UpstreamHealth } from './upstream/index.ts';

export interface ConcordOptions {
  config: LoadedConfig;
  logger?: Logger;
  /** Use this store instead of the one named in the settings (tests share one). */
  store?: Store;
  observe?: LoginObserver;
  /** The clock (Unix ms) of domain proof's states and grace period, and of sessions' ages (confirmation, maxAge, maxStaleness); tests pass a fake one. Default Date.now. */
  now?: () => number;
}

export interface Concord {
  readonly settings: LoadedConfig['settings'];
  readonly store: Store;
  readonly registry: Registry;
  readonly keys: KeyManager;
  readonly secrets: SecretBox;
  readonly accounts: AccountStore;
  /** Concord sessions: per-login state, refresh-time checks, the one path by which a session ends. */
  readonly sessions: Sessions;
  /** The queue of logout tokens to services (OIDC Back-Channel Logout). */
  readonly logoutDelivery: LogoutDelivery;
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
  /** SIGTERM: readiness off, wait `shutdown.drainDelayMs` (load balancers drain the instance), then close(). */
  shutdown(): Promise<void>;
  /** Partner health: probe results, gauges and the circuit breaker of each participant's IdP. */
  readonly upstreamHealth: UpstreamHealth;
  /** When each participant's IdP is checked: at start-up, on change, on schedule. */
  readonly upstreamWatch: UpstreamWatch;
  /** Concord's own client keys (private_key_jwt at upstream IdPs), published at /broker/jwks. */
  readonly clientKeys: BrokerClientKeys;
  /** Domain proof: each domain's state, its checks and their timer. */
  readonly domainProof: DomainProof;
  /** Concord's SAML SP keys (their key ring rotates with `keys.rotateEvery`; `samlKeyRing.rotate()` rotates now). */
  readonly samlKeys: SamlSpKeys;
  readonly samlKeyRing: KeyManager;
  ready(): Promise<boolean>;
}

/**
 * oidc-provider's routes that no Concord middleware after the rate limits applies to (app.ts): no
 * form to redirect, no router's path, not userinfo, introspection or revocation, no session to track.
 */
const ROUTES_FOR_PROVIDER_ONLY: ReadonlySet<RouteName> = new Set(['token', 'jwks', 'discovery', 'pushed_authorization_request']);

/** Runs `middleware` only for requests whose path starts with one of `prefixes`. */
function forPaths(prefixes: string[], middleware: Koa.Middleware): Koa.Middleware {
  return (ctx, next) => (prefixes.some((prefix) => ctx.path.startsWith(prefix)) ? middleware(ctx, next) : next());
}

export async function createConcord(options: ConcordOptions): Promise<Concord> {
  const { settings, participants, clients } = options.config;
  const log = options.logger ?? createLogger({ level: settings.logLevel });
  // The pages' catalogues (messages/), logos (logos/) and branding: every problem at once, before anything starts.
  const { pages, issues: pageIssues } = await loadPages(settings.pages, options.config.dir);
  if (pageIssues.length > 0) throw new ConfigError(pageIssues);
  for (const [kind, id, logo] of [...participants.map((p) => ['participant', p.id, p.logo] as const), ...clients.map((c) => ['client', c.client_id, c.logo] as const)]) {
    if (logo !== undefined && !pages.logoUrl(logo)) log.warn({ [kind]: id, logo }, `${kind} logo not found in logos/ of the configuration directory: the pages show its name alone`);
  }
  const metrics = createMetrics();
  // A store that outlives the process holds the signing keys, cookie keys and client secrets: never
  // in the clear. Only the embedded store (gone with the process) runs without a key.
  const persistent = (options.store?.kind ?? (settings.store === 'memory' ? 'memory' : 'redis')) !== 'memory';
  if (persistent && !settings.secretsKey) {
    throw new ConcordError(
      'secrets_key_required',
      'CONCORD_SECRETS_KEY is not set: with a Redis store it is required, since signing keys and secrets are kept there (32 random bytes, base64: openssl rand -base64 32; the same on every instance)',
    );
  }
  const secrets = createSecretBox(settings.secretsKey);
  const tracing = await startTracing({ log });
  // At debug level every store call is logged with its duration; otherwise the store is used as is.
  const memory = { maxEntries: settings.memoryStore.maxEntries, maxBytes: settings.memoryStore.maxBytes, sweepIntervalMs: settings.memoryStore.sweepInterval * 1000 };
  const store = timedStore(options.store ?? (await createStore({ url: settings.store, prefix: settings.storePrefix, memory })), log);

  const maxTokenTtl = Math.max(settings.tokens.accessTokenTtl, settings.tokens.idTokenTtl, settings.tokens.clientCredentialsTtl, ...settings.resourceServers.map((rs) => rs.accessTokenTtl ?? 0));
  const keys = new KeyManager({
    store,
    secrets,
    algorithms: settings.keys.algorithms,
    activationDelay: settings.keys.activationDelay,
    retireGrace: settings.keys.retireGrace,
    maxTokenTtl,
    rotateEvery: settings.keys.rotateEvery,
  });
  await keys.init();
  observeKeyAges(metrics, keys, settings.keys.rotateEvery);
  // Concord's own client keys for private_key_jwt: a key ring of their own, on the same rotation rules
  // (a client assertion lives 60 s: that is the longest token they sign).
  const clientKeyRing = new KeyManager({
    store,
    secrets,
    collection: CLIENT_KEY_COLLECTION,
    sharedSecrets: false,
    algorithms: [settings.upstream.clientKeyAlgorithm],
    activationDelay: settings.keys.activationDelay,
    retireGrace: settings.keys.retireGrace,
    maxTokenTtl: 60,
    rotateEvery: settings.keys.rotateEvery,
  });
  await clientKeyRing.init();
  const clientKeys = new BrokerClientKeys(clientKeyRing, settings.upstream.clientKeyAlgorithm);
  // Concord's SAML SP keys (AuthnRequest and logout signatures, assertion decryption): RSA, a ring of
  // their own on the same rules. Published in the SP metadata before they sign; a LogoutRequest lives
  // an interaction at most, the longest-lived thing they sign.
  const samlKeyRing = new KeyManager({
    store,
    secrets,
    collection: SAML_KEY_COLLECTION,
    sharedSecrets: false,
    algorithms: ['RS256'],
    activationDelay: settings.keys.activationDelay,
    retireGrace: settings.keys.retireGrace,
    maxTokenTtl: settings.tokens.interactionTtl,
    rotateEvery: settings.keys.rotateEvery,
  });
  await samlKeyRing.init();
  const samlKeys = new SamlSpKeys(samlKeyRing);

  for (const audience of openResourceServers(settings)) {
    log.warn({ audience }, 'resource server without a clients list: every client can get access tokens for it (set resourceServers[].clients)');
  }
  const registry = new Registry();
  // Until the store is read (sync.start below): the files' domains route when proof is off for them.
  for (const participant of participants) registry.setParticipant(participant, settings.domainProof.mode.files === 'off' ? participant.domains : []);
  for (const client of clients) registry.setClient(client);

  // Accounts and sessions live as long as the longest grant that may still refresh from them.
  const grantLifetime = Math.max(settings.tokens.refreshTokenTtl, settings.tokens.sessionTtl, settings.tokens.grantTtl);
  const accounts = new AccountStore(store, grantLifetime, secrets);
  const upstreamHealth = new UpstreamHealth({
    metrics,
    log,
    tracer: tracing?.tracer,
    threshold: settings.upstream.breakerThreshold,
    cooldownMs: settings.upstream.breakerCooldown * 1000,
  });
  const connectors = new ConnectorPool({ settings, log, clientKeys, samlKeys, store, wrap: (connector) => upstreamHealth.guard(connector) });
  const audit = createAuditLog(store);
  const domainProof = createDomainProof({
    store,
    settings: settings.domainProof,
    log,
    metrics,
    audit,
    claims: () => registry.participants().map(({ config }) => ({ id: config.id, domains: config.domains })),
    announce: () => sync.announce(),
    ...(options.now ? { now: options.now } : {}),
  });
  // Logout tokens are signed by the provider serving when they are sent (keys rotate meanwhile).
  const logoutDelivery = new LogoutDelivery({
    store,
    log,
    send: (notice) => sendLogoutToken(providerState.provider, notice, settings.backchannelLogout.timeoutMs),
    retryForMs: settings.backchannelLogout.retryFor * 1000,
    onOutcome: (client, outcome) => metrics.backchannelLogouts.inc({ client: clientLabel(registry, client), outcome }),
  });
  const sessions = new Sessions({
    store,
    secrets,
    registry,
    connector: (participant) => connectors.get(participant),
    accounts,
    notify: (notices) => logoutDelivery.enqueue(notices),
    ttlSeconds: grantLifetime,
    upstreamTimeoutMs: settings.upstream.timeoutMs,
    log,
    onEnded: (participant, cause) => metrics.sessionsEnded.inc({ participant: participantLabel(registry, participant), cause }),
    onRecheck: (participant, outcome) => metrics.sessionRechecks.inc({ participant: participantLabel(registry, participant), outcome }),
    ...(options.now ? { now: options.now } : {}),
  });
  // The files seeded the registry above; from here the store is the truth, shared by every instance.
  const sync = createConfigSync({ store, registry, secrets, metrics, log, seed: { participants, clients }, domains: domainProof });
  await sync.start();
  // Every participant's IdP is checked now, in the background (start-up does not wait, and one
  // partner's broken IdP delays no other), then on schedule and whenever its configuration changes.
  const upstreamWatch = new UpstreamWatch({ registry, pool: connectors, health: upstreamHealth, intervalMs: settings.upstream.healthInterval * 1000 });
  upstreamWatch.start();
  domainProof.start();
  // A removed participant's connector (and its cached discovery) goes with it.
  registry.on('change', (event) => {
    if (event.kind === 'participant' && event.action === 'removed') connectors.forget(event.id);
  });

  // The console's overview: logins of the last hour (this instance), and which instance serves which configuration version.
  const loginTally = new LoginTally();
  const heartbeat = instanceHeartbeat(store, () => sync.version);
  heartbeat.start();

  const tokenIds = tokenIdKey(settings.secretsKey, keys.pairwiseSalt());
  const dpopNonces = dpopNonceSecret(settings.secretsKey, keys.pairwiseSalt());
  // One signer of signed cookies for the public app and every provider built (src/http/cookie-keys.ts).
  const cookieKeys = new CookieKeys(keys.cookieKeys());
  // The provider is rebuilt when the key set changes (a key activates, is added or leaves).
  // Requests already inside the old one finish there.
  let providerState: { provider: Provider; fingerprint: string; middleware: Koa.Middleware };
  const storeErrors = new WeakSet<object>();
  function buildProvider(): void {
    const keySet = keys.keySet();
    const provider = createProvider({
      settings,
      store,
      registry,
      accounts,
      keySet,
      cookieKeys,
      pairwiseSalt: keys.pairwiseSalt(),
      tokenIdKey: tokenIds,
      dpopNonceSecret: dpopNonces,
      sessions,
      notify: (notices) => logoutDelivery.enqueue(notices),
      adapter: (adapter, name) => trailingInteractions(adapter, name, store),
      log,
    });
    provider.on('server_error', (ctx: Koa.Context, error: unknown) => {
      if (error instanceof StoreUnavailableError) {
        storeErrors.add(ctx);
        if (error instanceof StoreFullError) (ctx.state?.log ?? log).warn({ detail: error.detail }, 'embedded store full: request refused');
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: 'temporarily_unavailable', error_description: error instanceof StoreFullError ? error.error_description : 'the session store is unavailable' };
      } else {
        (ctx.state?.log ?? log).error({ err: error }, 'oidc-provider server error');
      }
    });
    providerMetrics(provider, metrics, registry);
    providerState = { provider, fingerprint: keySet.fingerprint, middleware: compose(provider.middleware) as Koa.Middleware };
  }
  buildProvider();

  async function followKeys(): Promise<void> {
    // The three rings read together: one round trip to the store a second, not three.
    await Promise.all([keys.reload(), clientKeyRing.reload(), samlKeyRing.reload()]);
    await keys.addMissing();
    await keys.rotateIfDue();
    await keys.sweep();
    await clientKeyRing.rotateIfDue();
    await clientKeyRing.sweep();
    await samlKeyRing.rotateIfDue();
    await samlKeyRing.sweep();
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

  const publicApp = new Koa({ proxy: settings.trustProxy, maxIpsCount: settings.rateLimits.proxyHops });
  publicApp.keys = cookieKeys;
  publicApp.silent = true;
  const base = new Router();
  base.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  base.get('/readyz', async (ctx) => {
    const ok = await ready();
    ctx.status = ok ? 200 : 503;
    // Readiness is Concord's own (store, keys): a partner's IdP never takes the instance out of the
    // load balancer. Each participant's upstream state is a detail, by id only (reasons are for admins).
    const upstreams = Object.fromEntries(upstreamHealth.status().map((s) => [s.participant, s.state]));
    ctx.body = { status: ok ? 'ready' : shuttingDown ? 'shutting_down' : 'store_unavailable', upstreams };
  });
  // Concord's client keys for private_key_jwt (RFC 7523), for partner IdPs to fetch (RFC 7517 JWK Set).
  base.get('/broker/jwks', (ctx) => {
    ctx.type = 'application/jwk-set+json';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = clientKeys.publicJwks();
  });
  const interactions = interactionRoutes({
    settings,
    store,
    registry,
    connectors,
    accounts,
    sessions,
    provider: () => providerState.provider,
    observe: loginMetrics(metrics, registry, (event) => {
      loginTally.observe(event);
      options.observe?.(event);
    }),
    observeUpstreamLogout: (participant, outcome) => metrics.upstreamLogouts.inc({ participant: participantLabel(registry, participant), outcome }),
    callbackCheckKey: callbackCheckKey(settings.secretsKey, keys.pairwiseSalt()),
  });

  // The route of every request, derived once as oidc-provider will dispatch it (`/TOKEN` is /token):
  // every middleware below that decides by route reads it (src/http/route.ts).
  publicApp.use(routing(routeTable((name, params) => providerState.provider.pathFor(name, params as never))));
  publicApp.use(requestLogging(log, { metrics, ...(tracing ? { tracer: tracing.tracer } : {}) }));
  publicApp.use(securityHeaders({ https: settings.issuer.startsWith('https://') }));
  publicApp.use(errorBoundary());
  // oidc-provider's records read once per request; the writes a request deferred (store deferWrite)
  // are done before it is answered, inside the error boundary: a failure is rendered as any store
  // error (src/store/request-reads.ts).
  publicApp.use((_ctx, next) => withRequestReads(next));
  // Stylesheet, favicon and logos; the 404 page of every path no route answers.
  publicApp.use(pages.middleware());
  // The edge check (oversized, malformed parameters), then the rate limits: before any route touches the store.
  const limits = createRateLimits({ settings, store, log, metrics, knownClient: (id) => registry.client(id) !== undefined });
  publicApp.use(
    requestLimits({
      issuer: settings.issuer,
      redirectUris: (id) => registry.client(id)?.redirect_uris,
      applicationType: (id) => registry.client(id)?.application_type,
      allowHttpRedirects: settings.clients.allowHttpRedirectUris,
    }),
  );
  publicApp.use(limits.public);
  // What follows (up to oidc-provider) serves some routes or paths only. None of it applies to
  // oidc-provider's token endpoint, its JWKS, discovery or PAR (ROUTES_FOR_PROVIDER_ONLY): those go
  // straight to oidc-provider, past six middleware that would each look at the route or path and hand on.
  // What these routes need (logging, headers, errors, edge checks, rate limits) comes before.
  const sessionTracking = trackSessions(sessions, { provider: () => providerState.provider, interactions: store.adapter('Interaction') });
  const routeSpecific = compose([
    // POST at /auth and /session/end: a 303 to the same endpoint's GET (src/http/posted-form.ts).
    postedFormToQuery(),
    // Routers only see the paths they serve: most traffic is oidc-provider's, and a router's dispatch
    // on every token request is measurable (bench/results.md).
    forPaths(['/healthz', '/readyz', '/broker/jwks'], base.routes() as Koa.Middleware),
    forPaths(['/interaction/', '/broker/', '/saml/', '/session/end/confirm'], interactions.routes() as Koa.Middleware),
    jwtUserinfo({
      settings,
      keys,
      accounts,
      sessions,
      registry,
      pairwiseAccount: (clientId, sub) => store.getTemp<string>(pairwiseKey(clientId, sub)),
      dpop: userinfoDPoP({ issuer: settings.issuer, store, nonceSecret: dpopNonces, requireNonce: settings.tokens.dpop.requireNonce }),
      provider: () => providerState.provider,
      tokenIdKey: tokenIds,
    }),
    // Introspection and revocation of JWT access tokens, by their records (provider/access-tokens.ts).
    jwtTokenEndpoints({
      issuer: settings.issuer,
      keys,
      tokenIdKey: tokenIds,
      readForm: (ctx) => (ctx.state.checked as CheckedRequest | undefined)?.rawForm,
      writeForm: replaceForm,
    }),
    // The login an authorization finished goes to its session; each service's part in a session is recorded.
    (ctx, next) => {
      const route = routeOf(ctx)?.name;
      return route === 'authorization' || route === 'resume' ? sessionTracking(ctx, next) : next();
    },
  ] as Koa.Middleware[]);
  publicApp.use((ctx, next) => {
    const route = routeOf(ctx)?.name;
    return route !== undefined && ROUTES_FOR_PROVIDER_ONLY.has(route) ? next() : routeSpecific(ctx, next);
  });
  // The provider serving now (rebuilt when the key set changes).
  publicApp.use((ctx, next) => providerState.middleware(ctx, next));

  const adminApp = new Koa({ proxy: false });
  adminApp.silent = true;
  adminApp.use(requestLogging(log.child({ listener: 'admin' })));
  const adminBase = new Router();
  adminBase.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  adminApp.use(adminBase.routes());
  adminApp.use(limits.admin);
  const adminDeps: AdminDeps = {
    settings,
    store,
    registry,
    sync,
    audit,
    domains: domainProof,
    keys,
    accounts,
    sessions,
    checkUpstream: upstreamCheck({ settings, clientKeys, samlKeys, store }),
    upstreamStatus: (id) => upstreamHealth.statusOf(id),
    log,
  };
  const adminTokens = settings.admin.token ? [{ label: 'admin', token: settings.admin.token }] : [];
  // One set of operations for the admin API and the console: nothing can be done in one that the other refuses.
  const operations = adminOperations(adminDeps);
  let consoleOrigin = settings.console.url?.replace(/\/+$/, '') ?? '';
  adminApp.use(
    consoleRouter({
      settings,
      store,
      registry,
      ops: operations,
      audit,
      sync,
      domains: domainProof,
      keys,
      accounts,
      sessions,
      logins: loginTally,
      instances: () => heartbeat.list(),
      testLogins: testLogins({ store, connectors, pendingKey, interactionTtl: settings.tokens.interactionTtl }),
      secrets,
      adminTokens,
      origin: () => consoleOrigin,
      log,
    }),
  );
  adminApp.use(adminRouter(adminDeps, adminTokens, operations));

  let publicServer: http.Server | undefined;
  let adminServer: http.Server | undefined;

  const listenOn = (app: Koa, name: 'public' | 'admin', port: number, host: string) =>
    new Promise<http.Server>((resolve, reject) => {
      const server = http.createServer(app.callback());
      server.keepAliveTimeout = 65_000;
      server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, { name, host, port })));
      server.listen(port, host, () => resolve(server));
    });
  const urlOf = (server: http.Server, host: string) => {
    const { port } = server.address() as AddressInfo;
    return `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  };

  const concord: Concord = {
    settings,
    store,
    registry,
    keys,
    secrets,
    accounts,
    sessions,
    logoutDelivery,
    log,
    metrics,
    upstreamHealth,
    upstreamWatch,
    clientKeys,
    domainProof,
    samlKeys,
    samlKeyRing,
    provider: () => providerState.provider,
    publicApp,
    adminApp,
    ready,
    async listen() {
      logoutDelivery.start();
      publicServer = await listenOn(publicApp, 'public', settings.port, settings.host);
      try {
        adminServer = await listenOn(adminApp, 'admin', settings.admin.port, settings.admin.host);
      } catch (error) {
        // Not half started: the public listener goes too.
        await new Promise((resolve) => publicServer!.close(resolve));
        throw error;
      }
      consoleOrigin ||= urlOf(adminServer, settings.admin.host);
      // The console's built-in client at Concord: its redirect URI is on the admin listener's origin.
      if (settings.console.enabled && settings.console.allow !== undefined) {
        try {
          registry.setBuiltInClient(consoleClient(consoleOrigin));
        } catch (error) {
          // An http console.url off loopback is no redirect URI Concord accepts (unless clients.allowHttpRedirectUris).
          log.error({ consoleUrl: consoleOrigin, reason: (error as Error).message }, 'console sign-in through Concord is off: console.url must be https (or http on loopback); the admin token still signs in');
        }
      }
      return { publicUrl: urlOf(publicServer, settings.host), adminUrl: urlOf(adminServer, settings.admin.host) };
    },
    async shutdown() {
      shuttingDown = true;
      const drainMs = settings.shutdown.drainDelayMs;
      log.info({ drainMs }, 'readiness off; draining before the listeners close');
      if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
      await concord.close();
      log.info('listeners closed, requests finished, store closed');
    },
    async close() {
      shuttingDown = true;
      clearInterval(keyTimer);
      upstreamWatch.stop();
      const stop = (server: http.Server | undefined) =>
        new Promise<void>((resolve) => {
          if (!server?.listening) return resolve();
          // A keep-alive connection whose request finishes after this point goes idle and would
          // hold the close up to keepAliveTimeout: close idle connections until none is left.
          const sweep = setInterval(() => server.closeIdleConnections(), 50);
          server.close(() => {
            clearInterval(sweep);
            resolve();
          });
          server.closeIdleConnections();
        });
      await Promise.all([stop(publicServer), stop(adminServer)]);
      // Notices not delivered yet stay queued in the store for another instance, or this one's next start.
      await logoutDelivery.stop();
      await unsubscribeKeys().catch(() => {});
      await domainProof.stop();
      await heartbeat.stop();
      await sync.stop();
      await store.close();
      await tracing?.shutdown().catch((err: unknown) => log.warn({ err }, 'tracing shutdown failed'));
    },
  };
  return concord;
}
