import type { Adapter, AdapterPayload, Store } from '../store/index.ts';

/**
 * What is remembered of a sign-in after oidc-provider has forgotten its interaction, so that Back
 * (or a bookmark) to its pages leads on to the service instead of a scary "expired": its service,
 * and how it ended. Kept under the interaction's uid. (A revisit of the upstream's callback URL
 * finds the sign-in by the mark its taken pending login leaves: routes.ts TakenLogin.)
 */
export interface InteractionTrail {
  clientId: string;
  /** How the sign-in ended; absent while it goes on. */
  ended?: 'signed_in' | 'cancelled';
}
export const trailKey = (uid: string) => `interaction-trail:${uid}`;
/** A sign-in's uid under its upstream state: written by earlier versions (now the taken pending login's mark says it), read until those expire. */
export const stateTrailKey = (state: string) => `interaction-trail-state:${state}`;
/**
 * How long Back to a finished sign-in still says where it went (seconds): an hour, the time in which
 * a person goes Back or revisits a tab. Written for every sign-in, so it is not kept for a day: two
 * small keys per login alive for 24 h weighed as much in Redis as a session's grant.
 */
export const TRAIL_TTL_S = 3600;

/**
 * oidc-provider's Interaction adapter, which writes a new interaction's trail (its service) with the
 * interaction itself, as /auth saves it: one round trip, not one more when its page is first shown.
 * A new interaction is one without a result (interactionResult, and the resume, save it with one).
 * Other models are left as they are.
 *
 * The trail of a sign-in that has not ended lives twice as long as its interaction (at most
 * TRAIL_TTL_S): long enough for the page of an expired sign-in to lead back to its service, while
 * every /auth, whether or not its page is ever shown, leaves nothing that outlives its interaction
 * by much (an embedded store filled by a flood of /auth takes new sign-ins again soon after they
 * expire). How a sign-in ended is kept TRAIL_TTL_S (markEnded in routes.ts).
 */
export function trailingInteractions(inner: Adapter, name: string, store: Store): Adapter {
  if (name !== 'Interaction') return inner;
  return {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const clientId = (payload.params as { client_id?: unknown } | undefined)?.client_id;
      const trail: InteractionTrail | undefined = payload.result === undefined && typeof clientId === 'string' ? { clientId } : undefined;
      const ttl = expiresIn === undefined ? TRAIL_TTL_S : Math.min(TRAIL_TTL_S, 2 * expiresIn);
      // Issued together (one write on the connection); the interaction is saved only once both are.
      return Promise.all([inner.upsert(id, payload, expiresIn), trail ? store.setTemp(trailKey(id), trail, ttl) : undefined]).then(() => undefined);
    },
    find: (id: string) => inner.find(id),
    findByUid: (uid: string) => inner.findByUid(uid),
    findByUserCode: (userCode: string) => inner.findByUserCode(userCode),
    consume: (id: string) => inner.consume(id),
    destroy: (id: string) => inner.destroy(id),
    revokeByGrantId: (grantId: string) => inner.revokeByGrantId(grantId),
  };
}
