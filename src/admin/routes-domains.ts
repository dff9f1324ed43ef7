import type Router from '@koa/router';
import { DOMAIN_STATES, type DomainState } from '../domain-proof/index.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { AdminError } from './errors.ts';
import type { AdminOperations } from './operations.ts';

/**
 * Domain proof (docs/admin.md#domain-proof): each domain's state, the challenge and where to
 * publish it, the last check; and a check on request. Domains are added and removed with their
 * participant (`domains` of POST/PUT /participants), never here.
 *
 *   GET  /domains[?participant=ID][&state=pending|verified|suspended]   { domains: DomainView[] }
 *   GET  /participants/{id}/domains                                    { participant, domains: DomainView[] }
 *   GET  /participants/{id}/domains/{domain}                           DomainView
 *   POST /participants/{id}/domains/{domain}/check                     DomainView, after the check
 */
export function domainRoutes(router: Router, deps: AdminDeps, ops: AdminOperations): void {
  const { domains } = deps;

  router.get('/domains', async (ctx) => {
    const { participant, state } = ctx.query;
    if (state !== undefined && !DOMAIN_STATES.includes(state as DomainState)) {
      throw new AdminError(400, 'invalid_request', `state: one of ${DOMAIN_STATES.join(', ')}`, { field: 'state' });
    }
    if (participant !== undefined && typeof participant !== 'string') throw new AdminError(400, 'invalid_request', 'participant: one participant id', { field: 'participant' });
    const records = (await domains.list())
      .filter((r) => deps.registry.participant(r.participant)?.config.domains.includes(r.domain))
      .filter((r) => (participant === undefined || r.participant === participant) && (state === undefined || r.state === state))
      .sort((a, b) => a.participant.localeCompare(b.participant) || a.domain.localeCompare(b.domain));
    ctx.body = { domains: records.map(domains.view) };
  });

  router.get('/participants/:id/domains', async (ctx) => {
    const id = ctx.params.id!;
    ctx.body = { participant: id, domains: await ops.domainsOf(id) };
  });

  router.get('/participants/:id/domains/:domain', async (ctx) => {
    ctx.body = domains.view(await ops.domain(ctx.params.id!, ctx.params.domain!, actorOf(ctx)));
  });

  router.post('/participants/:id/domains/:domain/check', async (ctx) => {
    ctx.body = await ops.checkDomain(ctx.params.id!, ctx.params.domain!, actorOf(ctx));
  });
}
