import type { Context } from 'koa';
import { newReference } from '../observability/index.ts';
import { pagesOf, type ParticipantShown } from './pages.ts';
import { escapeHtml, Trusted } from './render.ts';

/**
 * Pages a person may land on when a sign-in cannot go on; each says what happened (`error.{page}.message`
 * in the catalogues), what the person can do (`error.{page}.action`) and offers a way on. `transient`
 * pages offer to try the same address again.
 */
export const ERROR_PAGES = {
  unknown_domain: { status: 400, transient: false },
  invalid_email: { status: 400, transient: false },
  participant_disabled: { status: 403, transient: false },
  participant_not_allowed: { status: 403, transient: false },
  unknown_participant: { status: 400, transient: false },
  upstream_unavailable: { status: 503, transient: true },
  upstream_error: { status: 502, transient: false },
  upstream_invalid: { status: 502, transient: false },
  upstream_misconfigured: { status: 502, transient: false },
  broker_not_found: { status: 404, transient: false },
  mapping_rejected: { status: 403, transient: false },
  claims_not_accepted: { status: 502, transient: false },
  session_expired: { status: 400, transient: false },
  access_denied: { status: 403, transient: false },
  store_unavailable: { status: 503, transient: true },
  at_capacity: { status: 503, transient: true },
  rate_limited: { status: 429, transient: true },
  internal: { status: 500, transient: true },
  request_invalid: { status: 400, transient: false },
  not_found: { status: 404, transient: false },
} as const satisfies Record<string, { status: number; transient: boolean }>;

export type ErrorPage = keyof typeof ERROR_PAGES;

/**
 * A way back to the service from an error page: a form to the interaction's abort route (the
 * sign-in ends at the service with access_denied), or a link to the service's home page when the
 * sign-in is already over.
 */
export type WayBack = { service: string } & ({ action: string; href?: undefined } | { href: string; action?: undefined });

export interface ErrorDetails {
  cause?: unknown;
  /** Replaces the catalogue's message (a mapping rule's own message, in the deployment's words). */
  message?: string;
  /** A catalogue key whose message replaces the page's own (a variant, e.g. error.unknown_domain.unverified). */
  messageKey?: string;
  /** Arguments of the page's messages, e.g. `domain` of unknown_domain. */
  args?: Record<string, string>;
  /** A technical detail shown under the message (an OAuth error_description). */
  detail?: string;
  /** The HTTP status, when not the page's own (e.g. 405 on a known path with the wrong method, 413). */
  status?: number;
  log?: Record<string, unknown>;
  back?: WayBack;
  /** Where "Try again" leads (e.g. the sign-in's first page); transient pages default to the same address (GET). */
  retry?: string;
  /** The organisation the page is about. */
  participant?: ParticipantShown;
}

/**
 * Renders an error page whose reference is the request id, and logs the same reference with the
 * cause, so support can find the log line from what the user reads out.
 */
export function showError(ctx: Context, page: ErrorPage, details: ErrorDetails = {}): void {
  const spec = ERROR_PAGES[page];
  const pages = pagesOf(ctx);
  const reference = (ctx.state.requestId as string | undefined) ?? newReference();
  const log = ctx.state.log as { warn: (o: object, m: string) => void; error: (o: object, m: string) => void } | undefined;
  const entry = { reference, page, ...details.log, err: details.cause };
  const status = details.status ?? spec.status;
  if (status >= 500) log?.error(entry, 'sign-in failed');
  else log?.warn(entry, 'sign-in refused');
  const t = pages.translate(ctx);
  const args = details.args ?? {};
  const heading = t(`error.${page}.heading`, args);
  const retry = details.retry ?? (spec.transient ? retryOf(ctx) : undefined);
  const actions: string[] = [];
  if (details.back?.action !== undefined) {
    actions.push(`<form method="post" action="${escapeHtml(details.back.action)}"><button type="submit" class="secondary">${escapeHtml(t('error.backToService', { service: details.back.service }))}</button></form>`);
  } else if (details.back?.href !== undefined) {
    actions.push(`<a class="button secondary" href="${escapeHtml(details.back.href)}">${escapeHtml(t('error.backToService', { service: details.back.service }))}</a>`);
  }
  if (retry) actions.push(`<a class="button" href="${escapeHtml(retry)}">${escapeHtml(t('error.tryAgain'))}</a>`);
  const help = pages.settings.branding.links.help;
  if (help) actions.push(`<p><a href="${escapeHtml(help)}">${escapeHtml(t('error.getHelp'))}</a></p>`);
  ctx.status = status;
  ctx.body = pages.render(ctx, 'error', heading, {
    heading,
    message: details.message ?? t(details.messageKey ?? `error.${page}.message`, args),
    action: t(`error.${page}.action`, args),
    detail: details.detail ? new Trusted(`<p class="hint">${escapeHtml(t('error.detail', { detail: details.detail }))}</p>`) : undefined,
    actions: actions.length ? new Trusted(`<div class="actions">${actions.join('')}</div>`) : undefined,
    participantBadge: details.participant ? pages.participantBadge(ctx, details.participant) : undefined,
    reference,
  });
}

/**
 * Where "Try again" leads after a passing failure: the same address for a GET; after a form post
 * during a sign-in (/interaction/{uid}/...), the sign-in's first page; else nowhere.
 */
function retryOf(ctx: Context): string | undefined {
  if (ctx.method === 'GET' || ctx.method === 'HEAD') return ctx.originalUrl;
  const uid = /^\/interaction\/([A-Za-z0-9_-]{1,100})(\/|$)/.exec(ctx.path)?.[1];
  return uid ? `/interaction/${uid}` : undefined;
}

/** The words of an error page in a shipped language, without branding (`{brand}` is Concord): for tests and tools. */
export function errorText(page: ErrorPage, locale = 'en', args: Record<string, string> = {}): { heading: string; message: string; action: string } {
  const { messages } = pagesOf({});
  const t = (part: string) => messages.format(locale, `error.${page}.${part}`, { brand: 'Concord', ...args });
  return { heading: t('heading'), message: t('message'), action: t('action') };
}
