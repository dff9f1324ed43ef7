import type { Store } from '../store/index.ts';
import { SECRET_PATHS } from './stored.ts';

const LOG = 'audit';
const MASK = '[redacted]';

export type AuditObjectType = 'participant' | 'client' | 'keys' | 'domain' | 'session' | 'user';

/** One admin change. Kept in the store's append-only log (on Redis it outlives restarts). */
export interface AuditRecord {
  /** ISO 8601 */
  at: string;
  /** Label of the token used (`admin` for CONCORD_ADMIN_TOKEN), never the token. */
  actor: string;
  /**
   * e.g. participant.create, participant.update, participant.disable, participant.delete, participant.revoke_sessions, client.create, keys.rotate;
   * domain.claim, domain.release, domain.verify, domain.proof_missing, domain.proof_restored, domain.suspend (actor `domain-proof` when the timer did it);
   * session.end, user.revoke_sessions
   */
  action: string;
  object: { type: AuditObjectType; id: string };
  /** Changed fields by dotted path; write-only fields show as [redacted] on both sides when they changed. */
  diff?: Record<string, { from?: unknown; to?: unknown }>;
  /** What the action did beyond the object itself (sessions revoked, the new key). */
  result?: Record<string, unknown>;
  requestId?: string;
}

export interface AuditLog {
  record(entry: Omit<AuditRecord, 'at'>): Promise<number>;
  /** Newest first; `before` is the `seq` of the last entry of the previous page. */
  page(opts: { before?: number; limit: number }): Promise<Array<AuditRecord & { seq: number }>>;
}

export function createAuditLog(store: Store): AuditLog {
  return {
    record: (entry) => store.append<AuditRecord>(LOG, { at: new Date().toISOString(), ...entry }),
    async page(opts) {
      const entries = await store.page<AuditRecord>(LOG, opts);
      return entries.map(({ seq, entry }) => ({ seq, ...entry }));
    },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Leaves by dotted path. Arrays of plain values (domains, scopes, redirect_uris) stay one leaf so
 * the diff reads as "was [a], is [a, b]"; arrays of objects (mapping rules) go down by index.
 */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  const descend = isPlainObject(value) ? Object.entries(value) : Array.isArray(value) && value.some((v) => isPlainObject(v) || Array.isArray(v)) ? value.map((v, i) => [String(i), v] as const) : undefined;
  if (!descend) {
    if (value !== undefined) out.set(prefix, value);
    return out;
  }
  for (const [key, child] of descend) flatten(child, prefix ? `${prefix}.${key}` : key, out);
  return out;
}

/** The fields that differ between two versions (either may be absent), secrets masked. */
export function diffOf(before: unknown, after: unknown): AuditRecord['diff'] {
  const a = flatten(before, '', new Map());
  const b = flatten(after, '', new Map());
  const diff: NonNullable<AuditRecord['diff']> = {};
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const from = a.get(path);
    const to = b.get(path);
    if (JSON.stringify(from) === JSON.stringify(to)) continue;
    const secret = SECRET_PATHS.has(path);
    diff[path] = {
      ...(from === undefined ? {} : { from: secret ? MASK : from }),
      ...(to === undefined ? {} : { to: secret ? MASK : to }),
    };
  }
  return diff;
}
