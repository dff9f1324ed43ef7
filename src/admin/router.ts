import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import compose from 'koa-compose';
import { adminAuth, type AdminToken } from './auth.ts';
import type { AdminDeps } from './context.ts';
import { AdminError, adminErrors } from './errors.ts';
import { auditRoutes } from './routes-audit.ts';
import { clientRoutes } from './routes-clients.ts';
import { domainRoutes } from './routes-domains.ts';
import { keyRoutes } from './routes-keys.ts';
import { adminOperations, type AdminOperations } from './operations.ts';
import { participantRoutes } from './routes-participants.ts';
import { sessionRoutes } from './routes-sessions.ts';

const PREFIX = '/admin/v1';

/**
 * Everything under /admin/v1, for the internal listener only. Errors and auth wrap every path
 * under the prefix, so an unknown route is a JSON 404 after auth, never a hint to a caller without the token.
 */
export function adminRouter(deps: AdminDeps, tokens: AdminToken[], ops: AdminOperations = adminOperations(deps)): Middleware {
  const router = new Router({ prefix: PREFIX });
  participantRoutes(router, ops);
  domainRoutes(router, deps, ops);
  clientRoutes(router, deps, ops);
  keyRoutes(router, ops);
  auditRoutes(router, deps);
  sessionRoutes(router, deps, ops);

  const methodCheck = async (ctx: Context, next: Next) => {
    await next();
    if (ctx.status === 405 && ctx.body === undefined) throw new AdminError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path} (allowed: ${ctx.response.get('Allow')})`);
  };
  const handle = compose([adminErrors(), adminAuth(tokens), methodCheck, router.routes(), router.allowedMethods()]) as Middleware;

  return async function admin(ctx, next) {
    if (ctx.path !== PREFIX && !ctx.path.startsWith(`${PREFIX}/`)) return next();
    ctx.set('Cache-Control', 'no-store');
    return handle(ctx, async () => {});
  };
}
