import type { Context, Next } from 'koa';
import { ConcordError } from '../errors.ts';
import { showError } from '../interactions/index.ts';
import { StoreUnavailableError } from '../store/index.ts';

const wantsHtml = (ctx: Context) => ctx.path.startsWith('/interaction/') || ctx.path.startsWith('/broker/') || ctx.accepts('json', 'html') === 'html';

/**
 * Errors that escape a route: a store that is down answers 503 (a page for people, JSON for
 * programs); anything else is logged with the request id and never shows a stack trace.
 */
export function errorBoundary() {
  return async function catchErrors(ctx: Context, next: Next) {
    try {
      await next();
    } catch (error) {
      const storeDown = error instanceof StoreUnavailableError || (error as { code?: string })?.code === 'store_unavailable';
      if (storeDown) ctx.set('Retry-After', '5');
      if (wantsHtml(ctx)) {
        if (storeDown) return showError(ctx, 'store_unavailable', { cause: error });
        if (error instanceof ConcordError && error.expose) {
          ctx.status = error.status;
          return showError(ctx, 'internal', { cause: error, message: error.message });
        }
        return showError(ctx, 'internal', { cause: error });
      }
      const status = storeDown ? 503 : error instanceof ConcordError ? error.status : 500;
      ctx.status = status;
      ctx.body = {
        error: storeDown ? 'temporarily_unavailable' : status >= 500 ? 'server_error' : (error as ConcordError).code,
        error_description: storeDown ? 'the session store is unavailable' : status >= 500 ? 'internal error' : (error as Error).message,
        request_id: ctx.state.requestId,
      };
      ctx.state.log?.[status >= 500 ? 'error' : 'warn']({ err: error }, 'request failed');
    }
  };
}
