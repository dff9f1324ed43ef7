import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { context, propagation, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { Context, Next } from 'koa';
import { methodLabel, routeLabel, statusClassLabel } from './labels.ts';
import type { Logger } from './logger.ts';
import { safeUrl } from './logger.ts';
import type { Metrics } from './metrics.ts';

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

const REFERENCE_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const REFERENCE_LENGTH = 10;
// Every request without an X-Request-Id needs one: random bytes drawn 4 KiB at a time cost a
// fraction of a call to the CSPRNG per request (measurable on /token, bench/results.md).
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** A short id people can read out over the phone: 10 characters from 31 unambiguous ones. */
export function newReference(): string {
  if (poolOffset + REFERENCE_LENGTH > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  let out = '';
  for (let i = 0; i < REFERENCE_LENGTH; i++) out += REFERENCE_ALPHABET[pool[poolOffset + i]! % REFERENCE_ALPHABET.length];
  poolOffset += REFERENCE_LENGTH;
  return out;
}

/**
 * A request's context (requestContext's store), its child logger made on first use: a pino child
 * serializes its bindings (through the redaction paths) when made, and most requests (every token)
 * log nothing but the request line, which then names the id itself.
 */
class RequestScope implements RequestContext {
  readonly requestId: string;
  readonly traceId: string | undefined;
  readonly #root: Logger;
  #log: Logger | undefined;
  constructor(root: Logger, requestId: string, traceId: string | undefined) {
    this.#root = root;
    this.requestId = requestId;
    this.traceId = traceId;
  }
  get log(): Logger {
    return (this.#log ??= this.#root.child(this.traceId === undefined ? { requestId: this.requestId } : { requestId: this.requestId, traceId: this.traceId }));
  }
  /** The child logger, if something made it. */
  get made(): Logger | undefined {
    return this.#log;
  }
}

/**
 * Koa's `ctx.state` of a logged request: `log` is the request's logger, made on first read
 * (RequestScope). A class, so the getter is its prototype's and every state has one shape.
 */
class RequestState {
  readonly #scope: RequestScope;
  constructor(scope: RequestScope) {
    this.#scope = scope;
  }
  get log(): Logger {
    return this.#scope.log;
  }
}

export interface RequestLoggingOptions {
  /** Time every request into concord_http_request_duration_seconds (public listener). */
  metrics?: Pick<Metrics, 'httpDuration'>;
  /** A server span per request (only when tracing is on: see tracing.ts). */
  tracer?: Tracer;
}

/**
 * One log line per request with its id (taken from X-Request-Id when sane, else made up) and
 * echoed in the response. Query values that are secrets never reach the line. Every line logged
 * while serving the request (upstream and store calls too, through `requestContext`) carries the id.
 */
export function requestLogging(root: Logger, options: RequestLoggingOptions = {}) {
  const { metrics, tracer } = options;
  return async function logRequest(ctx: Context, next: Next) {
    const header = ctx.get('x-request-id');
    const requestId = VALID_ID.test(header) ? header : newReference();
    const started = performance.now();
    const span = tracer?.startSpan(
      ctx.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path, 'concord.request_id': requestId } },
      propagation.extract(context.active(), ctx.headers),
    );
    const scope = new RequestScope(root, requestId, span?.spanContext().traceId);
    ctx.state = Object.assign(new RequestState(scope), ctx.state);
    ctx.state.requestId = requestId;
    if (!ctx.res.headersSent) ctx.res.setHeader('X-Request-Id', requestId);
    const serve = () => requestContext.run(scope, next);
    let thrown: number | undefined;
    try {
      await (span ? context.with(trace.setSpan(context.active(), span), serve) : serve());
    } catch (err) {
      // Koa answers an error thrown past this point with its status, or 500.
      const s = (err as { status?: unknown } | null)?.status;
      thrown = typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
      throw err;
    } finally {
      const elapsed = performance.now() - started;
      const status = thrown ?? ctx.status;
      const url = safeUrl(ctx.originalUrl);
      const ms = Math.round(elapsed * 10) / 10;
      const child = scope.made;
      // Without a child, the line names the id (and trace) itself: the same keys in the same order.
      const line =
        child !== undefined
          ? { method: ctx.method, url, status, ms }
          : scope.traceId === undefined
            ? { requestId, method: ctx.method, url, status, ms }
            : { requestId, traceId: scope.traceId, method: ctx.method, url, status, ms };
      const log = child ?? root;
      if (status >= 500) log.error(line, 'request');
      else log.info(line, 'request');
      if (metrics || span) {
        const route = routeLabel(ctx as unknown as Parameters<typeof routeLabel>[0]);
        metrics?.httpDuration.observe({ route, method: methodLabel(ctx.method), status: statusClassLabel(status) }, elapsed / 1000);
        if (span) {
          span.updateName(`${ctx.method} ${route}`);
          span.setAttribute('http.route', route);
          span.setAttribute('http.response.status_code', status);
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        }
      }
    }
  };
}
