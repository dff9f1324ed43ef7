import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { ParticipantIdSchema, ParticipantSchema, type Participant } from '../config/index.ts';
import { compileMapping, MappingSchema } from '../mapping/index.ts';
import { actorOf, idIn, keepParticipantSecret, recordChange, withoutFlags, type AdminDeps } from './context.ts';
import { AdminError, notFound } from './errors.ts';
import { participantView } from './stored.ts';
import { parseWith, readJson } from './validation.ts';

const DryRunSchema = z
  .object({
    claims: z.record(z.string(), z.unknown()),
    /** An unsaved rule set to try instead of the participant's own. */
    mapping: MappingSchema.optional(),
  })
  .strict();

/**
 * /participants: the registry this instance serves is what GET shows (it follows the store
 * within a second); writes go through the sync, after the mapping, domain and upstream checks.
 */
export function participantRoutes(router: Router, deps: AdminDeps): void {
  const { registry, sync, audit, sessions, checkUpstream, upstreamStatus } = deps;
  const object = (id: string) => ({ type: 'participant' as const, id });

  /**
   * A participant as GET shows it: its configuration (secrets masked), what the last check of its
   * upstream found, and what the partner registers for Concord's client there (read-only): the
   * callback, the return after its logout, and where it sends logout tokens (OIDC Back-Channel Logout).
   */
  const withStatus = (config: Participant) => {
    const status = upstreamStatus(config.id);
    const broker = `${deps.settings.issuer}/broker/${config.id}`;
    return {
      ...participantView(config),
      registration: { redirectUri: `${broker}/callback`, postLogoutRedirectUri: `${broker}/logged-out`, backchannelLogoutUri: `${broker}/backchannel-logout` },
      status: !config.enabled
        ? { state: 'disabled' }
        : {
            state: status?.state ?? 'unknown',
            ...(status?.lastCheck ? { checkedAt: status.lastCheck.toISOString() } : {}),
            ...(status?.code ? { code: status.code } : {}),
            ...(status?.reason ? { reason: status.reason } : {}),
            ...(status ? { circuit: status.circuit } : {}),
          },
    };
  };

  /** Cheap local checks first, then the network: a typo in a rule fails without calling the upstream. */
  async function validate(participant: Participant): Promise<void> {
    await sync.checkParticipant(participant);
    await checkUpstream(participant);
  }

  async function existing(id: string): Promise<Participant> {
    const current = await sync.storedParticipant(id);
    if (!current) throw notFound('participant', id);
    return current;
  }

  router.get('/participants', (ctx) => {
    const all = registry.participants().map((p) => withStatus(p.config));
    ctx.body = { participants: all.sort((a, b) => a.id.localeCompare(b.id)) };
  });

  router.post('/participants', async (ctx) => {
    const body = withoutFlags(await readJson(ctx));
    const participant = parseWith(ParticipantSchema, body, { what: 'participant', participant: idIn(body, 'id') ?? '?' });
    if (await sync.storedParticipant(participant.id)) {
      throw new AdminError(409, 'already_exists', `participant "${participant.id}" already exists; change it with PUT /admin/v1/participants/${participant.id}`, { field: 'id' });
    }
    await validate(participant);
    await sync.putParticipant(participant, 'new', actorOf(ctx));
    await recordChange(ctx, audit, 'participant.create', object(participant.id), { after: participant });
    ctx.status = 201;
    ctx.set('Location', `/admin/v1/participants/${participant.id}`);
    ctx.body = participantView(participant);
  });

  router.get('/participants/:id', (ctx) => {
    const active = registry.participant(ctx.params.id!);
    if (!active) throw notFound('participant', ctx.params.id!);
    ctx.body = withStatus(active.config);
  });

  router.put('/participants/:id', async (ctx) => {
    const id = ctx.params.id!;
    const raw = await readJson(ctx);
    const bodyId = idIn(raw, 'id');
    if (bodyId !== undefined && bodyId !== id) throw new AdminError(422, 'invalid_request', `id: "${bodyId}" does not match the URL's "${id}"`, { field: 'id' });
    const current = await existing(id);
    const body = keepParticipantSecret(typeof raw === 'object' && raw !== null ? { ...raw, id } : raw, current);
    const participant = parseWith(ParticipantSchema, body, { what: 'participant', participant: id });
    await validate(participant);
    const previous = await sync.putParticipant(participant, 'existing', actorOf(ctx));
    await recordChange(ctx, audit, 'participant.update', object(id), { before: previous, after: participant });
    ctx.body = participantView(participant);
  });

  router.delete('/participants/:id', async (ctx) => {
    const id = ctx.params.id!;
    const previous = await sync.removeParticipant(id, actorOf(ctx));
    if (!previous) throw notFound('participant', id);
    // Removed first: from here no instance starts a login through it, so no new session escapes the
    // revocation. Every session ends as any other does: its services are sent logout tokens.
    const revoked = await sessions.endAllOfParticipant(id, 'participant_removed');
    await recordChange(ctx, audit, 'participant.delete', object(id), { before: previous }, { revoked });
    ctx.body = { deleted: id, revoked };
  });

  async function setEnabled(ctx: Context, enabled: boolean) {
    const id = ctx.params.id!;
    const current = await existing(id);
    if (current.enabled !== enabled) {
      const next = { ...current, enabled };
      await sync.putParticipant(next, 'existing', actorOf(ctx));
      // Disabled: its users' sessions end (findAccount already refuses them everywhere), and their services are told.
      const revoked = enabled ? undefined : await sessions.endAllOfParticipant(id, 'participant_disabled');
      await recordChange(ctx, audit, enabled ? 'participant.enable' : 'participant.disable', object(id), { before: current, after: next }, revoked ? { revoked } : undefined);
      ctx.body = participantView(next);
    } else {
      ctx.body = participantView(current);
    }
  }
  router.post('/participants/:id/disable', (ctx) => setEnabled(ctx, false));
  router.post('/participants/:id/enable', (ctx) => setEnabled(ctx, true));

  // Also for an id already deleted: finishing an offboarding whose revocation was interrupted.
  router.post('/participants/:id/revoke-sessions', async (ctx) => {
    const id = parseWith(z.object({ id: ParticipantIdSchema }), { id: ctx.params.id }).id;
    const revoked = await sessions.endAllOfParticipant(id, 'participant_revoked');
    await recordChange(ctx, audit, 'participant.revoke_sessions', object(id), undefined, { revoked });
    ctx.body = { participant: id, revoked };
  });

  router.post('/participants/:id/mapping/dry-run', async (ctx) => {
    const id = ctx.params.id!;
    const request = parseWith(DryRunSchema, await readJson(ctx), { what: 'dry-run request', participant: id });
    const active = registry.participant(id);
    if (!active) throw notFound('participant', id);
    // The same compiled apply() a real login runs; an unsaved rule set is compiled the same way.
    const mapping = request.mapping === undefined ? active.mapping : compileMapping(request.mapping, { participantId: id, domains: [...active.verifiedDomains] });
    const outcome = mapping.apply(request.claims);
    ctx.body = outcome.ok
      ? { outcome: 'released', claims: outcome.claims }
      : {
          outcome: 'rejected',
          // mapping_rejected (a require rule said no), or the limit that stopped the mapping (claims_too_deep, ...).
          code: outcome.code,
          rule: {
            index: outcome.ruleIndex,
            requirement: outcome.requirement,
            ...(outcome.message === undefined ? {} : { message: outcome.message }),
            ...(outcome.error === undefined ? {} : { error: outcome.error }),
          },
        };
  });
}
