import type { Context, Next } from 'koa';
import { errors as oidcErrors } from 'oidc-provider';
import { ConcordError } from '../errors.ts';
import { showError } from '../pages/index.ts';
import { StoreFullError, StoreUnavailableError } from '../store/index.ts';
import { routeOf } from './route.ts';

const BROWSER_ROUTES = new Set(['interaction', 'interaction_login', 'interaction_consent', 'interaction_callback', 'broker_callback', 'broker']);
const wantsHtml = (ctx: Context) => BROWSER_ROUTES.has(routeOf(ctx)?.name ?? '') || ctx.accepts('json', 'html') === 'html';

/**
 * A 4xx the caller caused and may read about: Concord's own (ConcordError, e.g. a form too large) or
 * oidc-provider's (e.g. interactionDetails without the interaction cookie).
 */
function clientError(error: unknown): { status: number; code: string; message: string } | undefined {
  if (error instanceof ConcordError) {
    return error.status < 500 && error.expose ? { status: error.status, code: error.code, message: error.message } : undefined;
  }
  if (error instanceof oidcErrors.OIDCProviderError && error.status >= 400 && error.status < 500) {
    const description = (error as { error_description?: string }).error_description;
    return { status: error.status, code: error.error, message: description ?? error.error };
  }
  return undefined;
}

/**
 * Errors that escape a route: a store that is down answers 503 (a page for people, JSON for
 * programs); a request the caller got wrong answers its 4xx; anything else is logged with the
 * request id and answers 500. Never a stack trace.
 */
export function errorBoundary() {
  return async function catchErrors(ctx: Context, next: Next) {
    try {
      await next();
    } catch (error) {
      const storeDown = error instanceof StoreUnavailableError || (error as { code?: string })?.code === 'store_unavailable';
      if (storeDown) ctx.set('Retry-After', '5');
      const refused = storeDown ? undefined : clientError(error);
      if (wantsHtml(ctx)) {
        if (storeDown) return showError(ctx, error instanceof StoreFullError ? 'at_capacity' : 'store_unavailable', { cause: error });
        // The interaction cookie is gone (expired, another browser, a bookmarked URL): start again.
        if (error instanceof oidcErrors.SessionNotFound) return showError(ctx, 'session_expired', { cause: error });
        if (refused) return showError(ctx, 'request_invalid', { status: refused.status, detail: refused.message, cause: error });
        return showError(ctx, 'internal', { cause: error });
      }
      const status = storeDown ? 503 : (refused?.status ?? 500);
      ctx.status = status;
      ctx.body = {
        error: storeDown ? 'temporarily_unavailable' : (refused?.code ?? 'server_error'),
        error_description: storeDown ? 'the session store is unavailable' : (refused?.message ?? 'internal error'),
        request_id: ctx.state.requestId,
      };
      ctx.state.log?.[status >= 500 ? 'error' : 'warn']({ err: error }, 'request failed');
    }
  };
}
