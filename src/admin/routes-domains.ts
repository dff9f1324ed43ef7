import type Router from '@koa/router';
import type { Context } from 'koa';
import { DOMAIN_STATES, type DomainRecord, type DomainState } from '../domain-proof/index.ts';
import { canonicalDomain } from '../domains/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { AdminError, notFound } from './errors.ts';

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
export function domainRoutes(router: Router, deps: AdminDeps): void {
  const { registry, domains } = deps;
  const byName = (a: DomainRecord, b: DomainRecord) => a.participant.localeCompare(b.participant) || a.domain.localeCompare(b.domain);

  /** Records of the domains participants list now (not orphans of an unfinished change). */
  async function claimedRecords(): Promise<DomainRecord[]> {
    return (await domains.list()).filter((record) => registry.participant(record.participant)?.config.domains.includes(record.domain)).sort(byName);
  }

  /** The record of one of the participant's domains; 404 when it does not list it. */
  async function recordOf(ctx: Context): Promise<DomainRecord> {
    const id = ctx.params.id!;
    const active = registry.participant(id);
    if (!active) throw notFound('participant', id);
    const domain = canonicalDomain(ctx.params.domain!);
    if (domain === undefined || !active.config.domains.includes(domain)) throw notFound(`domain of participant "${id}"`, ctx.params.domain!);
    const record = await domains.get(domain);
    if (record && record.participant === id) return record;
    if (record) throw new DomainConflictError(domain, record.participant);
    // Listed without a record (an instance of an older version added it): recorded now, pending.
    const [claimed] = await domains.claim(id, [domain], actorOf(ctx));
    return claimed!;
  }

  router.get('/domains', async (ctx) => {
    const { participant, state } = ctx.query;
    if (state !== undefined && !DOMAIN_STATES.includes(state as DomainState)) {
      throw new AdminError(400, 'invalid_request', `state: one of ${DOMAIN_STATES.join(', ')}`, { field: 'state' });
    }
    if (participant !== undefined && typeof participant !== 'string') throw new AdminError(400, 'invalid_request', 'participant: one participant id', { field: 'participant' });
    const records = (await claimedRecords()).filter((r) => (participant === undefined || r.participant === participant) && (state === undefined || r.state === state));
    ctx.body = { domains: records.map(domains.view) };
  });

  router.get('/participants/:id/domains', async (ctx) => {
    const id = ctx.params.id!;
    const active = registry.participant(id);
    if (!active) throw notFound('participant', id);
    const records = (await claimedRecords()).filter((r) => r.participant === id);
    ctx.body = { participant: id, domains: records.map(domains.view) };
  });

  router.get('/participants/:id/domains/:domain', async (ctx) => {
    ctx.body = domains.view(await recordOf(ctx));
  });

  router.post('/participants/:id/domains/:domain/check', async (ctx) => {
    const record = await recordOf(ctx);
    ctx.body = domains.view(await domains.check(record.domain, actorOf(ctx)));
  });
}
