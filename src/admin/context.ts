import type { Context } from 'koa';
import type { ConcordSettings } from '../config/index.ts';
import type { Actor, DomainProof } from '../domain-proof/index.ts';
import type { KeyManager } from '../keys/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Registry } from '../participants/index.ts';
import type { AccountStore } from '../provider/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamStatus } from '../upstream/index.ts';
import type { AuditLog } from './audit.ts';
import type { ConfigSync } from './sync.ts';
import type { UpstreamCheck } from './upstream-check.ts';

/** What the admin routes need; built once in app.ts. */
export interface AdminDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  sync: ConfigSync;
  audit: AuditLog;
  domains: DomainProof;
  keys: KeyManager;
  accounts: AccountStore;
  sessions: Sessions;
  checkUpstream: UpstreamCheck;
  /** What the last check of a participant's upstream found (undefined: not tracked: disabled, or not checked yet). */
  upstreamStatus: (participantId: string) => UpstreamStatus | undefined;
  log: Logger;
}

/** Who makes this request's changes, for audit entries written below the route (domain proof). */
export function actorOf(ctx: Context): Actor {
  return { actor: String(ctx.state.actor ?? 'unknown'), ...(typeof ctx.state.requestId === 'string' ? { requestId: ctx.state.requestId } : {}) };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A PUT body without the write-only secret keeps the stored one (so GET, edit, PUT works);
 * the `...Set` flag that GET returns is dropped rather than refused.
 */
export function keepParticipantSecret(input: unknown, stored: { upstream: { type: string; clientSecret?: string | undefined } }): unknown {
  if (!isObject(input)) return input;
  const { status: _status, registration: _registration, ...body } = input; // GET's read-only upstream status and registration
  if (!isObject(body.upstream)) return body;
  const { clientSecretSet: _flag, ...upstream } = body.upstream;
  const secret = stored.upstream.clientSecret;
  const keep = secret !== undefined && upstream.type === stored.upstream.type && !('clientSecret' in upstream) && !('clientSecretEnv' in upstream);
  return { ...body, upstream: keep ? { ...upstream, clientSecret: secret } : upstream };
}

export function keepClientSecret(body: unknown, stored: { client_secret?: string | undefined } | undefined): unknown {
  if (!isObject(body)) return body;
  const { client_secret_set: _flag, ...rest } = body;
  const secret = stored?.client_secret;
  return secret !== undefined && !('client_secret' in rest) ? { ...rest, client_secret: secret } : rest;
}

/** Drops the `...Set` flags and the read-only `status` and `registration` of a document copied from a GET (POST of an exported participant). */
export const withoutFlags = (body: unknown): unknown => {
  if (!isObject(body)) return body;
  const { client_secret_set: _c, status: _s, registration: _r, ...rest } = body;
  if (!isObject(rest.upstream)) return rest;
  const { clientSecretSet: _p, ...upstream } = rest.upstream;
  return { ...rest, upstream };
};

export const idIn = (body: unknown, key: string): string | undefined => (isObject(body) && typeof body[key] === 'string' ? body[key] : undefined);
