import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';

/** A bearer token of the admin API and the label the audit log records for it (never the token). */
export interface AdminToken {
  label: string;
  token: string;
}

// Hashing first gives both sides the same length, so the comparison time says nothing about the token.
const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

function refuse(ctx: Context, status: number, error: string, message: string) {
  ctx.status = status;
  if (status === 401) ctx.set('WWW-Authenticate', 'Bearer realm="concord-admin"');
  ctx.body = { error, message };
}

/**
 * Every /admin/v1 call carries `Authorization: Bearer <token>`. With no token configured the admin
 * API is off: every call is refused, rather than open.
 */
export function adminAuth(tokens: AdminToken[]) {
  const known = tokens.map((t) => ({ label: t.label, digest: digest(t.token) }));
  return async function authenticate(ctx: Context, next: Next) {
    if (known.length === 0) {
      return refuse(ctx, 403, 'admin_disabled', 'the admin API is disabled: set CONCORD_ADMIN_TOKEN to enable it');
    }
    const match = /^Bearer[ ]+([\x21-\x7E]+)\s*$/i.exec(ctx.get('authorization'));
    if (!match) return refuse(ctx, 401, 'unauthorized', 'send Authorization: Bearer <CONCORD_ADMIN_TOKEN>');
    const presented = digest(match[1]!);
    // Compare against every token so the time taken does not reveal which one matched.
    let label: string | undefined;
    for (const t of known) if (timingSafeEqual(presented, t.digest) && label === undefined) label = t.label;
    if (label === undefined) {
      ctx.state.log?.warn('admin call with a wrong bearer token');
      return refuse(ctx, 401, 'unauthorized', 'the bearer token is not valid');
    }
    ctx.state.actor = label;
    await next();
  };
}
