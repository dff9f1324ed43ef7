/**
 * Concord sessions: one per upstream login, with what Concord keeps of it (claims, the upstream's
 * session id, what its logout and re-checks need; sealed where secret), checked again at refresh
 * against the participant's `session.*` policy, and ended by one path whatever ends it (a service's
 * logout, the partner's back-channel logout, a failed re-check, an administrator), which tells every
 * service of the session by back-channel logout (a queue in the store, retried with back-off).
 */
export { HeldLoginTaken, Sessions, SESSION_END_CAUSES, type SessionEndCause, type EndedSession, type RevocationReport, type UpstreamSessionTarget, type AccountIndex, type SessionsOptions } from './service.ts';
export { ACCOUNT_MEMBERS, HELD_LOGIN, ofAccountKey } from './records.ts';
export type { SessionRecord, SessionClient, PendingSessionLogin, UpstreamSessionState } from './records.ts';
export { refreshWorthKeeping, type RefreshDecision } from './recheck.ts';
export { LogoutDelivery, type LogoutNotice, type LogoutSender, type LogoutDeliveryOptions } from './delivery.ts';
export { indexingAdapter } from './oidc-index.ts';
