import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VIEWS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };
export const escapeHtml = (value: unknown): string => String(value ?? '').replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

/** HTML already made safe by its producer (another template, oidc-provider's logout form). */
export class Trusted {
  readonly html: string;
  constructor(html: string) {
    this.html = html;
  }
}

const cache = new Map<string, string>();
function template(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(path.join(VIEWS_DIR, `${name}.html`), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/**
 * `{{name}}` is escaped; `{{{name}}}` inserts a Trusted value and refuses anything else,
 * so a raw slot can never receive user input by mistake.
 */
export function render(name: string, vars: Record<string, string | number | Trusted | undefined>): string {
  return template(name)
    .replace(/\{\{\{(\w+)\}\}\}/g, (_, key: string) => {
      const value = vars[key];
      if (value === undefined) return '';
      if (!(value instanceof Trusted)) throw new TypeError(`view ${name}: {{{${key}}}} needs a Trusted value`);
      return value.html;
    })
    .replace(/\{\{(\w+)\}\}/g, (_, key: string) => escapeHtml(vars[key] instanceof Trusted ? '' : vars[key]));
}

/** A whole page: the named body inside the layout. */
export function renderPage(name: string, title: string, vars: Record<string, string | number | Trusted | undefined>): string {
  return render('layout', { title, body: new Trusted(render(name, vars)) });
}

/** The one stylesheet, served from /assets/concord.css so the CSP needs no inline styles. */
export function stylesheet(): string {
  let css = cache.get('css');
  if (css === undefined) {
    css = readFileSync(path.join(VIEWS_DIR, 'concord.css'), 'utf8');
    cache.set('css', css);
  }
  return css;
}

/**
 * An inline script the page's CSP allows by its hash alone (`script-src 'sha256-...'`, as
 * oidc-provider's own auto-submitting pages do; src/http/security-headers.ts keeps the hash and drops
 * `'none'`). Returns the `<script>` element to put in the page.
 */
export function inlineScript(ctx: { response: { get(name: string): string }; set(name: string, value: string): void }, code: string): string {
  const csp = ctx.response.get('content-security-policy');
  if (csp) {
    const hash = `'sha256-${createHash('sha256').update(code, 'utf8').digest('base64')}'`;
    ctx.set('content-security-policy', csp.replace(/(^|;\s*)script-src([^;]*)/, (_, lead: string, values: string) => `${lead}script-src${values} ${hash}`));
  }
  return `<script>${code}</script>`;
}
