import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { IntlMessageFormat } from 'intl-messageformat';
import { parse as parseYaml } from 'yaml';
import { sourceName } from '../config/index.ts';
import { VIEWS_DIR } from './render.ts';

/**
 * The pages' words, one catalogue per language: flat `key: message` maps in ICU MessageFormat
 * (https://unicode-org.github.io/icu/userguide/format_parse/messages/), formatted by intl-messageformat.
 * English is the reference: every other catalogue has exactly its keys and, per message, exactly its
 * placeholders. Tags are not markup here (`ignoreTag`): a message is plain text, escaped where it is put.
 */

/** The shipped catalogues, beside the templates (views/ is read from src/ and from the compiled dist/ alike). */
const SHIPPED_DIR = path.join(VIEWS_DIR, 'messages');

/** The languages Concord ships, English first (the reference catalogue). */
export const SHIPPED_LOCALES = ['en', 'de', 'fr', 'es'] as const;
export const REFERENCE_LOCALE = 'en';

export type Catalogue = Readonly<Record<string, string>>;
export type MessageArgs = Record<string, string | number | undefined>;

/** A problem with a catalogue, by file and key, as config issues are reported. */
export interface CatalogueIssue {
  source: string;
  field: string;
  message: string;
}

/** A BCP 47 language tag as Concord accepts one for a catalogue: `de`, `pt-BR`, `zh-Hant`. */
const LOCALE_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** Reads one shipped catalogue (JSON beside this file). */
export function shippedCatalogue(locale: string): Catalogue {
  return JSON.parse(readFileSync(path.join(SHIPPED_DIR, `${locale}.json`), 'utf8')) as Catalogue;
}

/** The argument names a message uses (`{name}`, `{n, plural, ...}`), in and under select/plural options. */
export function placeholdersOf(message: string, locale: string): Set<string> {
  const names = new Set<string>();
  type Element = { type: number; value?: unknown; options?: Record<string, { value: Element[] }>; children?: Element[] };
  const walk = (elements: Element[]) => {
    for (const element of elements) {
      if (typeof element.value === 'string' && element.type !== 0 && element.type !== 8) names.add(element.value);
      for (const option of Object.values(element.options ?? {})) walk(option.value);
      if (element.children) walk(element.children);
    }
  };
  walk(new IntlMessageFormat(message, locale, undefined, { ignoreTag: true }).getAst() as Element[]);
  return names;
}

/**
 * Checks a catalogue against the reference: missing keys (unless `partial`), extra keys, messages
 * that do not parse, and placeholders that differ from the reference message's. Returns every
 * problem found, none when the catalogue is good.
 */
export function catalogueIssues(
  locale: string,
  catalogue: Record<string, unknown>,
  reference: Catalogue,
  source: string,
  options: { partial?: boolean } = {},
): CatalogueIssue[] {
  const issues: CatalogueIssue[] = [];
  if (!options.partial) {
    for (const key of Object.keys(reference)) if (!(key in catalogue)) issues.push({ source, field: key, message: 'missing' });
  }
  for (const [key, message] of Object.entries(catalogue)) {
    const expected = reference[key];
    if (expected === undefined) {
      issues.push({ source, field: key, message: 'not a message key of Concord’s pages' });
      continue;
    }
    if (typeof message !== 'string') {
      issues.push({ source, field: key, message: 'must be a string' });
      continue;
    }
    let used: Set<string>;
    try {
      used = placeholdersOf(message, locale);
    } catch (error) {
      issues.push({ source, field: key, message: `not ICU MessageFormat: ${(error as Error).message}` });
      continue;
    }
    const wanted = placeholdersOf(expected, REFERENCE_LOCALE);
    const missing = [...wanted].filter((name) => !used.has(name));
    const extra = [...used].filter((name) => !wanted.has(name));
    if (missing.length || extra.length) {
      issues.push({
        source,
        field: key,
        message: `placeholders differ from English: ${[...missing.map((n) => `missing {${n}}`), ...extra.map((n) => `unknown {${n}}`)].join(', ')}`,
      });
    }
  }
  return issues;
}

/** A nested map (`login: {title: ...}`) as flat keys (`login.title`), as YAML overrides are easier to write nested. */
function flatten(value: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

/**
 * The catalogues in use: the shipped ones, each overridden key by key by `{dir}/messages/{locale}.yaml|yml|json`,
 * and languages a deployment adds there (complete catalogues). Every problem of every file is
 * returned at once; a catalogue with problems is not used.
 */
export async function loadCatalogues(dir: string | undefined): Promise<{ catalogues: Map<string, Catalogue>; issues: CatalogueIssue[] }> {
  const reference = shippedCatalogue(REFERENCE_LOCALE);
  const catalogues = new Map<string, Catalogue>(SHIPPED_LOCALES.map((locale) => [locale, locale === REFERENCE_LOCALE ? reference : shippedCatalogue(locale)]));
  const issues: CatalogueIssue[] = [];
  if (!dir) return { catalogues, issues };
  const messagesDir = path.join(dir, 'messages');
  let names: string[];
  try {
    names = (await readdir(messagesDir)).filter((name) => /\.(ya?ml|json)$/.test(name)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return { catalogues, issues };
    throw error;
  }
  for (const name of names) {
    const source = sourceName(path.join(messagesDir, name));
    const locale = name.replace(/\.(ya?ml|json)$/, '');
    if (!LOCALE_TAG.test(locale)) {
      issues.push({ source, field: '', message: 'the file name must be a language tag, like de.yaml or pt-BR.yaml' });
      continue;
    }
    let document: unknown;
    try {
      const text = await readFile(path.join(messagesDir, name), 'utf8');
      document = name.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (error) {
      issues.push({ source, field: '', message: `cannot be read: ${(error as Error).message.split('\n')[0]}` });
      continue;
    }
    if (document === null || typeof document !== 'object' || Array.isArray(document)) {
      issues.push({ source, field: '', message: 'must be a mapping of message keys to messages' });
      continue;
    }
    const base = catalogues.get(locale);
    const flat = flatten(document);
    const found = catalogueIssues(locale, flat, reference, source, { partial: base !== undefined });
    issues.push(...found);
    if (found.length === 0) catalogues.set(locale, { ...base, ...(flat as Record<string, string>) });
  }
  return { catalogues, issues };
}

/**
 * Formats messages of one set of catalogues; formatters are kept per locale and key. A key missing
 * from a locale (impossible after loadCatalogues' checks) falls back to English, then to the key.
 */
export class Messages {
  readonly catalogues: ReadonlyMap<string, Catalogue>;
  /** Formatters and the placeholders they expect, per locale and key. */
  readonly #formats = new Map<string, { format: IntlMessageFormat; placeholders: string[] }>();

  constructor(catalogues: ReadonlyMap<string, Catalogue>) {
    this.catalogues = catalogues;
  }

  /** The locales there are catalogues for. */
  get locales(): string[] {
    return [...this.catalogues.keys()];
  }

  format(locale: string, key: string, args: MessageArgs = {}): string {
    const id = `${locale}\u0000${key}`;
    let entry = this.#formats.get(id);
    if (!entry) {
      const message = this.catalogues.get(locale)?.[key] ?? this.catalogues.get(REFERENCE_LOCALE)?.[key];
      if (message === undefined) return key;
      entry = { format: new IntlMessageFormat(message, locale, undefined, { ignoreTag: true }), placeholders: [...placeholdersOf(message, locale)] };
      this.#formats.set(id, entry);
    }
    // A placeholder without a value reads as nothing rather than failing the page.
    const values: Record<string, string | number> = {};
    for (const name of entry.placeholders) values[name] = '';
    for (const [name, value] of Object.entries(args)) if (value !== undefined) values[name] = value;
    return String(entry.format.format(values));
  }
}

/**
 * The best locale of `available` for a request: the first of `uiLocales` (OIDC Core 3.1.2.1
 * `ui_locales`, space-separated, in order of preference) that matches, else the best of the
 * Accept-Language header (RFC 9110 12.5.4, by q-value), else `fallback`. A tag matches exactly or by
 * its language (`de-CH` -> `de`), case-insensitively.
 */
export function negotiateLocale(available: readonly string[], uiLocales: string | undefined, acceptLanguage: string | undefined, fallback: string): string {
  const byLower = new Map(available.map((locale) => [locale.toLowerCase(), locale]));
  const match = (tag: string): string | undefined => {
    const lower = tag.trim().toLowerCase();
    if (!lower || lower === '*') return undefined;
    return byLower.get(lower) ?? byLower.get(lower.split('-')[0]!);
  };
  for (const tag of (uiLocales ?? '').split(' ').slice(0, 20)) {
    const found = match(tag);
    if (found) return found;
  }
  const ranked = (acceptLanguage ?? '')
    .slice(0, 1000)
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag, q: q === undefined ? 1 : Number(q), index };
    })
    .filter((entry) => entry.q > 0 && Number.isFinite(entry.q))
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const { tag } of ranked) {
    const found = match(tag);
    if (found) return found;
  }
  return fallback;
}
