import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { ConnectorPool, Registry } from '../participants/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { Store } from '../store/index.ts';
import { LogoutTokenError, UpstreamError, type LogoutTokenRejection } from '../upstream/index.ts';

/** What became of one back-channel logout request from a partner: a metric label and a log field. */
export type UpstreamLogoutOutcome = 'accepted' | LogoutTokenRejection | 'no_token' | 'unknown_participant' | 'unsupported' | 'upstream_unavailable';

export interface UpstreamLogoutDeps {
  registry: Registry;
  connectors: ConnectorPool;
  sessions: Sessions;
  store: Store;
  observe?: (participantId: string | undefined, outcome: UpstreamLogoutOutcome) => void;
}

/** Seconds a logout token's `jti` is remembered beyond the time it could be accepted (clock skew). */
const REPLAY_MARGIN_S = 60;

/**
 * POST {issuer}/broker/{participantId}/backchannel-logout: a partner's IdP says one of its sessions
 * ended (OIDC Back-Channel Logout 1.0). The `logout_token` is validated by the participant's
 * connector as section 2.6 says (signature by the upstream's keys, `iss`, `aud` = Concord's client id
 * there, `iat`/`exp`, the back-channel `events` member, `sub` and/or `sid`, no `nonce`), its `jti` must
 * not have been seen before (a replay cache in the store, per participant), and then the Concord
 * sessions of that upstream session (or of that subject) end: their services are sent logout tokens.
 *
 * Answers (2.8): 200 with no body when the notice was accepted (also when no session matched: it may
 * have ended already); 400 `{"error":"invalid_request"}` when it is refused, with the reason in the
 * log (never what the token said); 503 with Retry-After when the upstream's keys cannot be had to
 * check it (the IdP may retry). A machine endpoint: JSON errors, no pages, no cookies.
 */
export function upstreamBackchannelLogout(deps: UpstreamLogoutDeps) {
  const { registry, connectors, sessions, store } = deps;
  const observe = deps.observe ?? (() => {});

  const refuse = (ctx: Context, participantId: string | undefined, outcome: UpstreamLogoutOutcome, status: number, description: string, cause?: unknown) => {
    observe(participantId, outcome);
    ctx.state.log?.warn({ participant: participantId, outcome, reason: cause instanceof Error ? cause.message : undefined }, 'upstream back-channel logout refused');
    ctx.status = status;
    ctx.body = { error: status === 503 ? 'temporarily_unavailable' : 'invalid_request', error_description: description };
  };

  return async function backchannelLogout(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const participantId = ctx.params.participantId!;
    const participant = registry.participant(participantId);
    if (!participant) return refuse(ctx, undefined, 'unknown_participant', 404, 'no such participant');
    const connector = connectors.get(participant);
    if (!connector.verifyLogoutToken) return refuse(ctx, participantId, 'unsupported', 400, 'this participant’s protocol has no back-channel logout');

    // The edge check (src/http/request-limits.ts) parsed and bounded the form.
    const form = (ctx.state.checked as { form?: Map<string, string[]> } | undefined)?.form;
    const values = form?.get('logout_token');
    if (!ctx.is('application/x-www-form-urlencoded') || values?.length !== 1 || !values[0]) {
      return refuse(ctx, participantId, 'no_token', 400, 'a logout_token is required (application/x-www-form-urlencoded)');
    }

    let notice;
    try {
      notice = await connector.verifyLogoutToken(values[0]);
    } catch (error) {
      if (error instanceof LogoutTokenError) return refuse(ctx, participantId, error.reason, 400, 'the logout token is not valid', error);
      if (error instanceof UpstreamError) {
        ctx.set('Retry-After', '30');
        return refuse(ctx, participantId, 'upstream_unavailable', 503, 'the logout token cannot be checked now (the sign-in service’s keys are unavailable)', error);
      }
      throw error;
    }

    // 2.6 #8: a logout token is used once; remembered as long as it could be accepted.
    const ttl = Math.max(1, notice.acceptableUntil - Math.floor(Date.now() / 1000)) + REPLAY_MARGIN_S;
    const jti = createHash('sha256').update(notice.id, 'utf8').digest('base64url');
    if (!(await store.claimTemp(`upstream-logout-jti:${participantId}:${jti}`, 1, ttl))) {
      return refuse(ctx, participantId, 'replayed', 400, 'the logout token was used before');
    }

    const ended = await sessions.endByUpstream({
      participantId,
      ...(notice.subject !== undefined ? { subject: notice.subject } : {}),
      ...(notice.sessionId !== undefined ? { sessionId: notice.sessionId } : {}),
    });
    observe(participantId, 'accepted');
    ctx.state.log?.info({ participant: participantId, by: notice.sessionId !== undefined ? 'sid' : 'sub', sessions: ended.length }, 'upstream back-channel logout: sessions ended');
    ctx.status = 200;
    ctx.body = '';
  };
}
