/**
 * A small browser for tests: plain fetch with a cookie jar, redirects followed by hand (so every
 * hop is visible), and a way to stop before a URL we want to handle ourselves (a callback).
 *
 *   const browser = new Browser();
 *   const page = await browser.get(authUrl);                       // follows to the login form
 *   const form = parseForm(page.body);
 *   const done = await browser.post(new URL(form.action, page.url), { ...form.fields, email, password },
 *     { stopAt: (url) => url.href.startsWith(redirectUri) });
 *   done.stoppedAt   // the callback URL, not requested
 *
 * Cookies are kept per host name (like a browser: not per port), honour Path, Max-Age/Expires and
 * deletion; Secure cookies are sent over http only to loopback hosts (as browsers do for localhost).
 * SameSite and Domain attributes are ignored (every cookie is host-only).
 */

export interface Cookie {
  name: string;
  value: string;
  path: string;
  expires?: number;
  secure: boolean;
}

export interface Hop {
  method: string;
  url: URL;
  status: number;
  location?: URL;
}

export interface BrowserResponse {
  /** Status of the last response received. */
  status: number;
  /** URL of the last response received. */
  url: URL;
  headers: Headers;
  body: string;
  /** Every request made for this call, in order, with its status and Location. */
  chain: Hop[];
  /** The Location that matched `stopAt`, not requested. */
  stoppedAt?: URL;
  /** The Location of the last response when it is a redirect (also set when stopped or out of hops). */
  location?: URL;
}

export interface RequestOptions {
  /** Stop following (and do not request) when a redirect's Location matches. */
  stopAt?: (url: URL) => boolean;
  /** Do not follow redirects at all. */
  noFollow?: boolean;
  headers?: Record<string, string>;
  maxRedirects?: number;
}

export interface BrowserOptions {
  userAgent?: string;
  maxRedirects?: number;
  /** Each request gives up after this long. Default 10 s. */
  timeoutMs?: number;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export class Browser {
  readonly #jar = new Map<string, Map<string, Cookie>>(); // host -> "path\0name" -> cookie
  readonly #userAgent: string;
  readonly #maxRedirects: number;
  readonly #timeoutMs: number;
  /** Every hop of every request this browser made. */
  readonly history: Hop[] = [];

  constructor(options: BrowserOptions = {}) {
    this.#userAgent = options.userAgent ?? 'concord-test-browser/1';
    this.#maxRedirects = options.maxRedirects ?? 20;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get(url: string | URL, options: RequestOptions = {}): Promise<BrowserResponse> {
    return this.request('GET', url, undefined, options);
  }

  /** POSTs an urlencoded form. */
  post(url: string | URL, form: Record<string, string> | URLSearchParams, options: RequestOptions = {}): Promise<BrowserResponse> {
    return this.request('POST', url, new URLSearchParams(form), options);
  }

  async request(method: string, url: string | URL, body: URLSearchParams | undefined, options: RequestOptions = {}): Promise<BrowserResponse> {
    let current = new URL(url);
    let currentMethod = method.toUpperCase();
    let currentBody = body;
    const chain: Hop[] = [];
    const max = options.maxRedirects ?? this.#maxRedirects;
    for (;;) {
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'text/html,application/json;q=0.9,*/*;q=0.8', ...options.headers };
      const cookie = this.cookieHeader(current);
      if (cookie) headers.cookie = cookie;
      if (currentBody) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(current, {
        method: currentMethod,
        headers,
        ...(currentBody ? { body: currentBody.toString() } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      this.#storeCookies(current, response.headers.getSetCookie());
      const locationHeader = response.headers.get('location');
      const location = locationHeader !== null && response.status >= 300 && response.status < 400 ? new URL(locationHeader, current) : undefined;
      const hop: Hop = { method: currentMethod, url: current, status: response.status, ...(location ? { location } : {}) };
      chain.push(hop);
      this.history.push(hop);
      const done = (extra: Partial<BrowserResponse> = {}) =>
        response.text().then((text) => ({ status: response.status, url: current, headers: response.headers, body: text, chain, ...(location ? { location } : {}), ...extra }));
      if (!location || options.noFollow) return done();
      if (options.stopAt?.(location)) return done({ stoppedAt: location });
      if (chain.length > max) return done();
      await response.body?.cancel();
      // 307/308 keep the method and body; the others become GET (what browsers do).
      if (response.status !== 307 && response.status !== 308) {
        currentMethod = 'GET';
        currentBody = undefined;
      }
      current = location;
    }
  }

  /** The Cookie header this browser would send to `url`. */
  cookieHeader(url: URL): string {
    const now = Date.now();
    const jar = this.#jar.get(url.hostname);
    if (!jar) return '';
    const out: Cookie[] = [];
    for (const [key, cookie] of jar) {
      if (cookie.expires !== undefined && cookie.expires <= now) {
        jar.delete(key);
        continue;
      }
      if (cookie.secure && url.protocol !== 'https:' && !LOOPBACK.has(url.hostname)) continue;
      if (!pathMatches(url.pathname, cookie.path)) continue;
      out.push(cookie);
    }
    // Longer paths first, as browsers send them.
    out.sort((a, b) => b.path.length - a.path.length);
    return out.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  /** Cookies held for a host (name -> value; the most specific path wins). */
  cookies(host: string | URL): Record<string, string> {
    const hostname = typeof host === 'string' ? (host.includes('://') ? new URL(host).hostname : host) : host.hostname;
    const out: Record<string, string> = {};
    const sorted = [...(this.#jar.get(hostname)?.values() ?? [])].sort((a, b) => a.path.length - b.path.length);
    for (const c of sorted) if (c.expires === undefined || c.expires > Date.now()) out[c.name] = c.value;
    return out;
  }

  setCookie(url: string | URL, setCookie: string): void {
    this.#storeCookies(new URL(url), [setCookie]);
  }

  clearCookies(host?: string): void {
    if (host) this.#jar.delete(host);
    else this.#jar.clear();
  }

  #storeCookies(url: URL, lines: string[]): void {
    for (const line of lines) {
      const cookie = parseSetCookie(line, url);
      if (!cookie) continue;
      let jar = this.#jar.get(url.hostname);
      if (!jar) this.#jar.set(url.hostname, (jar = new Map()));
      const key = `${cookie.path}\0${cookie.name}`;
      if (cookie.expires !== undefined && cookie.expires <= Date.now()) jar.delete(key);
      else jar.set(key, cookie);
    }
  }
}

function parseSetCookie(line: string, url: URL): Cookie | undefined {
  const [pair = '', ...attributes] = line.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const cookie: Cookie = { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), path: defaultPath(url), secure: false };
  let maxAge: number | undefined;
  for (const attribute of attributes) {
    const i = attribute.indexOf('=');
    const name = (i === -1 ? attribute : attribute.slice(0, i)).trim().toLowerCase();
    const value = i === -1 ? '' : attribute.slice(i + 1).trim();
    if (name === 'path' && value.startsWith('/')) cookie.path = value;
    else if (name === 'secure') cookie.secure = true;
    else if (name === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (name === 'expires') {
      const t = Date.parse(value);
      if (!Number.isNaN(t)) cookie.expires = t;
    }
  }
  if (maxAge !== undefined) cookie.expires = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000; // Max-Age wins over Expires
  return cookie;
}

function defaultPath(url: URL): string {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

export interface ParsedForm {
  action: string;
  method: string;
  fields: Record<string, string>;
}

/**
 * The first <form> in an HTML page (or the first whose action contains `actionContains`): its
 * action (unresolved; use `new URL(form.action, page.url)`), method and named input/select/textarea
 * values. Checkboxes and radios count only when checked; submit buttons are left out.
 */
export function parseForm(html: string, actionContains?: string): ParsedForm {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  const match = forms.find((f) => actionContains === undefined || (attr(f[1] ?? '', 'action') ?? '').includes(actionContains));
  if (!match) throw new Error(`no <form>${actionContains ? ` with an action containing ${actionContains}` : ''} in the page`);
  const [, attributes = '', inner = ''] = match;
  const fields: Record<string, string> = {};
  for (const [, a = ''] of inner.matchAll(/<input\b([^>]*)>/gi)) {
    const name = attr(a, 'name');
    if (!name) continue;
    const type = (attr(a, 'type') ?? 'text').toLowerCase();
    if (type === 'submit' || type === 'button' || type === 'image' || type === 'reset') continue;
    if ((type === 'checkbox' || type === 'radio') && !/\bchecked\b/i.test(a)) continue;
    fields[name] = attr(a, 'value') ?? (type === 'checkbox' ? 'on' : '');
  }
  for (const [, a = '', text = ''] of inner.matchAll(/<textarea\b([^>]*)>([\s\S]*?)<\/textarea>/gi)) {
    const name = attr(a, 'name');
    if (name) fields[name] = decodeEntities(text);
  }
  for (const [, a = '', options = ''] of inner.matchAll(/<select\b([^>]*)>([\s\S]*?)<\/select>/gi)) {
    const name = attr(a, 'name');
    if (!name) continue;
    const all = [...options.matchAll(/<option\b([^>]*)>([\s\S]*?)<\/option>/gi)];
    const chosen = all.find((o) => /\bselected\b/i.test(o[1] ?? '')) ?? all[0];
    if (chosen) fields[name] = attr(chosen[1] ?? '', 'value') ?? decodeEntities((chosen[2] ?? '').trim());
  }
  return { action: attr(attributes, 'action') ?? '', method: (attr(attributes, 'method') ?? 'get').toLowerCase(), fields };
}

function attr(attributes: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attributes);
  if (!m) return undefined;
  return decodeEntities(m[1] ?? m[2] ?? m[3] ?? '');
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
