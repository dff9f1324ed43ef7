import type Router from '@koa/router';
import { actorOf, type AdminDeps } from './context.ts';
import { notFound } from './errors.ts';
import { RESERVED_CLIENT_IDS, type AdminOperations } from './operations.ts';
import { clientView } from './stored.ts';
import { readJson } from './validation.ts';

/** /clients: the relying parties. oidc-provider reads them from the registry, so a change serves on the next request. */
export function clientRoutes(router: Router, deps: AdminDeps, ops: AdminOperations): void {
  router.get('/clients', (ctx) => {
    ctx.body = { clients: ops.listClients() };
  });

  router.post('/clients', async (ctx) => {
    const client = await ops.createClient(await readJson(ctx), actorOf(ctx));
    ctx.status = 201;
    ctx.set('Location', `/admin/v1/clients/${encodeURIComponent(client.client_id)}`);
    ctx.body = clientView(client);
  });

  router.get('/clients/:id', (ctx) => {
    const client = RESERVED_CLIENT_IDS.has(ctx.params.id!) ? undefined : deps.registry.client(ctx.params.id!);
    if (!client) throw notFound('client', ctx.params.id!);
    ctx.body = clientView(client);
  });

  router.put('/clients/:id', async (ctx) => {
    ctx.body = clientView(await ops.updateClient(ctx.params.id!, await readJson(ctx), actorOf(ctx)));
  });

  router.delete('/clients/:id', async (ctx) => {
    const id = ctx.params.id!;
    await ops.deleteClient(id, actorOf(ctx));
    ctx.body = { deleted: id };
  });
}
