import { clientLabel, grantTypeLabel, oauthErrorLabel, outcomeLabel, participantLabel, type KnownIds } from './labels.ts';
import type { Metrics } from './metrics.ts';

/**
 * What the login metrics read of a brokered login's end. The part that runs logins (interactions/)
 * defines the events and their bounded outcomes; this part only counts them, so it depends on no
 * route: any event of this shape will do.
 */
export interface CountedLogin {
  participant: string | undefined;
  client: string | undefined;
  /** A bounded outcome code ('success', an error code); one not shaped like a code is labelled 'other'. */
  outcome: string;
  /** Whole brokered login, milliseconds. */
  durationMs?: number;
  /** The upstream's share of it, milliseconds. */
  upstreamMs?: number;
}

/**
 * Counts every brokered login by participant, client and outcome, and times the successful ones
 * (end to end, and the upstream's share). `next` is another observer to call as well (tests, hooks).
 */
export function loginMetrics<E extends CountedLogin>(metrics: Metrics, known: KnownIds, next?: (event: E) => void): (event: E) => void {
  return (event: E) => {
    const participant = participantLabel(known, event.participant);
    metrics.loginAttempts.inc({ participant, client: clientLabel(known, event.client), outcome: outcomeLabel(event.outcome) });
    if (event.durationMs !== undefined) metrics.loginDuration.observe({ participant }, event.durationMs / 1000);
    if (event.upstreamMs !== undefined) metrics.loginUpstreamDuration.observe({ participant }, event.upstreamMs / 1000);
    next?.(event);
  };
}

interface EventSource {
  on(event: string, listener: (...args: never[]) => void): unknown;
}

interface OidcCtx {
  oidc?: { client?: { clientId?: unknown }; params?: { grant_type?: unknown; client_id?: unknown }; route?: unknown };
}

const clientOf = (known: KnownIds, ctx: OidcCtx | undefined) => clientLabel(known, ctx?.oidc?.client?.clientId);
const errorOf = (err: unknown) => oauthErrorLabel((err as { error?: unknown } | null)?.error);

/**
 * Token and OAuth error counters from oidc-provider's events. The provider is rebuilt when keys
 * change: call this for each one (listeners go with the old provider).
 */
export function providerMetrics(provider: EventSource, metrics: Metrics, known: KnownIds): void {
  provider.on('grant.success', (ctx: OidcCtx) => {
    metrics.tokensIssued.inc({ client: clientOf(known, ctx), grant_type: grantTypeLabel(ctx?.oidc?.params?.grant_type) });
  });
  provider.on('grant.error', (ctx: OidcCtx, err: unknown) => {
    metrics.tokenErrors.inc({ client: clientOf(known, ctx), error: errorOf(err) });
  });
  provider.on('authorization.error', (ctx: OidcCtx, err: unknown) => {
    metrics.authorizationErrors.inc({ client: clientOf(known, ctx), error: errorOf(err) });
  });
  // A server error is reported under its own event, whatever the endpoint: count it where it happened.
  provider.on('server_error', (ctx: OidcCtx) => {
    const route = ctx?.oidc?.route;
    if (route === 'token') metrics.tokenErrors.inc({ client: clientOf(known, ctx), error: 'server_error' });
    else if (route === 'authorization' || route === 'resume') metrics.authorizationErrors.inc({ client: clientOf(known, ctx), error: 'server_error' });
  });
}
