import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Context, Next } from 'koa';
import { showError } from '../pages/index.ts';
import { isSafeRedirect, type ApplicationType } from '../config/index.ts';
import { routeOf } from './route.ts';

/*
 * The edge check of the public listener: oversized and malformed requests are refused here, before
 * any store, provider or upstream call, with the error the protocol asks for.
 *
 *   request target (path + query) over MAX_URL_CHARS          414 invalid_request
 *   body over MAX_BODY_BYTES (MAX_SAML_BODY_BYTES on the SAML
 *   ACS and SLO; Content-Length, or as it is read)               413 invalid_request
 *   query or form not well-formed: bad %-escape, not UTF-8, raw
 *   non-ASCII in the query, control characters, > MAX_PARAMS      400 invalid_request
 *   on /auth, /request (PAR), /token, introspection, revocation,
 *   the upstream callbacks, the SAML ACS and SLO and the partners'
 *   back-channel logout also: a parameter
 *   given twice (except `resource`), an odd parameter name, a value
 *   over its PARAM_LIMITS entry                                   400 invalid_request
 *
 * Which endpoint a request is for comes from its route (route.ts), as oidc-provider will dispatch it:
 * `/AUTH` and `/token/` are checked as /auth and /token.
 *
 * How the error is told: /token, /request and the partners' back-channel logout (POST
 * /broker/{id}/backchannel-logout: a server, not a browser) answer JSON (`{ error, error_description }`,
 * RFC 6749 5.2; Back-Channel Logout 1.0 2.8). /auth
 * answers as RFC 6749 4.1.2.1 says: a bad or unknown client_id or redirect_uri gets the error page
 * (never a redirect to an unchecked URI); any other bad parameter, with the client's registered
 * redirect_uri, is sent back there as `error=invalid_request` (with `state` when that one is fine,
 * and `iss`). The browser routes (/interaction/*, /broker/*, /session/end*) get the error page; the
 * rest JSON.
 *
 * The form of POST /token, /request and /auth, and of a posted upstream callback (form_post), is
 * read here, before any route touches the store, and handed on as `ctx.state.checked.rawForm`
 * (Concord's routes) and as a request stream that plays the same bytes again (`ctx.req`, which
 * oidc-provider reads itself, with its own limits, exactly as if nothing had read it before). Not
 * `ctx.request.body`: oidc-provider takes that too, but warns on the console about every process's
 * first such request ("already parsed request body detected").
 */

/** Longest request target (path and query) accepted. Node refuses a request head over 16 KB itself (431). */
export const MAX_URL_CHARS = 8 * 1024;
/** Largest request body accepted on the public listener (every form of Concord and oidc-provider is far smaller). */
export const MAX_BODY_BYTES = 32 * 1024;
/**
 * Largest body of a SAML HTTP-POST message (a Response to the ACS, a logout message to the SLO
 * endpoint): an ADFS Response with many group claims, encrypted and base64'd, is tens of kilobytes.
 * The connector bounds the decoded XML itself (upstream/saml/checks.ts MAX_MESSAGE_BYTES).
 */
export const MAX_SAML_BODY_BYTES = 512 * 1024;
/** Most parameters in one query or form. */
export const MAX_PARAMS = 64;
/** Longest value of a parameter not in PARAM_LIMITS, on the protocol endpoints. */
export const DEFAULT_PARAM_CHARS = 2048;

/** Longest value (in characters) of each parameter on /auth, /token and the upstream callbacks. */
export const PARAM_LIMITS: Readonly<Record<string, number>> = {
  client_id: 200,
  state: 512,
  nonce: 512,
  login_hint: 512,
  idp_hint: 512,
  scope: 1024,
  redirect_uri: 2048,
  post_logout_redirect_uri: 2048,
  request_uri: 2048,
  resource: 2048,
  response_type: 64,
  response_mode: 64,
  prompt: 64,
  display: 64,
  max_age: 16,
  code_challenge: 128,
  code_challenge_method: 16,
  code_verifier: 128,
  ui_locales: 256,
  claims_locales: 256,
  acr_values: 512,
  claims: 4096,
  id_token_hint: 4096,
  request: 8192,
  grant_type: 128,
  // Upstream IdPs' codes can be long (Entra's are over a kilobyte); Concord's own are 43 characters.
  code: 2048,
  refresh_token: 2048,
  client_secret: 512,
  client_assertion: 8192,
  client_assertion_type: 128,
  iss: 2048,
  error: 128,
  error_description: 2048,
  error_uri: 2048,
  session_state: 512,
  // SAML bindings 3.4, 3.5: the message (bounded again, decoded, by the connector), RelayState
  // (80 bytes in the spec; Concord's own are 43), the Redirect binding's signature.
  SAMLResponse: MAX_SAML_BODY_BYTES,
  SAMLRequest: MAX_SAML_BODY_BYTES,
  RelayState: 512,
  SigAlg: 128,
  Signature: 2048,
  // OIDC Back-Channel Logout 1.0: a signed JWT, a few hundred bytes to a couple of kilobytes.
  logout_token: 8192,
};

/** Parameters that may be given more than once (RFC 8707 resource indicators). */
const REPEATABLE = new Set(['resource']);
/** JSON and JWT values may carry line breaks and tabs; no value may carry other control characters. */
const MULTILINE = new Set(['claims', 'request']);
const PARAM_NAME = /^[A-Za-z0-9_.~-]{1,64}$/;
const CONTROL = /[\u0000-\u001F\u007F]/;
const CONTROL_EXCEPT_WHITESPACE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const RAW_QUERY = /^[\x21-\x7E]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type Params = Map<string, string[]>;

export class BadRequest extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}

/** Parses `a=1&b=2` strictly: every %-escape well-formed and UTF-8, no control characters. */
export function parseParams(raw: string): Params {
  const params: Params = new Map();
  if (raw === '') return params;
  let count = 0;
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    if (++count > MAX_PARAMS) throw new BadRequest(`more than ${MAX_PARAMS} parameters`);
    const eq = pair.indexOf('=');
    const name = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    if (name === '' || CONTROL.test(name)) throw new BadRequest('a parameter name is malformed');
    if ((MULTILINE.has(name) ? CONTROL_EXCEPT_WHITESPACE : CONTROL).test(value)) throw new BadRequest(`${printable(name)} contains control characters`);
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}

/**
 * The parameters that decide where an /auth error may go, from a request that failed the check:
 * each value as parseParams would give it, or null when that value itself is bad.
 */
function lenientParams(raw: string): Map<string, Array<string | null>> {
  const params = new Map<string, Array<string | null>>();
  for (const pair of raw.split('&').slice(0, MAX_PARAMS * 4)) {
    const eq = pair.indexOf('=');
    let name: string;
    let value: string | null;
    try {
      name = decode(eq === -1 ? pair : pair.slice(0, eq));
    } catch {
      continue;
    }
    try {
      value = eq === -1 ? '' : decode(pair.slice(eq + 1));
      if (CONTROL.test(value)) value = null;
    } catch {
      value = null;
    }
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw new BadRequest('a parameter is not well-formed UTF-8 percent-encoding');
  }
}

/** A parameter name, safe to put into an error description. */
const printable = (name: string) => (PARAM_NAME.test(name) ? name : 'a parameter');

/** The protocol endpoints' rules on top of well-formedness: no repeats, known shapes, bounded values. */
export function checkProtocolParams(params: Params): void {
  for (const [name, values] of params) {
    if (!PARAM_NAME.test(name)) throw new BadRequest('a parameter name is malformed');
    if (values.length > 1 && !REPEATABLE.has(name)) throw new BadRequest(`${name} must not be provided twice`);
    const limit = PARAM_LIMITS[name] ?? DEFAULT_PARAM_CHARS;
    for (const value of values) if (value.length > limit) throw new BadRequest(`${name} is longer than ${limit} characters`);
  }
}

type Kind = 'authorization' | 'par' | 'token' | 'callback' | 'saml' | 'page' | 'api';

/** What the check does with a request, by its route (route.ts): every spelling of a path alike. */
function kindOf(ctx: Context): Kind {
  switch (routeOf(ctx)?.name) {
    case 'authorization':
      return 'authorization';
    case 'pushed_authorization_request':
      return 'par';
    case 'token':
    case 'introspection':
    case 'revocation':
    case 'broker_backchannel_logout':
      return 'token';
    case 'broker_callback':
    case 'interaction_callback':
      return 'callback';
    case 'saml_acs':
    case 'saml_slo':
      return 'saml';
    case 'resume':
    case 'interaction':
    case 'interaction_login':
    case 'interaction_consent':
    case 'interaction_abort':
    case 'broker':
    case 'saml_metadata':
    case 'end_session':
    case 'end_session_confirm':
    case 'end_session_success':
      return 'page';
    default:
      return 'api';
  }
}

export interface RequestLimitsOptions {
  issuer: string;
  /** The registered redirect URIs of a client, or undefined when there is no such client. */
  redirectUris(clientId: string): readonly string[] | undefined;
  /** The client's application_type (web when unknown): which redirect URIs are safe to send a browser to. */
  applicationType?(clientId: string): ApplicationType | undefined;
  /** The deployment allows http redirect URIs to hosts that are not loopback (clients.allowHttpRedirectUris). */
  allowHttpRedirects?: boolean;
}

/** What the edge check leaves for later middleware (the rate limiter reads the client of /token). */
export interface CheckedRequest {
  /** The form of POST /token (introspection, revocation), /request or /auth, parsed and checked. */
  form?: Params;
  /** That form as it came (UTF-8). */
  rawForm?: string;
}

export function requestLimits(options: RequestLimitsOptions) {
  return async function checkRequest(ctx: Context, next: Next) {
    const kind = kindOf(ctx);
    try {
      if (ctx.originalUrl.length > MAX_URL_CHARS) throw new BadRequest(`the request URL is longer than ${MAX_URL_CHARS} characters`, 414);
      const maxBody = kind === 'saml' ? MAX_SAML_BODY_BYTES : MAX_BODY_BYTES;
      const declared = ctx.request.length;
      if (declared !== undefined && declared > maxBody) throw new BadRequest(`the request body is larger than ${maxBody} bytes`, 413);

      const raw = ctx.querystring;
      if (!RAW_QUERY.test(raw)) throw new BadRequest('the query string has characters that are not percent-encoded');
      const query = parseParams(raw);
      const checked: CheckedRequest = {};
      ctx.state.checked = checked;

      // End-session takes a POSTed form too (RP-Initiated Logout 1.0 §2; posted-form.ts).
      const endSessionPost = ctx.method === 'POST' && routeOf(ctx)?.name === 'end_session';
      if (kind === 'authorization' || kind === 'par' || kind === 'token' || kind === 'callback' || kind === 'saml' || endSessionPost) {
        checkProtocolParams(query);
        const posted = ctx.method === 'POST' ? formType(ctx) : undefined;
        if (posted !== undefined) {
          checked.rawForm = await readBody(ctx, maxBody, posted);
          const form = parseParams(checked.rawForm);
          checkProtocolParams(form);
          checked.form = form;
        }
      }
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      return refuse(ctx, kind, error, options);
    }
    await next();
  };
}

/** The Content-Type every client sends for a form, without parameters: no parser needed to know it. */
const PLAIN_FORM = 'application/x-www-form-urlencoded';

/**
 * Whether the request's body is a form (Koa's `ctx.is`), and its charset (`ctx.request.charset`):
 * `{ charset: '' }` for a form without one, undefined for any other body. The usual header, exactly
 * `application/x-www-form-urlencoded`, is answered without parsing it twice (type-is, then
 * content-type, a few µs of every token request); any other goes through Koa as before.
 */
function formType(ctx: Context): { charset: string } | undefined {
  const { headers } = ctx.req;
  // type-is's hasBody, as ctx.is asks it: a request without a body has no form.
  if (headers['content-type'] === PLAIN_FORM && (headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(headers['content-length'])))) return { charset: '' };
  return ctx.is(PLAIN_FORM) ? { charset: ctx.request.charset } : undefined;
}

/** Reads the body (at most `max` bytes) and hands it on to oidc-provider as `ctx.request.body`. */
async function readBody(ctx: Context, max: number, { charset }: { charset: string }): Promise<string> {
  if (charset && !/^(utf-?8|us-ascii)$/i.test(charset)) throw new BadRequest(`charset ${printable(charset)} is not supported: send UTF-8`);
  // The check runs while Node is still parsing the packet that brought the headers; the rest of
  // it (a form of a few hundred bytes, usually the whole body) is buffered before the next microtask.
  await Promise.resolve();
  const received = bodyOf(ctx.req, max, ctx.request.length);
  const body = received instanceof Buffer ? received : await received;
  ctx.req = replayable(ctx.req, body);
  try {
    return UTF8.decode(body);
  } catch {
    throw new BadRequest('the request body is not UTF-8');
  }
}

/**
 * The body of `request`, at most `max` bytes (BadRequest 413 past that). At once when all of it is
 * buffered already (the `declared` Content-Length, or the whole request: a form of a few hundred
 * bytes comes in the packet of its headers), otherwise as it arrives. Events, not async iteration:
 * a stream's async iterator costs a dozen promises and listeners per request.
 */
function bodyOf(request: IncomingMessage, max: number, declared: number | undefined): Buffer | Promise<Buffer> {
  const buffered = request.readableLength;
  if (buffered <= max && (request.complete || buffered === declared)) {
    const body = (request.read() as Buffer | null) ?? Buffer.alloc(0);
    // Nothing more is read, but the stream still ends ('end', then 'close') as a request read to its end does.
    request.resume();
    return body;
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: Error) => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', done);
      request.off('close', onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      // The rest is not read: the answer closes the connection (refuse()).
      if (size > max) done(new BadRequest(`the request body is larger than ${max} bytes`, 413));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onClose = () => done(new Error('the request was aborted before its body was received'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', done);
    request.on('close', onClose);
  });
}

/**
 * Replaces the checked form of this request (`ctx.state.checked`) and the bytes oidc-provider will
 * read, with their Content-Length: for a middleware that hands oidc-provider another value of a
 * parameter (provider/access-tokens.ts: a JWT access token's record id at introspection).
 */
export function replaceForm(ctx: Context, rawForm: string): void {
  const checked = ctx.state.checked as CheckedRequest | undefined;
  if (!checked?.rawForm) throw new Error('replaceForm: no form was read for this request');
  const body = Buffer.from(rawForm, 'utf8');
  ctx.req = replayable(ctx.req, body);
  ctx.req.headers['content-length'] = String(body.length);
  checked.rawForm = rawForm;
  checked.form = parseParams(rawForm);
}

/** What a body reader uses of a request (oidc-provider: `readable`, `readableEncoding`, `iterator()`); events such as 'close' stay the connection's. */
const STREAM_SIDE = new Set<PropertyKey>(['readable', 'readableEnded', 'readableEncoding', 'readableLength', 'iterator', 'read', 'setEncoding', Symbol.asyncIterator]);

async function* once(body: Buffer): AsyncGenerator<Buffer> {
  yield body;
}

/**
 * The request as it came, whose body (already read from the socket) can be read once more: the
 * reading side (`readable`, async iteration, `iterator()`) plays `body` again; everything else
 * (headers, method, url, socket) is the original request's.
 *
 * oidc-provider's reader (lib/shared/selective_body.js) asks `readable` and `readableEncoding` and
 * iterates `iterator()`: those are answered without a stream. Any other use of the reading side
 * gets a stream of the same bytes (Readable.from), made on first use: building one for every token
 * request cost more than the rest of the replay.
 */
function replayable(request: IncomingMessage, body: Buffer): IncomingMessage {
  let replay: Readable | undefined;
  let iterated = false;
  return new Proxy(request, {
    get(target, property) {
      let from: object = target;
      if (STREAM_SIDE.has(property)) {
        if (replay === undefined) {
          if (property === 'readable') return !iterated;
          if (property === 'readableEncoding') return null;
          if (property === 'iterator' && !iterated) {
            return () => {
              iterated = true;
              return once(body);
            };
          }
          replay = Readable.from(iterated ? [] : [body], { objectMode: false });
        }
        from = replay;
      }
      const value = Reflect.get(from, property, from) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(from) : value;
    },
  });
}

function refuse(ctx: Context, kind: Kind, error: BadRequest, options: RequestLimitsOptions): void {
  const description = error.message;
  ctx.state.log?.warn({ status: error.status, reason: description }, 'request refused at the edge');
  ctx.set('Cache-Control', 'no-store');
  // The rest of an oversized body is not read: the connection closes after the answer.
  if (error.status === 413) ctx.set('Connection', 'close');
  if (kind === 'authorization' && error.status === 400 && redirectWithError(ctx, description, options)) return;
  ctx.status = error.status;
  if (kind === 'token' || kind === 'par' || kind === 'api') {
    ctx.body = { error: 'invalid_request', error_description: description };
    return;
  }
  showError(ctx, 'request_invalid', { status: error.status, detail: `invalid_request: ${description}`, log: { reason: description } });
}

/**
 * RFC 6749 4.1.2.1: with a known client and one of its registered redirect URIs, the error goes back
 * to the client. Returns false when the client or redirect URI cannot be trusted (the page is shown).
 */
function redirectWithError(ctx: Context, description: string, options: RequestLimitsOptions): boolean {
  const checked = ctx.state.checked as CheckedRequest | undefined;
  const params = lenientParams(ctx.method === 'POST' ? (checked?.rawForm ?? '') : ctx.querystring);
  /** The value of a parameter given once, with a good value; otherwise undefined. */
  const single = (name: string) => {
    const values = params.get(name);
    const value = values?.length === 1 ? values[0] : undefined;
    return typeof value === 'string' && value.length <= (PARAM_LIMITS[name] ?? DEFAULT_PARAM_CHARS) ? value : undefined;
  };
  const clientId = single('client_id');
  const registered = clientId ? options.redirectUris(clientId) : undefined;
  if (!registered) return false;
  const asked = single('redirect_uri');
  const redirectUri = asked ?? (params.has('redirect_uri') ? undefined : registered.length === 1 ? registered[0] : undefined);
  if (!redirectUri || !registered.includes(redirectUri)) return false;
  // Registered is not enough: a record from before the rules, or damaged, must not become a redirect to javascript: or data:.
  if (!isSafeRedirect(redirectUri, options.applicationType?.(clientId!) ?? 'web', options.allowHttpRedirects ?? false)) return false;
  const mode = single('response_mode') ?? (params.has('response_mode') ? 'invalid' : 'query');
  if (mode !== 'query' && mode !== 'fragment') return false;

  const answer = new URLSearchParams({ error: 'invalid_request', error_description: description });
  const state = single('state');
  if (state !== undefined) answer.set('state', state);
  answer.set('iss', options.issuer);
  const target = new URL(redirectUri);
  if (mode === 'fragment') target.hash = answer.toString();
  else for (const [k, v] of answer) target.searchParams.append(k, v);
  ctx.status = 303;
  ctx.redirect(target.href);
  return true;
}
