import type { Context, Next } from 'koa';
import { showError } from '../pages/index.ts';
import type { CheckedRequest } from './request-limits.ts';
import { routeOf } from './route.ts';

/**
 * POST at the authorization endpoint (OIDC Core 1.0 §3.1.2.1: the OP MUST support GET and POST)
 * and at the end-session endpoint (OIDC RP-Initiated Logout 1.0 §2: likewise), answered with
 * `303 See Other` to the same endpoint with the form as its query.
 *
 * Why not oidc-provider's own `enableHttpPostMethods`: it needs the session cookies to be
 * `SameSite=None`, so every cross-site POST would carry them (login CSRF, session fixation across
 * sites). A 303 turns the POST into a top-level GET navigation, which carries `SameSite=Lax`
 * cookies, so the request meets the same code, checks and limits as a GET does. The form was
 * already read and checked at the edge (request-limits.ts: `ctx.state.checked.rawForm`), and the
 * rate limits counted this request; the GET is checked and counted again (its URL, at most
 * MAX_URL_CHARS, is refused with 414 like any other).
 *
 * A POST that is not `application/x-www-form-urlencoded` gets the `request_invalid` page (400).
 */
export function postedFormToQuery() {
  return function redirectPostedForm(ctx: Context, next: Next) {
    const route = routeOf(ctx)?.name;
    if (ctx.method !== 'POST' || (route !== 'authorization' && route !== 'end_session')) return next();
    const { rawForm } = (ctx.state.checked ?? {}) as CheckedRequest;
    if (rawForm === undefined) {
      showError(ctx, 'request_invalid', { log: { reason: `POST to ${ctx.path} without a form (application/x-www-form-urlencoded)` } });
      return;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(rawForm === '' ? ctx.path : `${ctx.path}?${rawForm}`);
  };
}
