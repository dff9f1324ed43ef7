import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConcord, type Concord } from '../src/app.ts';
import { loadConfig, type ClientConfig, type LoadedConfig, type Participant } from '../src/config/index.ts';
import { upstreamLogoutReturn } from '../src/interactions/index.ts';
import { createLogger } from '../src/observability/index.ts';
import { DEMO_PASSWORD, DEMO_USERS, startPartnerIdp, type PartnerIdp } from './partner-idp.ts';
import { DEMO_SAML_USERS, startSamlDemoIdp, type SamlDemoIdp } from './saml-idp.ts';
import { startDemoService, type DemoService } from './service.ts';

/**
 * `npm run demo`: the whole federation on this machine, on the embedded memory store.
 *
 *   Acme    partner IdP (Entra-style)    http://localhost:4001   users alice@, carol@acme.example
 *   Globex  partner IdP (Keycloak-style) http://localhost:4002   user bob@globex.example
 *   Initech SAML IdP (Shibboleth-style)  http://localhost:4003   users dave@, erin@initech.example
 *   Concord with ./config                http://localhost:3000   admin API http://127.0.0.1:9090
 *   Demo Service (client demo-service)   http://localhost:4000   <- open this one
 *
 * DEMO_BASE_PORT=N moves everything to N (Concord), N+1 (admin), N+2 (service), N+3 (Acme),
 * N+4 (Globex) and N+5 (Initech); the URLs of config/ are rewritten to match. The e2e test runs it that way.
 */

/** The ports of config/ and of the demo partners, as documented. */
const DEFAULT_PORTS = { concord: 3000, admin: 9090, service: 4000, acme: 4001, globex: 4002, initech: 4003 } as const;
const DEFAULT_CONFIG_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../config');
const DEMO_ADMIN_TOKEN = 'demo-admin-token-change-me';
const HOST = 'localhost';

export interface DemoOptions {
  /** See above; absent: the documented ports. */
  basePort?: number;
  /** Default: the repository's config/. */
  configDir?: string;
  /** Concord's log level. Default info. */
  logLevel?: string;
}

export interface Demo {
  concord: Concord;
  concordUrl: string;
  adminUrl: string;
  adminToken: string;
  serviceUrl: string;
  acme: PartnerIdp;
  globex: PartnerIdp;
  /** The SAML partner. */
  initech: SamlDemoIdp;
  service: DemoService;
  close(): Promise<void>;
}

export function demoPorts(basePort?: number): Record<keyof typeof DEFAULT_PORTS, number> {
  if (basePort === undefined) return { ...DEFAULT_PORTS };
  return { concord: basePort, admin: basePort + 1, service: basePort + 2, acme: basePort + 3, globex: basePort + 4, initech: basePort + 5 };
}

export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const ports = demoPorts(options.basePort);
  const concordUrl = `http://${HOST}:${ports.concord}`;
  const serviceUrl = `http://${HOST}:${ports.service}`;
  const loaded = await loadConfig({ dir: options.configDir ?? DEFAULT_CONFIG_DIR, env: {} });
  const secretOf = (id: string) => {
    const found = loaded.participants.find((p) => p.id === id)?.upstream;
    const upstream = found?.type === 'oidc' ? found : undefined;
    const secret = upstream?.clientSecret ?? (upstream?.clientSecretEnv ? process.env[upstream.clientSecretEnv] : undefined);
    if (!secret) throw new Error(`config: participant ${id} needs upstream.clientSecret (or its clientSecretEnv set) for the demo`);
    return secret;
  };

  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of closers.reverse()) await stop().catch(() => {});
  };
  try {
    const partner = (id: 'acme' | 'globex', name: string, domain: string, color: string) =>
      startPartnerIdp({
        name,
        domain,
        host: HOST,
        port: ports[id],
        color,
        users: DEMO_USERS[domain],
        clients: [
          {
            client_id: 'concord',
            client_secret: secretOf(id),
            redirect_uris: [`${concordUrl}/broker/${id}/callback`],
            post_logout_redirect_uris: [upstreamLogoutReturn(concordUrl, id)],
            // The partner tells Concord when its own sessions end (OIDC Back-Channel Logout).
            backchannel_logout_uri: `${concordUrl}/broker/${id}/backchannel-logout`,
          },
        ],
        // Refresh tokens, so Concord can ask the partner again at each refresh (session.revalidateAfter).
        refreshTokens: true,
      });
    const acme = await partner('acme', 'Acme', 'acme.example', '#0f6cbd');
    closers.push(() => acme.close());
    const globex = await partner('globex', 'Globex', 'globex.example', '#7a2e8f');
    closers.push(() => globex.close());

    // The SAML partner serves Concord's SP for participant initech (design.md: {issuer}/saml/{id}).
    const initech = await startSamlDemoIdp({
      name: 'Initech',
      domain: 'initech.example',
      host: HOST,
      port: ports.initech,
      sp: { entityId: `${concordUrl}/saml/initech`, acsUrl: `${concordUrl}/saml/initech/acs` },
    });
    closers.push(() => initech.close());

    const config = rewrite(loaded, { concordUrl, serviceUrl, ports, issuers: { acme: acme.issuer, globex: globex.issuer }, metadata: { initech: initech.metadataUrl } });
    const logger = createLogger({ level: options.logLevel ?? config.settings.logLevel });
    const concord = await createConcord({ config, logger });
    const { adminUrl } = await concord.listen();
    closers.push(() => concord.close());

    const client = config.clients.find((c) => c.client_id === 'demo-service');
    if (!client?.client_secret) throw new Error('config: clients/demo-service.yaml with a client_secret is needed for the demo');
    const service = await startDemoService({
      issuer: concordUrl,
      port: ports.service,
      baseUrl: serviceUrl,
      clientId: client.client_id,
      clientSecret: client.client_secret,
      audience: client.default_resource ?? `${serviceUrl}/api`,
    });
    closers.push(() => service.close());

    return { concord, concordUrl, adminUrl, adminToken: config.settings.admin.token!, serviceUrl, acme, globex, initech, service, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * config/ names the documented URLs; the demo serves them, or, with another base port, the same
 * services elsewhere. Every documented origin is rewritten to where it really runs.
 */
function rewrite(
  loaded: LoadedConfig,
  at: { concordUrl: string; serviceUrl: string; ports: Record<keyof typeof DEFAULT_PORTS, number>; issuers: Record<'acme' | 'globex', string>; metadata: Record<'initech', string> },
): LoadedConfig {
  const origins: Array<[string, string]> = [
    [`http://localhost:${DEFAULT_PORTS.service}`, at.serviceUrl],
    [`http://localhost:${DEFAULT_PORTS.concord}`, at.concordUrl],
  ];
  const moved = (url: string) => {
    for (const [from, to] of origins) if (url === from || url.startsWith(`${from}/`)) return to + url.slice(from.length);
    return url;
  };
  const settings = {
    ...loaded.settings,
    issuer: at.concordUrl,
    port: at.ports.concord,
    // The demo is for this machine only.
    host: '127.0.0.1',
    store: 'memory',
    admin: { ...loaded.settings.admin, port: at.ports.admin, host: '127.0.0.1', token: loaded.settings.admin.token ?? DEMO_ADMIN_TOKEN },
    resourceServers: loaded.settings.resourceServers.map((rs) => ({ ...rs, audience: moved(rs.audience) })),
  };
  const participants = loaded.participants.map((p): Participant => {
    const issuer = p.id === 'acme' || p.id === 'globex' ? at.issuers[p.id] : undefined;
    if (issuer && p.upstream.type === 'oidc') return { ...p, upstream: { ...p.upstream, issuer } };
    if (p.id === 'initech' && p.upstream.type === 'saml') return { ...p, upstream: { ...p.upstream, idpMetadataUrl: at.metadata.initech } };
    return p;
  });
  const clients = loaded.clients.map(
    (c): ClientConfig => ({
      ...c,
      redirect_uris: c.redirect_uris.map(moved),
      post_logout_redirect_uris: c.post_logout_redirect_uris.map(moved),
      ...(c.default_resource ? { default_resource: moved(c.default_resource) } : {}),
      ...(c.backchannel_logout_uri ? { backchannel_logout_uri: moved(c.backchannel_logout_uri) } : {}),
    }),
  );
  return { ...loaded, settings, participants, clients };
}

/**
 * What `npm run demo` prints: where to go and how to sign in, and a link that answers for each
 * part (a page, a discovery or metadata document, an admin API call with the token shown).
 */
export function demoBanner(demo: Demo): string {
  const users = [...DEMO_USERS['acme.example']!, ...DEMO_USERS['globex.example']!].map((u) => u.email).concat(DEMO_SAML_USERS.map((u) => u.username)).join(', ');
  const discovery = (issuer: string) => `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  return [
    '',
    'Concord demo is running.',
    '',
    `  Open ${demo.serviceUrl} and sign in as ${users} (password "${DEMO_PASSWORD}").`,
    '',
    `  Concord     ${discovery(demo.concordUrl)}`,
    `  Admin API   ${demo.adminUrl}/admin/v1/participants  (Authorization: Bearer ${demo.adminToken})`,
    `  CLI         CONCORD_ADMIN_URL=${demo.adminUrl} CONCORD_ADMIN_TOKEN=${demo.adminToken} npx concord participants list`,
    `  Metrics     ${demo.adminUrl}/metrics`,
    `  Acme IdP    ${discovery(demo.acme.issuer)}`,
    `  Globex IdP  ${discovery(demo.globex.issuer)}`,
    `  Initech IdP ${demo.initech.metadataUrl} (SAML 2.0)`,
    '',
    'Ctrl-C stops it.',
    '',
  ].join('\n');
}

if (import.meta.main) {
  const raw = process.env.DEMO_BASE_PORT;
  const basePort = raw ? Number(raw) : undefined;
  if (basePort !== undefined && !(Number.isInteger(basePort) && basePort > 0 && basePort < 65531)) {
    process.stderr.write(`demo: DEMO_BASE_PORT must be a port number, got ${raw}\n`);
    process.exit(2);
  }
  const demo = await startDemo({
    ...(basePort !== undefined ? { basePort } : {}),
    ...(process.env.CONCORD_CONFIG_DIR ? { configDir: process.env.CONCORD_CONFIG_DIR } : {}),
    ...(process.env.LOG_LEVEL ? { logLevel: process.env.LOG_LEVEL } : {}),
  }).catch((error: unknown) => {
    const e = error as { code?: string; port?: number; message?: string };
    // One of the six ports is taken: the fix is to move them all.
    const inUse = e?.code === 'EADDRINUSE' || e?.code === 'port_in_use';
    const reason = !inUse ? (e?.message ?? String(error)) : e.code === 'EADDRINUSE' ? `port ${e.port ?? '?'} is in use` : String(e.message).replace(/: stop what holds it.*$/, '');
    const fix = inUse ? `; stop what holds it, or move the whole demo with DEMO_BASE_PORT=N (ports N..N+5)` : '';
    process.stderr.write(`demo: failed to start: ${reason}${fix}\n`);
    process.exit(1);
  });
  process.stdout.write(demoBanner(demo));
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void demo.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
