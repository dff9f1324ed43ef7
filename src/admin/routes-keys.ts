import type Router from '@koa/router';
import { actorOf } from './context.ts';
import type { AdminOperations } from './operations.ts';

/** /keys: public views only (kid, alg, state, times); private keys never leave the KeyManager. */
export function keyRoutes(router: Router, ops: AdminOperations): void {
  router.get('/keys', async (ctx) => {
    ctx.body = { keys: await ops.listKeys() };
  });

  router.post('/keys/rotate', async (ctx) => {
    const key = await ops.rotateKeys(actorOf(ctx));
    ctx.status = 201;
    ctx.body = { key };
  });
}
