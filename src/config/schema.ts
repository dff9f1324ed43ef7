import { isIP } from 'node:net';
import { z } from 'zod';
import { canonicalDomain } from '../domains/index.ts';
import { SIGNING_ALGORITHMS } from '../keys/types.ts';
import { MappingSchema } from '../mapping/index.ts';
import { Duration } from './duration.ts';
import { clientRedirectProblems } from './redirect-uris.ts';
import { AA_TEXT_CONTRAST, contrastRatio, parseHexColor } from './contrast.ts';

/**
 * A logo: the name of a file in the configuration directory's `logos/` folder, served by Concord at
 * /assets/logos/{name} (the pages never load anything from another origin). SVG, PNG, WebP, JPEG or GIF.
 */
export const LogoFile = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(svg|png|webp|jpe?g|gif)$/, 'a file name in the logos/ folder, like acme.svg (svg, png, webp, jpg or gif)');

const Color = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour like #2557d6');

/** The backgrounds and button text of the pages (views/concord.css), which branding colours must contrast with. */
export const PAGE_BACKGROUNDS = { light: ['#ffffff', '#f3f5f9'], dark: ['#1c2029', '#12151b'] } as const;

/** Checks that a branding colour is readable (WCAG AA, 4.5:1) on each background it is drawn on or under. */
function readableOn(backgrounds: readonly string[]) {
  return (color: string, ctx: z.RefinementCtx) => {
    for (const background of backgrounds) {
      const ratio = contrastRatio(parseHexColor(color)!, parseHexColor(background)!);
      if (ratio < AA_TEXT_CONTRAST) {
        ctx.addIssue({ code: 'custom', message: `contrast ${ratio.toFixed(2)}:1 with ${background} is below WCAG AA, ${AA_TEXT_CONTRAST}:1; choose a ${background === '#ffffff' || background === '#f3f5f9' ? 'darker' : 'lighter'} colour` });
        return;
      }
    }
  };
}

/**
 * How Concord's pages look and speak (src/pages): the deployment's name, logo, colours and footer
 * links, and the language used when neither the service's `ui_locales` nor the browser's
 * Accept-Language names one Concord has. Messages are overridden or languages added in the
 * configuration directory's `messages/{locale}.yaml|json`.
 */
export const PagesSchema = z
  .object({
    defaultLocale: z
      .string()
      .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a language tag like en or pt-BR')
      .default('en')
      .describe('The language of the pages when neither the service\'s ui_locales nor the browser\'s Accept-Language names one Concord has: en, de, fr, es, or one added in messages/.'),
    branding: z
      .object({
        name: z.string().min(1).max(100).default('Concord').describe('The name shown at the top of every page and in its title.'),
        logo: LogoFile.optional().describe('The deployment\'s logo, beside its name: a file in the configuration directory\'s logos/.'),
        colors: z
          .object({
            primary: Color.superRefine(readableOn(PAGE_BACKGROUNDS.light))
              .default('#2557d6')
              .describe('Buttons and links in light mode (#rrggbb): white text on it, and it on the light backgrounds, must reach WCAG AA 4.5:1.'),
            primaryDark: Color.superRefine(readableOn(PAGE_BACKGROUNDS.dark))
              .default('#8fb0ff')
              .describe('Buttons and links in dark mode (#rrggbb): it on the dark backgrounds, and dark text on it, must reach WCAG AA 4.5:1.'),
          })
          .strict()
          .prefault({})
          .describe('The accent colours of the pages, checked for contrast at load.'),
        links: z
          .object({
            privacy: z.url().optional().describe('The deployment\'s privacy notice, linked in every page\'s footer.'),
            help: z.url().optional().describe('Where people get help, linked in every page\'s footer and offered on every error page.'),
          })
          .strict()
          .prefault({})
          .describe('Footer links of every page (people follow them; the pages load nothing from them).'),
      })
      .strict()
      .prefault({})
      .describe('The deployment\'s name, logo, colours and footer links on every page.'),
  })
  .strict();

/*
 * Every setting of Concord, with its default and what to choose in production.
 * This file is the one documented place for defaults. Each setting's documentation is its
 * `.describe()` (not a comment), so `npm run schema` carries it into the JSON Schemas editors show;
 * test/unit/config.test.ts fails on a setting without one.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const Port = z.coerce.number().int().min(0).max(65535);

/** A rate limit: `points` requests per `duration` (seconds, or 90s, 5m, 1h). */
const rateLimit = (points: number, duration: number) =>
  z
    .object({
      points: z.number().int().min(1).max(1_000_000).default(points).describe('Requests allowed per window.'),
      duration: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(duration).describe('The window (seconds, or 90s, 5m, 8h, 30d).'),
    })
    .strict()
    .prefault({});

export const ResourceServerSchema = z
  .object({
    audience: z.url().describe('The audience services check: the `resource` a client asks for (RFC 8707).'),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/)).default([]).describe('Scopes this service understands; a token for it carries only these.'),
    accessTokenTtl: Duration.optional().describe('Lifetime of access tokens for this API (seconds, or 90s, 5m, 8h, 30d); absent: tokens.accessTokenTtl.'),
    clients: z.array(z.string().min(1).max(200)).optional().describe(
      'The clients that may get access tokens for this API (their client_id). Absent: every client, as before this setting existed; Concord warns at start-up, since any client could then mint a token this API accepts. Production: list them.',
    ),
  })
  .strict();

const DomainProofMode = z.enum(['required', 'off']);

/** A DNS server as node:dns setServers takes it: `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353`. */
const ResolverAddress = z.string().refine((text) => {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4 = /^([\d.]+)(?::(\d{1,5}))?$/.exec(text);
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : v4 ? [v4[1]!, v4[2]] : [text, undefined];
  return isIP(host) !== 0 && (port === undefined || (Number(port) >= 1 && Number(port) <= 65535));
}, 'an IP address with an optional port, like 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:5353');

/**
 * Domain proof (domain-proof/): a domain routes logins, and counts as the participant's own when
 * an email is released, only once its owner proved it holds it, by a DNS TXT record
 * `_concord-challenge.{domain}` or `https://{domain}/.well-known/concord-challenge/{value}` holding
 * the domain's challenge. docs/admin.md#domain-proof tells the whole story.
 */
export const DomainProofSchema = z
  .object({
    mode: z
      .union([
        DomainProofMode.transform((mode) => ({ runtime: mode, files: mode })),
        z
          .object({
            runtime: DomainProofMode.default('required').describe('Domains added at runtime (admin API, console): `required` or `off`.'),
            files: DomainProofMode.default('off').describe('Domains of config/participants/*.yaml and those stored before domain proof existed: `required` or `off`.'),
          })
          .strict(),
      ])
      .default({ runtime: 'required', files: 'off' }).describe(
        'Whether proof is required, by where a domain came from: `runtime` (added through the admin API or the console; default `required`) and `files` (config/participants/*.yaml, which an operator wrote, and domains stored before domain proof existed; default `off`: verified by the operator). One word sets both. Set it the same on every instance.',
      ),
    gracePeriod: Duration.default(7 * 86400).describe('A verified domain whose proof disappeared keeps routing this long (flagged, alerted), then is suspended.'),
    checkInterval: Duration.default(300).describe(
      'Pending, suspended and flagged domains are checked this often, on a timer on each instance (one at a time per domain). 0: only on request.',
    ),
    recheckInterval: Duration.refine((seconds) => seconds >= 60, 'at least 60s').default(86400).describe('A verified domain\'s proof is checked again this often.'),
    resolvers: z.array(ResolverAddress).default([]).describe(
      'DNS servers for the TXT check and for the HTTPS check\'s address lookup, e.g. [127.0.0.1:5353]; empty: the system\'s.',
    ),
    timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('Each DNS query and each HTTP request of a check gives up after this long.'),
    allowPrivateNetwork: z.boolean().default(false).describe(
      'Let the HTTPS check call loopback, private or link-local addresses. Off: only public addresses, through the same guard as upstream calls (a domain\'s owner could point its name at Concord\'s own network). Only for tests on loopback.',
    ),
    allowInsecureHttp: z.boolean().default(false).describe('The well-known check over http:// instead of https://. Only for loopback tests; implies allowPrivateNetwork.'),
    wellKnownPort: Port.optional().describe('Port of the well-known check: 443 (80 with allowInsecureHttp). Only loopback tests change it.'),
  })
  .strict();

export const ConcordSettingsSchema = z
  .object({
    issuer: z.url().default('http://localhost:3000').describe('Public URL of Concord; every token\'s `iss`. Production: https. Env CONCORD_ISSUER.'),
    port: Port.default(3000).describe('Public listener: OIDC endpoints, login pages, /healthz, /readyz. Env CONCORD_PORT, CONCORD_HOST.'),
    host: z.string().default('0.0.0.0').describe('Address the public listener binds. Env CONCORD_HOST.'),
    trustProxy: z.boolean().default(false).describe('Trust X-Forwarded-* from a load balancer in front. Production behind a proxy: true. Env CONCORD_TRUST_PROXY.'),
    admin: z
      .object({
        port: Port.default(9090).describe('Internal listener: /admin/v1/* and /metrics. Env CONCORD_ADMIN_PORT, CONCORD_ADMIN_HOST.'),
        host: z.string().default('127.0.0.1').describe('Address the admin listener binds; keep it internal (never the internet). Env CONCORD_ADMIN_HOST.'),
        token: z.string().min(16, 'use at least 16 characters').optional().describe('Bearer token of the admin API; absent = every admin call refused. Env CONCORD_ADMIN_TOKEN.'),
      })
      .strict()
      .default({ port: 9090, host: '127.0.0.1' })
      .describe('The internal listener: the admin API (/admin/v1/*, used by the concord CLI), the admin console (/console/) and /metrics.'),
    console: z
      .object({
        enabled: z.boolean().default(true).describe('Off: /console/ answers 404.'),
        url: z
          .url()
          .optional()
          .describe("The admin listener's origin as admins' browsers reach it, e.g. https://concord-admin.internal.example; the console's redirect URI is {url}/console/callback. Default: http://{admin.host}:{the bound admin port} (127.0.0.1 for 0.0.0.0). Env CONCORD_CONSOLE_URL."),
        allow: z
          .string()
          .min(1)
          .max(4096)
          .optional()
          .describe('Who is an admin: CEL over the claims Concord releases to the console (claims.sub, claims.idp, claims.email, claims.groups, ...), with the mapping\'s CEL environment and cost limits, e.g. claims.idp == "ops" && "concord-admins" in claims.groups. Absent: nobody signs in through Concord (only the admin token). Env CONCORD_CONSOLE_ALLOW.'),
        idleTimeout: Duration.refine((seconds) => seconds >= 60, 'at least 1m').default(15 * 60).describe('A console session ends after this long without a request.'),
        maxAge: Duration.refine((seconds) => seconds >= 60, 'at least 1m').default(8 * 3600).describe('... and this long after sign-in, whatever happens.'),
      })
      .strict()
      .prefault({})
      .describe('The admin console (docs/console.md), at /console/ on the admin listener only. Admins sign in through Concord itself (the built-in client concord-console) and `allow` decides who is one; the admin token is the break-glass sign-in.'),
    store: z
      .string()
      .regex(/^(memory|rediss?:\/\/.+|redis-cluster:\/\/.+|redis-sentinel:\/\/.+)$/, 'memory, redis://host:port, redis-cluster://host:port,... or redis-sentinel://host:port,.../masterName')
      .default('memory').describe(
        '`memory` (one instance, nothing kept), `redis://host:port`, `redis-cluster://h:p,h:p` or `redis-sentinel://h:p,h:p/masterName`. Env CONCORD_STORE.',
      ),
    storePrefix: z.string().default('concord:').describe('Prefix of every key in Redis, so several deployments can share one.'),
    memoryStore: z
      .object({
        maxEntries: z.number().int().min(100).max(100_000_000).default(200_000).describe('Most entries the embedded store holds.'),
        maxBytes: z.number().int().min(1024 * 1024).max(64 * 1024 * 1024 * 1024).default(256 * 1024 * 1024).describe('Most bytes the embedded store holds (keys and values).'),
        sweepInterval: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(10).describe('Expired entries are swept this often (seconds, or 90s, 5m, 8h, 30d).'),
      })
      .strict()
      .prefault({}).describe(
        'The embedded store (`store: memory`) never grows without bound: expired entries are swept every `sweepInterval`, and past `maxEntries` entries or `maxBytes` bytes (interactions, sessions, codes, tokens, accounts, pending logins) new ones are refused with 503 until some expire, instead of the process running out of memory. Defaults: 200,000 entries and 256 MiB, a few times what one instance holds at a thousand logins a minute with 8-hour sessions; raise both together.',
      ),
    clients: z
      .object({
        allowHttpRedirectUris: z.boolean().default(false).describe(
          'Accept http redirect and post-logout URIs to hosts that are not loopback (web clients). Off: https only, http to 127.0.0.1, [::1] or localhost. Only for a closed development network: a code sent over http can be read on the way.',
        ),
      })
      .strict()
      .prefault({})
      .describe('Rules for all clients (services).'),
    pages: PagesSchema.prefault({}).describe('The sign-in pages\' language and branding (src/pages, docs/pages.md).'),
    secretsKey: z.string().optional().describe('32 bytes, base64: encrypts signing keys and secrets at rest. Production: required. Env CONCORD_SECRETS_KEY.'),
    logLevel: z.enum(LOG_LEVELS).default('info').describe('Least severe log level written (pino). Env LOG_LEVEL.'),
    tokens: z
      .object({
        accessTokenTtl: Duration.default(300).describe('Lifetime of access tokens (RFC 9068 JWTs) (seconds, or 90s, 5m, 8h, 30d).'),
        idTokenTtl: Duration.default(300).describe('Lifetime of ID tokens (seconds, or 90s, 5m, 8h, 30d).'),
        refreshTokenTtl: Duration.default(14 * 86400).describe('Lifetime of refresh tokens (they rotate; a replayed one revokes the grant) (seconds, or 90s, 5m, 8h, 30d).'),
        authorizationCodeTtl: Duration.default(60).describe('Lifetime of authorization codes (seconds, or 90s, 5m, 8h, 30d).'),
        clientCredentialsTtl: Duration.default(300).describe('Lifetime of client_credentials access tokens (seconds, or 90s, 5m, 8h, 30d).'),
        sessionTtl: Duration.default(8 * 3600).describe('Lifetime of the browser session at Concord (seconds, or 90s, 5m, 8h, 30d).'),
        interactionTtl: Duration.default(600).describe('Time a user has to finish a sign-in (login page, upstream IdP) (seconds, or 90s, 5m, 8h, 30d).'),
        grantTtl: Duration.default(14 * 86400).describe('Lifetime of a grant (the consent behind refresh tokens) (seconds, or 90s, 5m, 8h, 30d).'),
        dpop: z
          .object({
            requireNonce: z.boolean().default(false).describe(
              'Every DPoP proof at /token and /me must carry a Concord nonce (RFC 9449 §8); a proof without one is answered use_dpop_nonce with a DPoP-Nonce to retry with. Off: nonces are offered, not required.',
            ),
          })
          .strict()
          .prefault({})
          .describe('DPoP (RFC 9449): nonces are derived from CONCORD_SECRETS_KEY, so every instance issues and accepts the same ones.'),
      })
      .strict()
      .prefault({})
      .describe('Lifetimes of what Concord issues, each in seconds or as 90s, 5m, 8h, 30d.'),
    resourceServers: z.array(ResourceServerSchema).default([]).describe(
      'APIs that clients may ask tokens for with `resource`. Tokens without one are for Concord\'s userinfo (aud = issuer).',
    ),
    keys: z
      .object({
        algorithms: z.array(z.enum(SIGNING_ALGORITHMS)).min(1).optional().describe(
          'JWS algorithms offered, each with a current key of its own: RS256, PS256, ES256, EdDSA. Default [RS256, ES256]. RS256 is required (OpenID Connect Discovery 1.0 section 3: RS256 MUST be offered for ID tokens; many RP libraries only do RS256). Each costs a key and its signing time (bench: ID token signing per algorithm).',
        ),
        accessTokenAlgorithm: z.enum(SIGNING_ALGORITHMS).optional().describe(
          'Algorithm of every access token (RFC 9068), whatever the client; one of `algorithms`. Default ES256: small and fast to verify.',
        ),
        algorithm: z.enum(SIGNING_ALGORITHMS).optional().describe(
          'Deprecated: the single algorithm of earlier releases; read as `accessTokenAlgorithm`, and offered beside the default `algorithms`.',
        ),
        rotateEvery: Duration.optional().describe('Scheduled rotation, e.g. 30d; absent = only on demand.'),
        activationDelay: Duration.default(15 * 60).describe('A new key is published this long before it signs: longer than any JWKS cache.'),
        retireGrace: Duration.default(60).describe('A superseded key stays published this long after its last token expired (clock skew, caches).'),
      })
      .strict()
      .transform(({ algorithm, algorithms, accessTokenAlgorithm, ...rest }, ctx) => {
        const accessAlg = accessTokenAlgorithm ?? algorithm ?? 'ES256';
        // Without a list: the default, plus the algorithm an earlier release's `keys.algorithm` named.
        const offered = algorithms ? [...new Set(algorithms)] : [...new Set(['RS256', 'ES256', ...(algorithm ? [algorithm] : [])] as const)];
        if (!offered.includes('RS256')) {
          ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'must include RS256 (OIDC Discovery 1.0 section 3: RS256 MUST be offered for ID tokens)' });
        }
        if (!offered.includes(accessAlg)) {
          const named = accessTokenAlgorithm ?? algorithm;
          ctx.addIssue({
            code: 'custom',
            path: [accessTokenAlgorithm || !algorithm ? 'accessTokenAlgorithm' : 'algorithm'],
            message: `${accessAlg}${named ? '' : ' (the default)'} is not one of keys.algorithms (${offered.join(', ')})${named ? '' : ': set keys.accessTokenAlgorithm to one of them'}`,
          });
        }
        return { ...rest, algorithms: offered, accessTokenAlgorithm: accessAlg };
      })
      .prefault({})
      .describe(
        'Concord\'s signing keys: a current key for every algorithm in `algorithms`, kept encrypted in the store, all rotated together with overlap (published before they sign, until every token they signed has expired), published in one JWKS and listed in discovery. Each client\'s `id_token_signed_response_alg`, `userinfo_signed_response_alg` and `authorization_signed_response_alg` pick one (RS256 ID tokens when it names none, OIDC Registration 2); access tokens use `accessTokenAlgorithm`. `none` and HMAC are never offered.',
      ),
    upstream: z
      .object({
        timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('Every call to a partner IdP gives up after this long.'),
        discoveryTtl: Duration.default(3600).describe('Upstream discovery documents are re-fetched after this long.'),
        healthInterval: Duration.default(30).describe('Each participant\'s IdP is probed (discovery + JWKS) this often: concord_upstream_up. 0 = no probes.'),
        breakerThreshold: z.number().int().min(1).max(1000).default(5).describe(
          'Consecutive failed calls (timeout, refused, 5xx) that open a participant\'s circuit; a failed probe opens it at once.',
        ),
        breakerCooldown: Duration.default(30).describe('An open circuit refuses that participant\'s logins at once for this long, then lets one trial through.'),
        clientKeyAlgorithm: z.enum(['RS256', 'ES256']).default('RS256').describe(
          'Algorithm of Concord\'s own client keys, used with participants whose tokenEndpointAuthMethod is private_key_jwt (published at {issuer}/broker/jwks, rotated on keys.rotateEvery). RS256 is the one every IdP accepts; ES256 where the IdP allows it.',
        ),
      })
      .strict()
      .prefault({})
      .describe('Calls to the participants\' IdPs: timeouts, discovery caching, health probes and the circuit breaker.'),
    domainProof: DomainProofSchema.prefault({}).describe(
      'Domain proof: a domain routes logins, and counts as the participant\'s own, once its owner proved it holds it (DNS TXT `_concord-challenge.{domain}` or `https://{domain}/.well-known/concord-challenge/{value}`). docs/admin.md#domain-proof.',
    ),
    backchannelLogout: z
      .object({
        timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('Each delivery attempt gives up after this long.'),
        retryFor: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(3600).describe(
          'A logout token not taken is retried, with back-off, for this long (seconds, or 90s, 5m, 8h, 30d), then dropped.',
        ),
      })
      .strict()
      .prefault({}).describe(
        'Logout tokens to services (OIDC Back-Channel Logout 1.0): whenever a session ends, each of its services with a `backchannel_logout_uri` is sent one, from a queue in the store (a restart loses none). A service that does not answer 200 or 204 is tried again with back-off (1 s, 2 s, 4 s, ... at most 5 min apart) for `retryFor`, then given up (logged, concord_backchannel_logout_total {outcome="failed"}).',
      ),
    shutdown: z
      .object({
        drainDelayMs: z.number().int().min(0).max(60_000).default(5000).describe(
          'On SIGTERM /readyz answers 503 this long before the listeners stop accepting, so load balancers drain the instance first.',
        ),
      })
      .strict()
      .prefault({})
      .describe('Graceful shutdown on SIGTERM.'),
    rateLimits: z
      .object({
        enabled: z.boolean().default(true).describe('Off only for load tests of the rest of Concord.'),
        token: rateLimit(3000, 60).describe(
          'POST /token, introspection and revocation, per client and source IP: the client_id of HTTP Basic auth or of the form (a client_id no client has counts against the caller\'s IP). Keyed by the source too because the client_id is public and not yet authenticated here. Default 3,000 per minute (50 a second): each login is one code exchange, each refresh one more, and a busy confidential client behind one address must not be throttled. Guessing is stopped by `credentialFailures`, not by this budget.',
        ),
        browser: rateLimit(300, 60).describe(
          'Browser routes, per client IP: /auth, pushed authorization requests (/request), the login and home-realm pages (/interaction/*) and the upstream callback (/broker/*); each can create state in the store. One login is about six requests. Default 300 per minute: an office behind one NAT address signs in together at nine. Behind a proxy set trustProxy, or every user shares the proxy\'s address.',
        ),
        credentialFailures: z
          .object({
            max: z.number().int().min(1).max(100_000).default(30).describe('Failures of one client and source before they are locked out.'),
            wait: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(60).describe('The first lock-out (seconds, or 90s, 5m, 8h, 30d); each further one doubles it.'),
            maxWait: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(15 * 60).describe('The longest lock-out (seconds, or 90s, 5m, 8h, 30d).'),
            reset: Duration.refine((seconds) => seconds >= 1, 'at least 1s').default(12 * 3600).describe(
              'Failures are forgotten after this long without one (seconds, or 90s, 5m, 8h, 30d).',
            ),
          })
          .strict()
          .prefault({}).describe(
            'Brute-force protection, as Keycloak\'s: failed credentials are counted apart from the budgets above. On the client endpoints (token, introspection, revocation, PAR) a wrong client secret or assertion (invalid_client) and an unknown or spent code or refresh token (invalid_grant) count per client and source; on the admin API a wrong token counts per source. After `max` failures since the key\'s last success it is locked for `wait`; each further lock within `reset` doubles the wait, up to `maxWait`. Defaults 30, 60s, 15m, 12h (Keycloak\'s failureFactor, waitIncrement, maxFailureWait, failureResetTime): a client that lost its secret is noticed, not punished for a day; a guesser gets 30 tries, then about one per minute, then one per quarter of an hour.',
          ),
        admin: rateLimit(300, 60).describe('The admin API (/admin/v1/*), per source IP, so wrong tokens are limited too. Default 300 per minute.'),
        proxyHops: z.number().int().min(1).max(10).default(1).describe(
          'With trustProxy: the client IP is this many addresses from the right of X-Forwarded-For, the one your own proxies appended (the leftmost entries are whatever the client sent). Default 1: one proxy.',
        ),
      })
      .strict()
      .prefault({}).describe(
        'Rate limits, each a number of requests (`points`) per window (`duration`). With a Redis store the counters live in Redis, so every instance shares them; with the memory store each instance counts alone. When the limiter\'s store does not answer, requests are let through (fail open) with a warning in the log: a Redis blip must not become a total outage (the store\'s own errors still apply). A limited request gets 429 with Retry-After: JSON `{ "error": "rate_limited" }` on API endpoints, the "Too many attempts" page on browser routes.',
      ),
  })
  .strict();

/** A domain, stored in canonical form (domains/index.ts): `Bücher.Example.` is kept as `xn--bcher-kva.example`. */
const Domain = z.string().transform((value, ctx) => {
  const canonical = canonicalDomain(value.trim());
  if (canonical === undefined) {
    ctx.addIssue({ code: 'custom', message: 'a domain name like example.com' });
    return z.NEVER;
  }
  return canonical;
});

export const ParticipantIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63');

/** The service's authorization parameters a participant may pass on to its upstream. */
export const FORWARDABLE_PARAMS = ['login_hint', 'prompt', 'max_age', 'acr_values', 'ui_locales'] as const;

export const OidcUpstreamSchema = z
  .object({
    type: z.literal('oidc').describe('An OpenID Connect IdP.'),
    issuer: z.url().describe('The IdP\'s issuer: discovery is fetched from {issuer}/.well-known/openid-configuration, cached and refreshed.'),
    clientId: z.string().min(1).describe('Concord\'s client_id at the IdP.'),
    clientSecret: z.string().min(1).optional().describe('Write-only. Prefer clientSecretEnv so the secret stays out of files.'),
    clientSecretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional().describe(
      'The environment variable that holds Concord\'s client secret at the IdP (e.g. ACME_CLIENT_SECRET).',
    ),
    scopes: z.array(z.string()).default(['openid', 'email', 'profile']).describe('Scopes Concord asks the IdP for.'),
    fetchUserinfo: z.boolean().optional().describe(
      'Call the upstream\'s userinfo endpoint and merge its claims (the signed ID token wins a conflict). Absent: whenever the upstream publishes a userinfo_endpoint, since OIDC Core 5.4 lets an IdP return the `email` and `profile` claims there only. `false` turns it off.',
    ),
    tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt']).optional().describe(
      'How Concord authenticates at the upstream\'s token endpoint. Absent: client_secret_basic, else client_secret_post, whichever the upstream lists (basic when it lists none). private_key_jwt signs with Concord\'s own client keys, published at {issuer}/broker/jwks. A method the upstream does not list is refused when the participant is registered.',
    ),
    responseMode: z.enum(['query', 'form_post']).default('query').describe('How the upstream returns its answer: `query` (a redirect) or `form_post` (a POST to the callback).'),
    forwardParams: z.array(z.enum(FORWARDABLE_PARAMS)).default([...FORWARDABLE_PARAMS]).describe(
      'Authorization parameters of the service\'s request passed on to the upstream (OIDC Core 3.1.2.1). Default all: `login_hint`, `prompt` (login, none, consent, select_account), `max_age`, `acr_values`, `ui_locales`. Leave one out for an IdP that refuses it.',
    ),
    allowedAlgorithms: z.array(z.enum(['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'])).optional().describe(
      'ID token algorithms accepted from this upstream. `none` and HS* are never accepted.',
    ),
    allowInsecureHttp: z.boolean().default(false).describe('Allow an http:// issuer. Only for loopback development and tests; implies allowPrivateNetwork.'),
    allowPrivateNetwork: z.boolean().default(false).describe(
      'Allow the IdP\'s endpoints on loopback, private or link-local addresses (an IdP on the partner\'s private network). Off: only public addresses are called, whatever the discovery document says.',
    ),
  })
  .strict()
  .refine((u) => u.allowInsecureHttp || u.issuer.startsWith('https://'), {
    message: 'the upstream issuer must be https (set allowInsecureHttp only for local development)',
    path: ['issuer'],
  })
  .refine((u) => !u.tokenEndpointAuthMethod?.startsWith('client_secret') || u.clientSecret !== undefined || u.clientSecretEnv !== undefined, {
    message: 'this tokenEndpointAuthMethod needs clientSecret or clientSecretEnv',
    path: ['tokenEndpointAuthMethod'],
  });

/** SAML 2.0 NameID formats (SAML core 8.3) a participant may ask its IdP for. */
export const SAML_NAMEID_FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
} as const;

/**
 * A SAML 2.0 IdP (Web Browser SSO profile, SAML profiles 4.1): Concord is the SP. Defaults and
 * reasons are in docs/participants.md ("SAML 2.0").
 */
export const SamlUpstreamSchema = z
  .object({
    type: z.literal('saml').describe('A SAML 2.0 IdP (Web Browser SSO profile); Concord is the SP.'),
    idpMetadataUrl: z.url().optional().describe(
      'The IdP\'s metadata (SAML metadata 2.4.3 IDPSSODescriptor), fetched through the same public-address guard as OIDC discovery, cached for `upstream.discoveryTtl` (settings) and refreshed; a signature by a certificate the cached copy lacks makes Concord fetch it again at once (certificate rollover at the IdP). Exactly one of idpMetadataUrl and idpMetadataXml.',
    ),
    idpMetadataXml: z.string().min(1).max(512 * 1024).optional().describe(
      'The IdP\'s metadata pasted in (an IdP that publishes none at a URL). Its certificates change only when this changes.',
    ),
    spEntityId: z.string().min(1).max(1024).optional().describe('Concord\'s SP entity ID at this IdP. Default `{issuer}/saml/{participantId}`.'),
    nameIdFormat: z.string().min(1).max(256).default(SAML_NAMEID_FORMATS.persistent).describe(
      'The NameID format asked for (AuthnRequest NameIDPolicy). Default persistent. The NameID becomes `sub` only when persistent, or when it is this format, chosen here on purpose (emailAddress, unspecified): a transient NameID never does (set subjectAttribute).',
    ),
    subjectAttribute: z.string().min(1).max(256).optional().describe('Take `sub` from this attribute (by name or alias; single-valued) instead of the NameID.'),
    wantAssertionsEncrypted: z.boolean().default(false).describe('Refuse Responses whose Assertion is not encrypted (EncryptedAssertion, to Concord\'s SP key). Default false.'),
    allowSha1: z.boolean().default(false).describe('Accept RSA-SHA1 signatures and SHA-1 digests from this IdP (old ADFS set-ups). HMAC is never accepted. Default false.'),
    allowIdpInitiated: z.boolean().default(false).describe(
      'Accept a Response that answers no AuthnRequest of Concord\'s (no InResponseTo) when it comes for a login Concord started (RelayState names it). Default false: every Response must answer the AuthnRequest of the very login it completes. Each Assertion is used once either way.',
    ),
    attributeAliases: z.record(z.string().min(1).max(512), z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a claim name: letters, digits and _')).default({}).describe(
      'Extra names for attributes: `{ "http://schemas.example/claims/dept": department }`. The mapping rules see every attribute under its own name and its alias (the common ADFS claim URIs and eduPerson/LDAP OIDs have built-in aliases, listed in docs/participants.md); these add to or replace them.',
    ),
    forwardParams: z.array(z.enum(FORWARDABLE_PARAMS)).default([...FORWARDABLE_PARAMS]).describe(
      'The service\'s authorization parameters passed on (as ForceAuthn, IsPassive, RequestedAuthnContext). Default all.',
    ),
    allowInsecureHttp: z.boolean().default(false).describe('Allow an http:// metadata URL. Only for loopback development and tests; implies allowPrivateNetwork.'),
    allowPrivateNetwork: z.boolean().default(false).describe('Allow the metadata URL on loopback, private or link-local addresses. Off: only public addresses are called.'),
  })
  .strict()
  .refine((u) => (u.idpMetadataUrl === undefined) !== (u.idpMetadataXml === undefined), {
    message: 'exactly one of idpMetadataUrl and idpMetadataXml is required',
    path: ['idpMetadataUrl'],
  })
  .refine((u) => u.idpMetadataUrl === undefined || u.allowInsecureHttp || u.idpMetadataUrl.startsWith('https://'), {
    message: 'the metadata URL must be https (set allowInsecureHttp only for local development)',
    path: ['idpMetadataUrl'],
  })
  .refine((u) => u.nameIdFormat !== SAML_NAMEID_FORMATS.transient || u.subjectAttribute !== undefined, {
    message: 'a transient NameID changes at every login and cannot be the subject: set subjectAttribute, or ask for persistent',
    path: ['nameIdFormat'],
  });

/** `upstream`: OIDC or SAML 2.0, by `type`. */
export const UpstreamSchema = z.discriminatedUnion('type', [OidcUpstreamSchema, SamlUpstreamSchema]);

/** The SP entity ID Concord uses at a participant's SAML IdP. */
export function samlSpEntityId(issuer: string, participantId: string, upstream: Pick<SamlUpstream, 'spEntityId'>): string {
  return upstream.spEntityId ?? `${issuer.replace(/\/+$/, '')}/saml/${participantId}`;
}

/**
 * What makes two participants the same upstream: for OIDC its issuer and Concord's client there; for
 * SAML the IdP's metadata and Concord's SP entity ID there (absent: per participant).
 */
export function upstreamIdentity(participant: Pick<Participant, 'id' | 'upstream'>): string {
  const { upstream } = participant;
  if (upstream.type === 'oidc') return `oidc\0${upstream.issuer.replace(/\/$/, '')}\0${upstream.clientId}`;
  return `saml\0${upstream.idpMetadataUrl ?? upstream.idpMetadataXml ?? ''}\0${upstream.spEntityId ?? `participant:${participant.id}`}`;
}

/** The issue of a participant whose upstream already serves another (the same wording for files and the admin API). */
export function sharedUpstream(participant: Pick<Participant, 'upstream'>, sharing: string): { field: string; message: string } {
  const { upstream } = participant;
  if (upstream.type === 'oidc') return { field: 'upstream.issuer', message: `upstream ${upstream.issuer} with client ${upstream.clientId} already serves participant "${sharing}"` };
  return { field: 'upstream.spEntityId', message: `SAML IdP ${upstreamName(upstream)} with SP entity ID ${upstream.spEntityId ?? '(default)'} already serves participant "${sharing}"` };
}

/** How an upstream is named to admins: the OIDC issuer, the SAML metadata URL (or "inline metadata"). */
export function upstreamName(upstream: Participant['upstream']): string {
  return upstream.type === 'oidc' ? upstream.issuer : (upstream.idpMetadataUrl ?? 'inline SAML metadata');
}
/**
 * How a participant's sessions follow its IdP (per participant: `session.*`). A session is one
 * upstream login; its refresh tokens live on at Concord (`tokens.refreshTokenTtl`), so Concord asks
 * the IdP again before it lets them go on.
 */
export const SessionPolicySchema = z
  .object({
    revalidateAfter: z.union([z.literal('off'), Duration]).default(15 * 60).describe(
      'A refresh token used this long after the upstream last vouched for the user makes Concord ask it again first: with the upstream\'s refresh token when it issued one (list `offline_access` in `upstream.scopes` where the IdP needs it to issue one), else with its access token at userinfo while that is valid. The fresh claims go through the mapping again (`require` rules included); a user or grant gone upstream, or a rule that now fails, ends the session (`invalid_grant`, and the services are told). `0`: at every refresh. `off`: never (the session is then bounded by `maxAge`). Default 15m.',
    ),
    onUpstreamDown: z.enum(['allow', 'deny']).default('allow').describe(
      'When the IdP cannot be asked (unreachable, timing out, answering errors): `allow` lets the refresh go on with the claims last confirmed, as long as they are younger than `maxStaleness`; `deny` refuses it (503 `temporarily_unavailable`; the session stays and the next refresh asks again). Default allow: a partner\'s outage does not sign its users out everywhere.',
    ),
    maxStaleness: Duration.default(24 * 3600).describe('With `onUpstreamDown: allow`: how old the last confirmation may be while the IdP cannot be asked. Default 24h.'),
    maxAge: Duration.refine((seconds) => seconds >= 60, 'at least 1m').default(8 * 3600).describe(
      'How long a session that cannot be asked about again (the protocol has no such call, as SAML; the IdP issued no refresh token and its access token expired; or `revalidateAfter: off`) lives after the upstream login: then its refreshes answer `invalid_grant` and the user signs in again. Default 8h, a working day, as `tokens.sessionTtl`.',
    ),
  })
  .strict()
  .prefault({});

export const ParticipantSchema = z
  .object({
    id: ParticipantIdSchema.describe('The participant\'s id: lowercase letters, digits and dashes; the first part of its users\' `sub` ({id}:{upstream sub}) and the `idp` claim.'),
    displayName: z.string().min(1).max(200).describe('The name users see on the login pages.'),
    logo: LogoFile.optional().describe('Shown with displayName on the pages about this organisation: a file in the configuration directory\'s logos/.'),
    domains: z
      .array(Domain)
      .min(1)
      .superRefine((domains, ctx) => {
        const seen = new Set<string>();
        domains.forEach((domain, index) => {
          if (seen.has(domain)) ctx.addIssue({ code: 'custom', path: [index], message: `${domain} is listed twice (domains are compared in canonical form)` });
          seen.add(domain);
        });
      }).describe('The email domains whose users sign in here; unique across participants, and two spellings of one domain are one domain.'),
    upstream: UpstreamSchema.describe('The partner\'s IdP: OIDC (`type: oidc`) or SAML 2.0 (`type: saml`). docs/participants.md has the settings that work for each IdP family.'),
    mapping: MappingSchema.optional().describe(
      'Claim mapping: which upstream claims are released and how (`passthrough`, `rules`), or the rules alone as a list. README "Claim mapping".',
    ),
    enabled: z.boolean().default(true).describe('false: the participant routes no login (its sessions are not ended).'),
    session: SessionPolicySchema.describe('How this participant\'s sessions follow its IdP: re-checked on refresh, and what happens when the IdP is down.'),
  })
  .strict();

/** Shape only; where a URI may point is checked with the client's application_type (redirect-uris.ts). */
const RedirectUri = z.url().max(2048);

export const ClientSchema = z
  .object({
    client_id: z.string().min(1).max(200).regex(/^[\x21-\x7E]+$/, 'printable ASCII without spaces').describe(
      'The client\'s id (OAuth 2.0 client_id): printable ASCII without spaces.',
    ),
    client_name: z.string().optional().describe('The service\'s name, shown to users (consent, login).'),
    client_uri: z.url().optional().describe('The service\'s home page (OIDC Dynamic Client Registration 2): where Concord\'s pages send people back to once a sign-in is over.'),
    logo: LogoFile.optional().describe('Shown with client_name on the sign-in pages: a file in the configuration directory\'s logos/ (a logo_uri would be a third-party request).'),
    client_secret: z.string().min(16, 'use at least 16 characters').optional().describe('Write-only. Absent for public clients (token_endpoint_auth_method: none).'),
    application_type: z.enum(['web', 'native']).default('web').describe(
      '`web` (a server or browser app) or `native` (a desktop or mobile app, RFC 8252): decides which redirect URIs are allowed.',
    ),
    redirect_uris: z.array(RedirectUri).default([]).describe(
      'https, or http to a loopback host; native clients also a private-use scheme (com.example.app:/cb). See redirect-uris.ts.',
    ),
    post_logout_redirect_uris: z.array(RedirectUri).default([]).describe(
      'Where the service may send users after logout (RP-Initiated Logout 1.0); matched exactly, same rules as redirect_uris.',
    ),
    grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials'])).default(['authorization_code', 'refresh_token']).describe(
      'OAuth 2.0 grant types the client may use.',
    ),
    response_types: z.array(z.literal('code')).default(['code']).describe('Only `code`: the authorization code flow (PKCE S256 required).'),
    token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt']).default('client_secret_basic').describe(
      'How the client authenticates at /token: a secret (Basic or form), none (public clients), or private_key_jwt (keys at jwks_uri).',
    ),
    scope: z.string().optional().describe('Space-separated scopes the client may ask for; absent: every scope Concord serves.'),
    subject_type: z.enum(['public', 'pairwise']).optional().describe('`public` (the same `sub` for every client) or `pairwise` (a `sub` of its own per client).'),
    jwks_uri: z.url().optional().describe('The client\'s public keys, for private_key_jwt.'),
    require_pushed_authorization_requests: z.boolean().default(false).describe(
      'RFC 9126: this client must push its authorization requests to /request first; /auth without a request_uri is refused.',
    ),
    dpop_bound_access_tokens: z.boolean().optional().describe(
      'RFC 9449 §5.2: every token request of this client must carry a DPoP proof (else invalid_dpop_proof); its access tokens are all DPoP-bound.',
    ),
    skip_consent: z.boolean().default(false).describe('Skip the consent page: for first-party services.'),
    participants: z.array(ParticipantIdSchema).optional().describe('Participants whose users may sign in to this client; all when absent.'),
    access_token_claims: z.array(z.string()).default([]).describe('Mapped claims copied into this client\'s access tokens, e.g. [groups, roles].'),
    default_resource: z.url().optional().describe('Audience of access tokens when the client asks for no `resource`.'),
    backchannel_logout_uri: z.url().max(2048).optional().describe(
      'Where Concord POSTs a logout token (OIDC Back-Channel Logout 1.0) whenever a session this client took part in ends, whatever ended it: the user signing out anywhere, the partner\'s IdP, a failed re-check, an administrator. https (http to loopback only, unless clients.allowHttpRedirectUris).',
    ),
    backchannel_logout_session_required: z.boolean().optional().describe('Logout tokens and ID tokens carry the client\'s `sid` in the session (2.2).'),
    id_token_signed_response_alg: z.enum(SIGNING_ALGORITHMS).optional().describe('JWS algorithm of this client\'s ID tokens (OIDC Registration 2); RS256 when absent. One of keys.algorithms.'),
    userinfo_signed_response_alg: z.enum(SIGNING_ALGORITHMS).optional().describe('Userinfo answered as a JWT signed with this algorithm (OIDC Registration 2); plain JSON when absent. One of keys.algorithms.'),
    authorization_signed_response_alg: z.enum(SIGNING_ALGORITHMS).optional().describe(
      'JWS algorithm of JWT-secured authorization responses (JARM, `response_mode=jwt`); RS256 when absent. One of keys.algorithms.',
    ),
  })
  .strict()
  .superRefine((client, ctx) => {
    const needsSecret = client.token_endpoint_auth_method.startsWith('client_secret');
    if (needsSecret && !client.client_secret) {
      ctx.addIssue({ code: 'custom', path: ['client_secret'], message: `required with token_endpoint_auth_method ${client.token_endpoint_auth_method}` });
    }
    for (const { field, message } of clientRedirectProblems(client)) {
      const [name, index] = field.split('.');
      ctx.addIssue({ code: 'custom', path: index === undefined ? [name!] : [name!, Number(index)], message });
    }
    if (client.grant_types.includes('authorization_code') && client.redirect_uris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirect_uris'], message: 'at least one is required for authorization_code' });
    }
  });

/** The client metadata that names a JWS algorithm Concord signs with (OIDC Registration 2, JARM 3). */
export const CLIENT_SIGNING_ALG_FIELDS = ['id_token_signed_response_alg', 'userinfo_signed_response_alg', 'authorization_signed_response_alg'] as const;

/**
 * The algorithms a client names that the deployment does not offer (settings `keys.algorithms`):
 * Concord has no key to sign its tokens with, so the client is refused when registered, not at login.
 */
export function clientAlgorithmProblems(client: ClientConfig, offered: readonly string[]): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  for (const field of CLIENT_SIGNING_ALG_FIELDS) {
    const alg = client[field];
    if (alg !== undefined && !offered.includes(alg)) problems.push({ field, message: `${alg} is not offered by this deployment (keys.algorithms: ${offered.join(', ')})` });
  }
  return problems;
}

export type ConcordSettings = z.output<typeof ConcordSettingsSchema>;
export type DomainProofSettings = z.output<typeof DomainProofSchema>;
export type ResourceServer = z.output<typeof ResourceServerSchema>;
export type Participant = z.output<typeof ParticipantSchema>;
export type ParticipantInput = z.input<typeof ParticipantSchema>;
export type OidcUpstream = z.output<typeof OidcUpstreamSchema>;
export type SamlUpstream = z.output<typeof SamlUpstreamSchema>;
export type SessionPolicy = z.output<typeof SessionPolicySchema>;
export type ClientConfig = z.output<typeof ClientSchema>;
export type PagesSettings = z.output<typeof PagesSchema>;
