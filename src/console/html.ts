/*
 * The console's templates: tagged template literals whose interpolations are escaped unless they
 * are Html already (another template's output). No template engine, no inline script or style
 * (the CSP forbids both): markup here, looks in console.css. English only (the public pages are
 * translated; the console is for operators).
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };
const escape = (value: string) => value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

/** Markup already escaped by its producer. */
export class Html {
  readonly markup: string;
  constructor(markup: string) {
    this.markup = markup;
  }
  toString(): string {
    return this.markup;
  }
}

type Slot = Html | string | number | boolean | null | undefined | readonly Slot[];

function fill(value: Slot): string {
  if (value === null || value === undefined || value === false || value === true) return '';
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(fill).join('');
  return escape(String(value));
}

/** `html\`<p>${text}</p>\``: text escaped, Html inserted, arrays joined, null/undefined/booleans dropped. */
export function html(strings: TemplateStringsArray, ...values: Slot[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += fill(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Pretty JSON for a pre element (escaped by the template). */
export const json = (value: unknown): string => JSON.stringify(value, null, 2);

export interface PageChrome {
  title: string;
  /** The signed-in admin, for the header and the sign-out form. */
  admin?: { name: string; csrf: string };
  /** Which nav entry is this page. */
  section?: 'overview' | 'onboard' | 'clients' | 'keys' | 'audit' | 'sessions';
  /** One line shown at the top (after an action). */
  notice?: string;
}

const NAV: Array<[NonNullable<PageChrome['section']>, string, string]> = [
  ['overview', '/console/', 'Overview'],
  ['onboard', '/console/onboard', 'Onboard a partner'],
  ['clients', '/console/clients', 'Clients'],
  ['keys', '/console/keys', 'Keys'],
  ['audit', '/console/audit', 'Audit log'],
  ['sessions', '/console/sessions', 'Sessions'],
];

export function page(chrome: PageChrome, body: Html): string {
  const nav = chrome.admin
    ? html`<nav aria-label="Console"><ul>${NAV.map(([key, href, label]) => html`<li><a href="${href}"${chrome.section === key ? new Html(' aria-current="page"') : ''}>${label}</a></li>`)}</ul></nav>
      <form method="post" action="/console/logout" class="signout">${csrfField(chrome.admin.csrf)}<span>Signed in as <strong>${chrome.admin.name}</strong></span> <button type="submit">Sign out</button></form>`
    : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${chrome.title} · Concord console</title>
<link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><p class="brand"><a href="/console/">Concord console</a></p>${nav}</header>
<main id="main">
<h1>${chrome.title}</h1>
${chrome.notice ? html`<p class="notice" role="status">${chrome.notice}</p>` : ''}
${body}
</main>
</body>
</html>`.markup;
}

export const csrfField = (token: string) => html`<input type="hidden" name="_csrf" value="${token}">`;

/** A POST form with its CSRF token; `extra` are further hidden fields. */
export function postForm(action: string, csrf: string, label: string, options: { extra?: Record<string, string>; danger?: boolean; target?: string; describe?: string } = {}): Html {
  return html`<form method="post" action="${action}" class="inline"${options.target ? html` target="${options.target}"` : ''}>${csrfField(csrf)}${Object.entries(options.extra ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit"${options.danger ? new Html(' class="danger"') : ''}${options.describe ? html` aria-describedby="${options.describe}"` : ''}>${label}</button></form>`;
}

/** A state word with its own class, for the eye; the word itself carries the meaning. */
export const badge = (state: string) => html`<span class="badge badge-${state.replace(/[^a-z_-]/gi, '')}">${state}</span>`;

export const when = (iso: string | null | undefined) => (iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`<span class="muted">never</span>`);
