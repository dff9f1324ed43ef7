import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The page templates, the stylesheet and the favicon (the repository's views/ folder). */
export const VIEWS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../views');

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };
export const escapeHtml = (value: unknown): string => String(value ?? '').replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

/** HTML already made safe by its producer (another template, oidc-provider's logout form). */
export class Trusted {
  readonly html: string;
  constructor(html: string) {
    this.html = html;
  }
}

export type TemplateVars = Record<string, string | number | Trusted | undefined>;

/** Formats message `key` of the page's language with the template's plain values as arguments. */
export type Translate = (key: string, args?: Record<string, string | number | undefined>) => string;

const cache = new Map<string, string>();
/** A file of views/, read once. */
export function viewFile(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(path.join(VIEWS_DIR, name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/**
 * Fills template `views/{name}.html`. `{{name}}` is escaped; `{{{name}}}` inserts a Trusted value and
 * refuses anything else, so a raw slot can never receive user input by mistake; `{{@key}}` is message
 * `key` of the page's language (views/messages), formatted with the plain values, escaped.
 */
export function render(name: string, vars: TemplateVars, t: Translate): string {
  const plain: Record<string, string | number | undefined> = {};
  for (const [key, value] of Object.entries(vars)) if (!(value instanceof Trusted)) plain[key] = value;
  return viewFile(`${name}.html`)
    .replace(/\{\{\{(\w+)\}\}\}/g, (_, key: string) => {
      const value = vars[key];
      if (value === undefined) return '';
      if (!(value instanceof Trusted)) throw new TypeError(`view ${name}: {{{${key}}}} needs a Trusted value`);
      return value.html;
    })
    .replace(/\{\{@([\w.]+)\}\}/g, (_, key: string) => escapeHtml(t(key, plain)))
    .replace(/\{\{(\w+)\}\}/g, (_, key: string) => escapeHtml(vars[key] instanceof Trusted ? '' : vars[key]));
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
