import type { Context } from 'koa';
import { newReference } from '../observability/index.ts';
import { escapeHtml, renderPage, Trusted } from './views.ts';

/** Pages a person may land on when a sign-in cannot go on; each names its cause plainly. */
export const ERROR_PAGES = {
  unknown_domain: { status: 400, heading: 'We don’t know your organisation', message: 'No partner organisation signs in with addresses at this domain. Check the address, or ask your administrator whether your organisation is connected.' },
  invalid_email: { status: 400, heading: 'Check your email address', message: 'Enter a full work email address, like you@your-organisation.example.' },
  participant_disabled: { status: 403, heading: 'Sign-in through your organisation is switched off', message: 'Your organisation’s connection to this service is currently disabled. Please contact your administrator.' },
  participant_not_allowed: { status: 403, heading: 'Your organisation cannot sign in here', message: 'This service does not accept sign-ins from your organisation.' },
  unknown_participant: { status: 400, heading: 'Unknown organisation', message: 'The organisation named in this sign-in request is not known.' },
  upstream_unavailable: { status: 503, heading: 'Your organisation’s sign-in service is unavailable', message: 'We could not reach your organisation’s sign-in service. Please try again in a few minutes.' },
  upstream_error: { status: 502, heading: 'Your organisation’s sign-in service refused the sign-in', message: 'Your organisation’s sign-in service reported an error. Please try again, or contact your administrator.' },
  upstream_invalid: { status: 502, heading: 'The sign-in could not be verified', message: 'The answer from your organisation’s sign-in service failed our security checks, so we did not sign you in.' },
  upstream_misconfigured: { status: 502, heading: 'Your organisation’s sign-in service is not set up correctly for this service', message: 'Its settings, or the way it answers, are not compatible with Concord, so we could not sign you in. Trying again will not help: please tell your administrator, quoting the reference below.' },
  broker_not_found: { status: 404, heading: 'This is not a sign-in address', message: 'Concord does not know this address. Go back to the service you were signing in to and start again.' },
  mapping_rejected: { status: 403, heading: 'Your account does not meet this service’s requirements', message: 'Your organisation’s account does not meet a requirement for signing in here.' },
  claims_not_accepted: { status: 502, heading: 'Your account could not be accepted', message: 'Your organisation’s sign-in service sent account information that Concord cannot accept within its limits (for example, too many groups). Please contact your administrator and quote the reference below.' },
  session_expired: { status: 400, heading: 'This sign-in has expired', message: 'The sign-in took too long or was already used. Go back to the service and start again.' },
  access_denied: { status: 403, heading: 'Access denied', message: 'You declined the request.' },
  store_unavailable: { status: 503, heading: 'Sign-in is temporarily unavailable', message: 'Concord cannot reach its session store. Please try again in a moment.' },
  at_capacity: { status: 503, heading: 'Sign-in is temporarily unavailable', message: 'Concord is holding as many sign-ins in progress as it can. Please try again in a minute.' },
  rate_limited: { status: 429, heading: 'Too many attempts', message: 'Please wait a moment before trying again.' },
  internal: { status: 500, heading: 'Something went wrong', message: 'Concord could not complete the sign-in. Please try again.' },
} as const;

export type ErrorPage = keyof typeof ERROR_PAGES;

/** A way back to the service from an error page: a form that ends the sign-in there with an OAuth error. */
export interface WayBack {
  /** Where the form posts (the interaction's abort route). */
  action: string;
  /** The service's name, for the button. */
  service: string;
}

/**
 * Renders an error page whose reference is the request id, and logs the same reference with the
 * cause, so support can find the log line from what the user reads out. With `back`, the page
 * offers a way back to the service.
 */
export function showError(ctx: Context, page: ErrorPage, details: { cause?: unknown; message?: string; log?: Record<string, unknown>; back?: WayBack } = {}): void {
  const spec = ERROR_PAGES[page];
  const reference = (ctx.state.requestId as string | undefined) ?? newReference();
  const log = ctx.state.log as { warn: (o: object, m: string) => void; error: (o: object, m: string) => void } | undefined;
  const entry = { reference, page, ...details.log, err: details.cause };
  if (spec.status >= 500) log?.error(entry, 'sign-in failed');
  else log?.warn(entry, 'sign-in refused');
  ctx.status = spec.status;
  ctx.type = 'html';
  ctx.body = renderPage('error', spec.heading, {
    heading: spec.heading,
    message: details.message ?? spec.message,
    reference,
    extra: details.back
      ? new Trusted(`<form method="post" action="${escapeHtml(details.back.action)}"><button type="submit" class="secondary">Back to ${escapeHtml(details.back.service)}</button></form>`)
      : undefined,
  });
}
