import type Router from '@koa/router';
import { actorOf } from './context.ts';
import type { AdminOperations } from './operations.ts';
import { participantView } from './stored.ts';
import { readJson } from './validation.ts';

/**
 * /participants: the registry this instance serves is what GET shows (it follows the store
 * within a second); writes go through the sync, after the mapping, domain and upstream checks
 * (operations.ts, which the console calls too).
 */
export function participantRoutes(router: Router, ops: AdminOperations): void {
  router.get('/participants', (ctx) => {
    ctx.body = { participants: ops.listParticipants() };
  });

  router.post('/participants', async (ctx) => {
    const participant = await ops.createParticipant(await readJson(ctx), actorOf(ctx));
    ctx.status = 201;
    ctx.set('Location', `/admin/v1/participants/${participant.id}`);
    ctx.body = participantView(participant);
  });

  router.get('/participants/:id', (ctx) => {
    ctx.body = ops.participant(ctx.params.id!);
  });

  router.put('/participants/:id', async (ctx) => {
    ctx.body = participantView(await ops.updateParticipant(ctx.params.id!, await readJson(ctx), actorOf(ctx)));
  });

  router.delete('/participants/:id', async (ctx) => {
    ctx.body = await ops.deleteParticipant(ctx.params.id!, actorOf(ctx));
  });

  router.post('/participants/:id/disable', async (ctx) => {
    ctx.body = participantView(await ops.setEnabled(ctx.params.id!, false, actorOf(ctx)));
  });
  router.post('/participants/:id/enable', async (ctx) => {
    ctx.body = participantView(await ops.setEnabled(ctx.params.id!, true, actorOf(ctx)));
  });

  router.post('/participants/:id/revoke-sessions', async (ctx) => {
    const id = ctx.params.id!;
    const revoked = await ops.revokeParticipantSessions(id, actorOf(ctx));
    ctx.body = { participant: id, revoked };
  });

  router.post('/participants/:id/mapping/dry-run', async (ctx) => {
    ctx.body = ops.dryRun(ctx.params.id!, await readJson(ctx));
  });
}
