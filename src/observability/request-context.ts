import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from './logger.ts';
import { safeUrl } from './logger.ts';

export interface RequestContext {
  requestId: string;
  log: Logger;
}

/** Lets code far from the Koa context (upstream calls, store calls) log with the request's id. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The logger of the request being served, or the root logger outside one. */
export function currentLogger(root: Logger): Logger {
  return requestContext.getStore()?.log ?? root;
}

const VALID_ID = /^[\w.:-]{1,128}$/;

/** A short id people can read out over the phone: 10 base32 characters. */
export function newReference(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(10);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/**
 * One log line per request with its id (taken from X-Request-Id when sane, else made up) and
 * echoed in the response. Query values that are secrets never reach the line.
 */
export function requestLogging(root: Logger) {
  return async function logRequest(ctx: Context, next: Next) {
    const header = ctx.get('x-request-id');
    const requestId = VALID_ID.test(header) ? header : newReference();
    const log = root.child({ requestId });
    ctx.state.requestId = requestId;
    ctx.state.log = log;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await requestContext.run({ requestId, log }, next);
    } finally {
      const line = {
        method: ctx.method,
        url: safeUrl(ctx.originalUrl),
        status: ctx.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      if (ctx.status >= 500) log.error(line, 'request');
      else log.info(line, 'request');
    }
  };
}
