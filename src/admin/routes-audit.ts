import type Router from '@koa/router';
import type { AdminDeps } from './context.ts';
import { intParam } from './validation.ts';

const MAX_LIMIT = 500;

/** /audit?before=&limit=: newest first; `next` is the `before` of the following page, null at the end. */
export function auditRoutes(router: Router, deps: AdminDeps): void {
  router.get('/audit', async (ctx) => {
    const limit = intParam(ctx, 'limit', 50, MAX_LIMIT)!;
    const before = intParam(ctx, 'before', undefined, Number.MAX_SAFE_INTEGER);
    const entries = await deps.audit.page({ ...(before === undefined ? {} : { before }), limit });
    const last = entries.at(-1);
    ctx.body = { entries, next: entries.length === limit && last && last.seq > 1 ? last.seq : null };
  });
}
