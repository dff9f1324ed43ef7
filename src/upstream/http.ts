import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { request as undiciRequest, type Dispatcher } from 'undici';
import type { CustomFetch, CustomFetchOptions } from 'openid-client';
import { requestContext } from '../observability/index.ts';
import { lookupDispatcher, nonPublicLiteral, NotPublicAddress, publicOnlyDispatcher, type AddressLookup } from './addresses.ts';
import { UpstreamError } from './errors.ts';

/** What a call to the upstream was for; a log field and the key to how a 5xx is read. */
export type EndpointKind = 'discovery' | 'jwks' | 'token' | 'userinfo' | 'other';

export interface UpstreamLogger {
  debug(obj: object, msg?: string): void;
}

/** Bodies larger than this are refused: an IdP answer is a few kilobytes. */
const MAX_BODY_BYTES = 1 << 20;

/** Sums the time spent in upstream calls made inside `measure()`, per login, across awaits. */
const spent = new AsyncLocalStorage<{ ms: number }>();

/** One call to an upstream, as reported to an observer (metrics, breaker, tracing: health.ts). */
export interface UpstreamCall {
  participant: string;
  endpoint: EndpointKind;
  method: string;
  /** Without its query string. */
  url: string;
}

/** Why a call failed; absent when the upstream answered 2xx/3xx. Bounded: a metric label. */
export type UpstreamFailureReason = 'timeout' | 'network' | 'http_5xx' | 'http_4xx' | 'body_too_large';

export interface UpstreamCallResult {
  durationMs: number;
  status?: number;
  reason?: UpstreamFailureReason;
}

export interface UpstreamCallObserver {
  /** Called as a call starts; the function it returns, as it ends (after the body was read). */
  start(call: UpstreamCall): (result: UpstreamCallResult) => void;
}

/** The observer of the calls made inside `observeUpstreamCalls()`, across awaits. */
const observers = new AsyncLocalStorage<UpstreamCallObserver>();

/** Runs `fn` so that every upstream call it makes (background refreshes it starts included) is reported to `observer`. */
export function observeUpstreamCalls<T>(observer: UpstreamCallObserver, fn: () => T): T {
  return observers.run(observer, fn);
}

export async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; durationMs: number }> {
  const acc = { ms: 0 };
  const result = await spent.run(acc, fn);
  return { result, durationMs: Math.round(acc.ms) };
}

/** Runs `fn` so that its upstream calls are not counted in the current `measure()` (background work). */
export function unmeasured<T>(fn: () => T): T {
  return spent.exit(fn);
}

/**
 * The one way the connector talks to an upstream: every call gets its own timeout (covering the
 * body too), is logged at debug level with its endpoint and duration (never its query string,
 * body or headers), and has its body size capped. Connection failures and timeouts become
 * UpstreamErrors here, so the stage that made the call does not have to guess.
 */
export class UpstreamHttp {
  readonly #participantId: string;
  readonly #timeoutMs: number;
  readonly #logger: UpstreamLogger | undefined;
  /** Only public addresses (addresses.ts), unless the participant allows its private network. */
  readonly #dispatcher: ReturnType<typeof publicOnlyDispatcher> | undefined;
  readonly #publicOnly: boolean;
  readonly #maxBodyBytes: number;
  #endpoints = new Map<string, EndpointKind>();

  /**
   * `lookup` finds a host's addresses instead of dns.lookup (domain proof's configured resolvers);
   * `maxBodyBytes` lowers the 1 MiB cap on a response body.
   */
  constructor(opts: { participantId: string; timeoutMs: number; logger?: UpstreamLogger | undefined; allowPrivateNetwork?: boolean; lookup?: AddressLookup; maxBodyBytes?: number }) {
    this.#participantId = opts.participantId;
    this.#timeoutMs = opts.timeoutMs;
    this.#logger = opts.logger;
    this.#publicOnly = opts.allowPrivateNetwork !== true;
    this.#maxBodyBytes = Math.min(opts.maxBodyBytes ?? MAX_BODY_BYTES, MAX_BODY_BYTES);
    this.#dispatcher = this.#publicOnly ? publicOnlyDispatcher(opts.lookup) : opts.lookup ? lookupDispatcher(opts.lookup) : undefined;
  }

  /** Teaches the logger which URL is which endpoint (from the current discovery document). */
  setEndpoints(endpoints: Partial<Record<EndpointKind, string | undefined>>): void {
    const map = new Map<string, EndpointKind>();
    for (const [kind, url] of Object.entries(endpoints) as Array<[EndpointKind, string | undefined]>) {
      if (url) map.set(stripQuery(url), kind);
    }
    this.#endpoints = map;
  }

  kindOf(url: string): EndpointKind {
    const bare = stripQuery(url);
    if (bare.endsWith('/.well-known/openid-configuration') || bare.includes('/.well-known/oauth-authorization-server')) return 'discovery';
    return this.#endpoints.get(bare) ?? 'other';
  }

  /** For openid-client's `customFetch`. */
  readonly fetch: CustomFetch = (url: string, options: CustomFetchOptions) => this.request(url, options, this.kindOf(url));

  async request(url: string, init: Partial<CustomFetchOptions> & { method: string }, kind: EndpointKind): Promise<Response> {
    const started = performance.now();
    // A timer cleared once the call is over, not AbortSignal.timeout: that one's timer runs its full
    // course after every call and then aborts its signal (a DOMException and an abort event each).
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException(`no answer within ${this.#timeoutMs} ms`, 'TimeoutError')), this.#timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    let status: number | undefined;
    let failure: string | undefined;
    let reason: UpstreamFailureReason | undefined;
    const end = observers.getStore()?.start({ participant: this.#participantId, endpoint: kind, method: init.method, url: stripQuery(url) });
    try {
      let response: Response;
      try {
        // addresses.ts: the endpoints come from the IdP's discovery document; only public addresses are
        // called. A name is checked as it is connected to (the dispatcher), a literal address here.
        const literal = this.#publicOnly ? nonPublicLiteral(new URL(url)) : undefined;
        if (literal) throw new NotPublicAddress(literal, [literal]);
        // undici's request(), not fetch(): the same HTTP client without the Fetch machinery (Request
        // objects, web streams, a fetch controller), which more than doubled the CPU of a call (a
        // token request and its answer: about 520 against 220 µs, client and server together, on a
        // loaded 2-core machine). It follows no redirect (as fetch's redirect: 'manual' did).
        const answer = await undiciRequest(url, {
          method: init.method as Dispatcher.HttpMethod,
          ...outgoing(init),
          signal,
          ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
        });
        status = answer.statusCode;
        // Read the body here, under the same timeout, with a cap; hand openid-client a buffered copy.
        const body = await readCapped(answer.headers, answer.body, this.#maxBodyBytes);
        response = new Response(nullBodyStatus(status) ? null : body, {
          status,
          statusText: answer.statusText,
          headers: incomingHeaders(answer.headers),
        });
      } catch (err) {
        const notPublic = err instanceof NotPublicAddress ? err : (err as { cause?: unknown } | null)?.cause instanceof NotPublicAddress ? ((err as { cause: NotPublicAddress }).cause) : undefined;
        if (notPublic) {
          failure = 'not a public address';
          throw new UpstreamError('discovery_invalid', `${kind}: ${origin(url)} is at ${notPublic.addresses.join(', ')}, not a public address (allowPrivateNetwork is off)`, {
            participantId: this.#participantId,
          });
        }
        if (err instanceof BodyTooLarge) {
          failure = 'body too large';
          reason = 'body_too_large';
          // Not an answer Concord can use: the IdP is not compatible (or not set up right), not down.
          const code = kind === 'discovery' || kind === 'jwks' ? 'discovery_invalid' : 'upstream_misconfigured';
          throw new UpstreamError(code, `${kind}: ${err.message}`, { participantId: this.#participantId });
        }
        if (timeout.signal.aborted || (err instanceof Error && err.name === 'TimeoutError')) {
          failure = 'timeout';
          reason = 'timeout';
          throw new UpstreamError('upstream_timeout', `${kind}: no answer from ${origin(url)} within ${this.#timeoutMs} ms`, {
            cause: err,
            participantId: this.#participantId,
          });
        }
        failure = networkReason(err);
        reason = 'network';
        throw new UpstreamError('upstream_unreachable', `${kind}: cannot reach ${origin(url)} (${failure})`, {
          cause: err,
          participantId: this.#participantId,
        });
      }
      if (status >= 500) reason = 'http_5xx';
      else if (status >= 400) reason = 'http_4xx';
      // A server error on discovery or the JWKS means the IdP is down, not that it is misconfigured.
      if (status >= 500 && (kind === 'discovery' || kind === 'jwks')) {
        failure = `http ${status}`;
        throw new UpstreamError('upstream_unreachable', `${kind}: ${origin(url)} answered HTTP ${status}`, { participantId: this.#participantId });
      }
      return response;
    } finally {
      clearTimeout(timer);
      const durationMs = performance.now() - started;
      const acc = spent.getStore();
      if (acc) acc.ms += durationMs;
      end?.({ durationMs, ...(status !== undefined ? { status } : {}), ...(reason ? { reason } : {}) });
      // Inside a request, its logger: the line carries the request id (and trace id) like every other line of it.
      const logger = this.#logger && (requestContext.getStore()?.log ?? this.#logger);
      logger?.debug(
        {
          participant: this.#participantId,
          endpoint: kind,
          method: init.method,
          url: stripQuery(url),
          ...(status !== undefined ? { status } : {}),
          ...(failure ? { failure } : {}),
          durationMs: Math.round(durationMs * 10) / 10,
        },
        'upstream call',
      );
    }
  }
}

class BodyTooLarge extends Error {}

function nullBodyStatus(status: number): boolean {
  return status === 101 || status === 204 || status === 205 || status === 304;
}

async function readCapped(headers: IncomingHttpHeaders, body: Readable, max: number): Promise<Uint8Array> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    discard(body);
    throw new BodyTooLarge(`response body of ${declared} bytes is larger than ${max}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > max) {
      discard(body);
      throw new BodyTooLarge(`response body larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** Stops reading an answer's body and closes its connection (the abort that undici reports is expected). */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * The headers and body of a call as undici's request() takes them, with what fetch() adds when a
 * caller leaves it out (`accept`, `user-agent`, the content type of a string or form body), so a
 * partner IdP sees the requests it saw before.
 */
function outgoing(init: Partial<CustomFetchOptions>): { headers: Record<string, string>; body?: string | Uint8Array | Readable } {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(init.headers ?? {})) headers[name.toLowerCase()] = value;
  headers['accept'] ??= '*/*';
  headers['user-agent'] ??= 'node';
  const body = init.body;
  if (body === undefined || body === null) return { headers };
  if (typeof body === 'string') {
    headers['content-type'] ??= 'text/plain;charset=UTF-8';
    return { headers, body };
  }
  if (body instanceof URLSearchParams) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    return { headers, body: body.toString() };
  }
  if (body instanceof ArrayBuffer) return { headers, body: new Uint8Array(body) };
  if (body instanceof Uint8Array) return { headers, body };
  return { headers, body: Readable.fromWeb(body as NodeReadableStream) };
}

/** An answer's headers (undici: lower-case names, repeated ones as arrays) as a Fetch Headers. */
function incomingHeaders(raw: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.append(name, value);
  }
  return headers;
}

export function stripQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

/** ECONNREFUSED, ENOTFOUND, ... from undici's error or its cause; never the message of a body. */
function networkReason(err: unknown): string {
  let current: unknown = err;
  for (let i = 0; i < 5 && current; i++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message.slice(0, 100) : 'network error';
}
