import type { Context, Next } from 'koa';
import { DomainBusyError } from '../domain-proof/index.ts';
import { ConcordError } from '../errors.ts';
import { MappingError, type MappingIssue } from '../mapping/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import { StoreUnavailableError } from '../store/index.ts';

/** One field-level problem in a request, as the API reports it. */
export interface FieldIssue {
  field: string;
  message: string;
}

/**
 * An admin API refusal. The body is `{ error, message, field?, issues? }`: `error` is stable for
 * programs, `message` names the field for people.
 */
export class AdminError extends ConcordError {
  readonly field: string | undefined;
  readonly issues: Array<FieldIssue | MappingIssue> | undefined;
  /** Extra stable detail, e.g. the upstream error code behind `upstream_invalid`. */
  readonly reason: string | undefined;

  constructor(status: number, code: string, message: string, extra: { field?: string; issues?: Array<FieldIssue | MappingIssue>; reason?: string; cause?: unknown } = {}) {
    super(code, message, { status, expose: true, cause: extra.cause });
    this.field = extra.field;
    this.issues = extra.issues;
    this.reason = extra.reason;
  }
}

export const notFound = (what: string, id: string) => new AdminError(404, 'not_found', `no ${what} "${id}"`);

/** Where a mapping issue sits inside a participant document. */
export function mappingField(issue: MappingIssue): string {
  const base = issue.index === null ? 'mapping' : `mapping.rules[${issue.index}]`;
  return issue.field ? `${base}.${issue.field}` : base;
}

function toAdminError(error: unknown): AdminError | undefined {
  if (error instanceof AdminError) return error;
  if (error instanceof MappingError) {
    const first = error.issues[0];
    return new AdminError(422, 'invalid_mapping', error.message.replace(/^invalid mapping:\n\s*/, 'invalid mapping: ').replace(/\n\s*/g, '; '), {
      ...(first ? { field: mappingField(first) } : {}),
      issues: error.issues,
    });
  }
  if (error instanceof DomainConflictError) return new AdminError(409, 'domain_conflict', error.message, { field: 'domains' });
  if (error instanceof DomainBusyError) return new AdminError(409, error.code, error.message);
  return undefined;
}

/**
 * Turns every failure under /admin/v1 into the JSON error shape. Nothing internal leaks: a 5xx
 * says only "internal error" and is logged with the request id.
 */
export function adminErrors() {
  return async function catchAdminErrors(ctx: Context, next: Next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AdminError(404, 'not_found', `no admin route ${ctx.method} ${ctx.path}`);
    } catch (error) {
      const known = toAdminError(error);
      const storeDown = error instanceof StoreUnavailableError || (error as { code?: string } | null)?.code === 'store_unavailable';
      if (known) {
        ctx.status = known.status;
        ctx.body = {
          error: known.code,
          message: known.message,
          ...(known.field === undefined ? {} : { field: known.field }),
          ...(known.issues === undefined ? {} : { issues: known.issues }),
          ...(known.reason === undefined ? {} : { reason: known.reason }),
        };
        ctx.state.log?.info({ error: known.code, field: known.field }, 'admin request refused');
      } else if (storeDown) {
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: 'store_unavailable', message: 'the store is unavailable; nothing was changed or the change is incomplete' };
        ctx.state.log?.error({ err: error }, 'admin request failed: store unavailable');
      } else {
        ctx.status = 500;
        ctx.body = { error: 'server_error', message: 'internal error' };
        ctx.state.log?.error({ err: error }, 'admin request failed');
      }
    }
  };
}
