import type Router from '@koa/router';
import { recordChange, type AdminDeps } from './context.ts';

/** /keys: public views only (kid, alg, state, times); private keys never leave the KeyManager. */
export function keyRoutes(router: Router, deps: AdminDeps): void {
  const { keys, audit } = deps;

  router.get('/keys', async (ctx) => {
    // Another instance may have rotated since this one last looked.
    await keys.reload();
    ctx.body = { keys: keys.views() };
  });

  router.post('/keys/rotate', async (ctx) => {
    const key = await keys.rotate();
    await recordChange(ctx, audit, 'keys.rotate', { type: 'keys', id: key.kid }, undefined, { kid: key.kid, alg: key.alg, activatesAt: key.activatesAt });
    ctx.status = 201;
    ctx.body = { key };
  });
}
