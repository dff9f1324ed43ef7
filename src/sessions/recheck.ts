import type { Logger } from '../observability/index.ts';
import type { ActiveParticipant } from '../participants/index.ts';
import type { SessionPolicy } from '../config/index.ts';
import { UpstreamError, type Connector, type UpstreamRefreshState } from '../upstream/index.ts';
import type { SessionStore, SessionRecord } from './records.ts';
import type { SessionEndCause } from './service.ts';

/**
 * What a refresh of a session may do, and why (`outcome`: a metric label and a log field):
 *
 *   continue  fresh         confirmed upstream less than `revalidateAfter` ago: nothing to ask;
 *             confirmed     asked now, the upstream vouched again (claims re-mapped, possibly changed);
 *             unchecked     cannot be asked (no such capability or credential, or `revalidateAfter:
 *                           off`) and younger than `maxAge`;
 *             down_allowed  the upstream could not be asked, `onUpstreamDown: allow`, and the last
 *                           confirmation is younger than `maxStaleness`;
 *   ended     gone          the upstream says the user or grant no longer exists;
 *             rejected      the fresh claims fail the participant's mapping (a `require` rule);
 *             max_age       cannot be asked, and older than `maxAge`;
 *   refused   down_refused  the upstream could not be asked and the policy does not allow going on:
 *                           this refresh fails (503), the session stays.
 */
export type RefreshDecision =
  | { kind: 'continue'; outcome: 'fresh' | 'confirmed' | 'unchecked' | 'down_allowed'; record: SessionRecord }
  | { kind: 'ended'; outcome: 'gone' | 'rejected' | 'max_age'; cause: SessionEndCause }
  | { kind: 'refused'; outcome: 'down_refused' };

export interface RecheckContext {
  records: SessionStore;
  connector: Connector;
  nowSeconds: () => number;
  /** How long a re-check may hold its session's lease (longer than the upstream calls it makes). */
  leaseSeconds: number;
  log: Logger;
  /** Milliseconds between two tries for a lease another request holds. Default 50. */
  pollMs?: number;
}

/**
 * The re-check state worth keeping for a session confirmed at `confirmedAt` (epoch seconds) under its
 * participant's `policy`: undefined when no re-check can ever use it, so a session keeps no bearer
 * token it cannot use (a sealed access token and the claims beside it: about 200 bytes of each live
 * session's long-lived memory). That is when `revalidateAfter` is `off` (recheckForRefresh asks
 * nothing), or when the state holds an access token alone, no refresh token, that expires
 * (`accessTokenExpiresAt`) before the first re-check is due (`confirmedAt + revalidateAfter`): that
 * re-check would find it expired ('unconfirmable', OidcConnector.refresh) and end as one without
 * state does (bounded by `maxAge`). Sessions confirmed while `revalidateAfter` was `off` or longer
 * stay unchecked (bounded by `maxAge`) should it be shortened later.
 */
export function refreshWorthKeeping(refresh: UpstreamRefreshState | undefined, policy: Pick<SessionPolicy, 'revalidateAfter'>, confirmedAt: number): UpstreamRefreshState | undefined {
  if (!refresh || policy.revalidateAfter === 'off') return undefined;
  if (refresh.refreshToken !== undefined) return refresh;
  const expires = refresh.accessTokenExpiresAt;
  if (refresh.accessToken !== undefined && expires !== undefined && expires <= confirmedAt + policy.revalidateAfter) return undefined;
  return refresh;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The refresh-time check of a session against its participant's `session.*` policy (config/schema.ts
 * SessionPolicySchema): asks the upstream again when a re-check is due, one request at a time per
 * session (a lease in the store: the upstream's refresh token is used once, and a second request
 * waiting for the lease reads what the first found).
 */
export async function recheckForRefresh(record: SessionRecord, participant: ActiveParticipant, ctx: RecheckContext): Promise<RefreshDecision> {
  const policy = participant.config.session;
  const { records, connector, log } = ctx;
  const ageOf = (r: SessionRecord) => ctx.nowSeconds() - r.confirmedAt;
  const bounded = (r: SessionRecord): RefreshDecision =>
    ageOf(r) >= policy.maxAge ? { kind: 'ended', outcome: 'max_age', cause: 'max_age' } : { kind: 'continue', outcome: 'unchecked', record: r };
  const upstreamDown = (r: SessionRecord, cause: unknown): RefreshDecision => {
    const allowed = policy.onUpstreamDown === 'allow' && ageOf(r) < policy.maxStaleness;
    log.warn(
      { participant: participant.config.id, policy: policy.onUpstreamDown, confirmedSecondsAgo: ageOf(r), allowed, ...(cause instanceof UpstreamError ? cause.logFields() : { err: cause }) },
      allowed ? 'session re-check: the upstream could not be asked; going on with the claims last confirmed' : 'session re-check: the upstream could not be asked; this refresh is refused',
    );
    return allowed ? { kind: 'continue', outcome: 'down_allowed', record: r } : { kind: 'refused', outcome: 'down_refused' };
  };

  if (policy.revalidateAfter !== 'off' && ageOf(record) < policy.revalidateAfter) return { kind: 'continue', outcome: 'fresh', record };
  if (policy.revalidateAfter === 'off' || !connector.refresh) return bounded(record);

  // One re-check per session at a time; a request that waits reads what the other one found.
  // (Waiting is in real time, whatever clock ages are measured by.)
  const deadline = Date.now() + ctx.leaseSeconds * 1000;
  let held = await records.lock(record.id, ctx.leaseSeconds);
  while (!held && Date.now() < deadline) {
    await sleep(ctx.pollMs ?? 50);
    held = await records.lock(record.id, ctx.leaseSeconds);
  }
  if (!held) return upstreamDown(record, new Error('another re-check of this session did not finish in time'));
  try {
    // The record as it is now (another request may have confirmed it meanwhile) and what asking the
    // upstream needs, in one round trip; the record alone, as the refresh read it (its services
    // added later are read when asked: SessionStore.clientsOf).
    const { record: current, upstream } = await records.withUpstream(record.id, record.stateId);
    if (!current) return { kind: 'ended', outcome: 'gone', cause: 'upstream_revoked' };
    if (ageOf(current) < (policy.revalidateAfter as number)) return { kind: 'continue', outcome: 'fresh', record: current };
    if (!upstream.refresh) return bounded(current);
    let outcome;
    try {
      outcome = await connector.refresh(upstream.refresh);
    } catch (error) {
      if (error instanceof UpstreamError) return upstreamDown(current, error);
      throw error;
    }
    if (outcome.kind === 'gone') {
      log.info({ participant: participant.config.id, reason: outcome.reason }, 'session re-check: the upstream no longer knows the user or the grant');
      return { kind: 'ended', outcome: 'gone', cause: 'upstream_revoked' };
    }
    if (outcome.kind === 'unconfirmable') return bounded(current);
    const mapped = participant.mapping.apply(outcome.identity.claims);
    if (!mapped.ok) {
      log.info({ participant: participant.config.id, code: mapped.code, rule: mapped.ruleIndex }, 'session re-check: the fresh claims fail the mapping');
      return { kind: 'ended', outcome: 'rejected', cause: 'mapping_rejected' };
    }
    const confirmedAt = ctx.nowSeconds();
    const refresh = refreshWorthKeeping(outcome.identity.refresh, policy, confirmedAt);
    await records.confirm(current.id, {
      claims: mapped.claims,
      confirmedAt,
      upstream: {
        ...(outcome.identity.logout ?? upstream.logout ? { logout: outcome.identity.logout ?? upstream.logout! } : {}),
        ...(refresh ? { refresh } : {}),
      },
    });
    return { kind: 'continue', outcome: 'confirmed', record: { ...current, claims: mapped.claims, confirmedAt } };
  } finally {
    await records.unlock(record.id);
  }
}
