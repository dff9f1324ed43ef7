/**
 * The admin API (internal listener), the audit log, and the sync that keeps every instance's
 * participants and clients in step with the store.
 */
export { adminRouter } from './router.ts';
export type { AdminToken } from './auth.ts';
export type { AdminDeps } from './context.ts';
export { createConfigSync, type ConfigSync, type ConfigSyncOptions } from './sync.ts';
export { createAuditLog, type AuditLog, type AuditRecord } from './audit.ts';
export { upstreamCheck, type UpstreamCheck } from './upstream-check.ts';
export { adminOperations, RESERVED_CLIENT_IDS, type AdminOperations, type ParticipantStatusView, type DryRunResult, type EndedSessionView } from './operations.ts';
export { AdminError, mappingField, type FieldIssue } from './errors.ts';
export { actorOf } from './context.ts';
export { sessionReads, type SessionReads, type SessionView, type UserView } from './routes-sessions.ts';
