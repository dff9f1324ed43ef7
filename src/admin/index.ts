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
