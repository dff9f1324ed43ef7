import type Router from '@koa/router';
import { ClientSchema, clientRedirectProblems, type ClientConfig } from '../config/index.ts';
import { idIn, keepClientSecret, recordChange, withoutFlags, type AdminDeps } from './context.ts';
import { AdminError, notFound } from './errors.ts';
import { clientView } from './stored.ts';
import { parseWith, readJson } from './validation.ts';

/** /clients: the relying parties. oidc-provider reads them from the registry, so a change serves on the next request. */
export function clientRoutes(router: Router, deps: AdminDeps): void {
  const { registry, sync, audit } = deps;
  const object = (id: string) => ({ type: 'client' as const, id });

  /** The deployment's rule on http redirect URIs (clients.allowHttpRedirectUris), as the config loader applies it. */
  function checkRedirectPolicy(client: ClientConfig): void {
    const [problem] = clientRedirectProblems(client, deps.settings.clients.allowHttpRedirectUris);
    if (problem) throw new AdminError(422, 'invalid_request', `invalid client: ${problem.field}: ${problem.message}`, { field: problem.field });
  }

  /** The files' cross-check, at the API: a client may only name participants that exist. */
  async function checkParticipants(client: ClientConfig): Promise<void> {
    for (const [i, id] of (client.participants ?? []).entries()) {
      if (!registry.participant(id) && !(await sync.storedParticipant(id))) {
        throw new AdminError(422, 'invalid_request', `participants.${i}: no participant "${id}"`, { field: `participants.${i}` });
      }
    }
  }

  router.get('/clients', (ctx) => {
    const all = registry.clients().map(clientView);
    ctx.body = { clients: all.sort((a, b) => a.client_id.localeCompare(b.client_id)) };
  });

  router.post('/clients', async (ctx) => {
    const client = parseWith(ClientSchema, withoutFlags(await readJson(ctx)), { what: 'client' });
    checkRedirectPolicy(client);
    await checkParticipants(client);
    await sync.putClient(client, 'new');
    await recordChange(ctx, audit, 'client.create', object(client.client_id), { after: client });
    ctx.status = 201;
    ctx.set('Location', `/admin/v1/clients/${encodeURIComponent(client.client_id)}`);
    ctx.body = clientView(client);
  });

  router.get('/clients/:id', (ctx) => {
    const client = registry.client(ctx.params.id!);
    if (!client) throw notFound('client', ctx.params.id!);
    ctx.body = clientView(client);
  });

  router.put('/clients/:id', async (ctx) => {
    const id = ctx.params.id!;
    const raw = await readJson(ctx);
    const bodyId = idIn(raw, 'client_id');
    if (bodyId !== undefined && bodyId !== id) throw new AdminError(422, 'invalid_request', `client_id: "${bodyId}" does not match the URL's "${id}"`, { field: 'client_id' });
    const current = await sync.storedClient(id);
    if (!current) throw notFound('client', id);
    const body = keepClientSecret(typeof raw === 'object' && raw !== null ? { ...raw, client_id: id } : raw, current);
    const client = parseWith(ClientSchema, body, { what: 'client' });
    checkRedirectPolicy(client);
    await checkParticipants(client);
    const previous = await sync.putClient(client, 'existing');
    await recordChange(ctx, audit, 'client.update', object(id), { before: previous, after: client });
    ctx.body = clientView(client);
  });

  router.delete('/clients/:id', async (ctx) => {
    const id = ctx.params.id!;
    const previous = await sync.removeClient(id);
    if (!previous) throw notFound('client', id);
    await recordChange(ctx, audit, 'client.delete', object(id), { before: previous });
    ctx.body = { deleted: id };
  });
}
