import type Router from '@koa/router';
import { actorOf } from './context.ts';
import type { AdminOperations } from './operations.ts';

/**
 * /keys: public views only (kid, alg, state, times); private keys never leave the KeyManager.
 *   GET           `{ keys: KeyView[], algorithms: AlgorithmView[], accessTokenAlgorithm }`: every
 *                 published key, and per algorithm which key signs, which is next, which retire.
 *   POST /rotate  a new key for every offered algorithm, all signing after the activation delay:
 *                 `{ keys: KeyView[], key }` (201), `key` being the access-token algorithm's (the one
 *                 key of earlier releases).
 */
export function keyRoutes(router: Router, ops: AdminOperations): void {
  router.get('/keys', async (ctx) => {
    const keys = await ops.listKeys();
    ctx.body = { keys, ...ops.keyAlgorithms() };
  });

  router.post('/keys/rotate', async (ctx) => {
    const keys = await ops.rotateKeys(actorOf(ctx));
    const { accessTokenAlgorithm } = ops.keyAlgorithms();
    ctx.status = 201;
    ctx.body = { keys, key: keys.find((k) => k.alg === accessTokenAlgorithm) ?? keys[0] };
  });
}
