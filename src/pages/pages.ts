import type { Context, Next } from 'koa';
import path from 'node:path';
import { PagesSchema, sourceName, type PagesSettings } from '../config/index.ts';
import { showError } from './errors.ts';
import { faviconAssets, loadLogos, stylesheetAsset, type Asset } from './assets.ts';
import { loadCatalogues, Messages, negotiateLocale, shippedCatalogue, SHIPPED_LOCALES, type CatalogueIssue, type MessageArgs } from './messages.ts';
import { escapeHtml, render, Trusted, type TemplateVars, type Translate } from './render.ts';

/** An organisation as a page shows it: its display name and, when it has one in logos/, its logo. */
export interface ParticipantShown {
  name: string;
  logo?: string | undefined;
}

/** What a page reads of the request it answers (a Koa context, oidc-provider's included). */
type PageContext = Pick<Context, 'state' | 'get' | 'set' | 'query' | 'vary'> & { oidc?: { params?: { ui_locales?: unknown } } };

/**
 * Every page Concord shows, in the request's language and the deployment's branding. One per
 * Concord; routes find it with pagesOf(ctx) (the middleware puts it on ctx.state).
 */
export class Pages {
  readonly settings: PagesSettings;
  readonly messages: Messages;
  readonly #logos: ReadonlyMap<string, Asset>;
  readonly #assets: ReadonlyMap<string, Asset>;

  constructor(settings: PagesSettings, messages: Messages, logos: ReadonlyMap<string, Asset> = new Map()) {
    this.settings = settings;
    this.messages = messages;
    this.#logos = logos;
    const favicon = faviconAssets();
    this.#assets = new Map([
      ['/assets/concord.css', stylesheetAsset(settings)],
      ['/favicon.ico', favicon.ico],
      ['/assets/favicon.svg', favicon.svg],
    ]);
  }

  /**
   * The language of the page for this request: the service's `ui_locales` (kept on ctx.state.uiLocales
   * by the interaction routes, or oidc-provider's parameters, or the query), then Accept-Language,
   * then pages.defaultLocale.
   */
  locale(ctx: PageContext): string {
    const fromQuery = ctx.query?.ui_locales;
    const ui = [ctx.state?.uiLocales, ctx.oidc?.params?.ui_locales, fromQuery].find((value): value is string => typeof value === 'string' && value.length > 0);
    return negotiateLocale(this.messages.locales, ui, ctx.get('accept-language'), this.settings.defaultLocale);
  }

  /** Message formatting in this request's language; every message may use `{brand}`. */
  translate(ctx: PageContext): Translate {
    const locale = this.locale(ctx);
    const brand = this.settings.branding.name;
    return (key: string, args: MessageArgs = {}) => this.messages.format(locale, key, { brand, ...args });
  }

  /** The address of a logo of logos/, when the file is there. */
  logoUrl(name: string | undefined): string | undefined {
    return name !== undefined && this.#logos.has(name) ? `/assets/logos/${encodeURIComponent(name)}` : undefined;
  }

  /** `<img>` of a logo, or undefined when there is none. An empty alt: the name is always written beside or near it. */
  logoImage(name: string | undefined, className: string): Trusted | undefined {
    const url = this.logoUrl(name);
    return url ? new Trusted(`<img class="${className}" src="${escapeHtml(url)}" alt="">`) : undefined;
  }

  /** The organisation a page concerns: logo and name. */
  participantBadge(ctx: PageContext, participant: ParticipantShown): Trusted {
    const t = this.translate(ctx);
    return new Trusted(`<p class="participant">${this.logoImage(participant.logo, 'logo')?.html ?? ''}<span>${escapeHtml(t('error.organisation', { participant: participant.name }))}</span></p>`);
  }

  /**
   * A whole page: template `views/{name}.html` in the layout, in the request's language, with the
   * deployment's name, logo and footer links. `title` is a message key or (for error pages) the
   * heading itself. Sets the content type and language of the response.
   */
  render(ctx: PageContext, name: string, title: string, vars: TemplateVars): string {
    const locale = this.locale(ctx);
    const t = this.translate(ctx);
    const brand = this.settings.branding.name;
    const { privacy, help } = this.settings.branding.links;
    const links = [privacy && `<a href="${escapeHtml(privacy)}">${escapeHtml(t('footer.privacy'))}</a>`, help && `<a href="${escapeHtml(help)}">${escapeHtml(t('footer.help'))}</a>`].filter(Boolean);
    const body = render(name, vars, t);
    ctx.set('Content-Type', 'text/html; charset=utf-8');
    ctx.set('Content-Language', locale);
    ctx.vary('Accept-Language');
    const heading = /^[\w.]+$/.test(title) && this.messages.catalogues.get(locale)?.[title] !== undefined ? t(title, plainArgs(vars)) : title;
    return render(
      'layout',
      {
        lang: locale,
        fullTitle: t('page.title', { title: heading }),
        brand,
        brandLogo: this.logoImage(this.settings.branding.logo, 'brand-logo'),
        body: new Trusted(body),
        footer: links.length ? new Trusted(`<footer>${links.join('')}</footer>`) : undefined,
      },
      t,
    );
  }

  /**
   * The middleware of the public listener: puts this Pages on ctx.state, serves the stylesheet,
   * favicon and logos (GET/HEAD, with ETag), and answers what no route answered with a 404 page
   * for browsers, JSON or plain text for programs (by Accept).
   */
  middleware() {
    return async (ctx: Context, next: Next) => {
      ctx.state.pages = this;
      if (ctx.method === 'GET' || ctx.method === 'HEAD') {
        const found = this.#assets.get(ctx.path) ?? (ctx.path.startsWith('/assets/logos/') ? this.#logos.get(decodeSafe(ctx.path.slice('/assets/logos/'.length))) : undefined);
        if (found) {
          ctx.set('Cache-Control', 'public, max-age=3600');
          ctx.set('ETag', found.etag);
          ctx.type = found.type;
          if (ctx.get('if-none-match') === found.etag) {
            ctx.status = 304;
            return;
          }
          ctx.body = found.body;
          return;
        }
      }
      await next();
      if (ctx.status === 404 && ctx.body == null) {
        const kind = ctx.accepts('json', 'html', 'text');
        if (kind === 'html') {
          showError(ctx, 'not_found', { log: { method: ctx.method, path: ctx.path.slice(0, 200) } });
        } else if (kind === 'text') {
          ctx.status = 404;
          ctx.type = 'text/plain';
          ctx.body = 'Not Found: no such endpoint\n';
        } else {
          ctx.status = 404;
          ctx.body = { error: 'not_found', error_description: 'no such endpoint' };
        }
      }
    };
  }
}

function decodeSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return '';
  }
}

function plainArgs(vars: TemplateVars): MessageArgs {
  const out: MessageArgs = {};
  for (const [key, value] of Object.entries(vars)) if (!(value instanceof Trusted)) out[key] = value;
  return out;
}

/**
 * The pages of a deployment: `settings` (pages.* of concord.yaml), message overrides and added
 * languages from `{dir}/messages/`, logos from `{dir}/logos/`. Every problem is returned at once.
 */
export async function loadPages(settings: PagesSettings, dir: string | undefined): Promise<{ pages: Pages; issues: CatalogueIssue[] }> {
  const { catalogues, issues } = await loadCatalogues(dir);
  const logos = await loadLogos(dir);
  issues.push(...logos.issues);
  const settingsFile = dir ? sourceName(path.join(dir, 'concord.yaml')) : 'concord.yaml';
  if (!catalogues.has(settings.defaultLocale)) {
    issues.push({ source: settingsFile, field: 'pages.defaultLocale', message: `${settings.defaultLocale}: no catalogue for it (there are ${[...catalogues.keys()].join(', ')}; add messages/${settings.defaultLocale}.yaml)` });
  }
  if (settings.branding.logo !== undefined && !logos.logos.has(settings.branding.logo)) {
    issues.push({ source: settingsFile, field: 'pages.branding.logo', message: `${settings.branding.logo}: no such file in logos/ of the configuration directory` });
  }
  return { pages: new Pages(settings, new Messages(catalogues), logos.logos), issues };
}

let fallback: Pages | undefined;
/** The pages of a request: those of its Concord (ctx.state.pages), else the shipped ones without branding. */
export function pagesOf(ctx: { state?: Record<string, unknown> }): Pages {
  const pages = ctx.state?.pages;
  if (pages instanceof Pages) return pages;
  fallback ??= new Pages(PagesSchema.parse({}), new Messages(new Map(SHIPPED_LOCALES.map((locale) => [locale, shippedCatalogue(locale)]))));
  return fallback;
}

/** Renders a page of the request's Concord (see Pages.render). */
export function renderPage(ctx: PageContext & { state?: Record<string, unknown> }, name: string, title: string, vars: TemplateVars): string {
  return pagesOf(ctx).render(ctx, name, title, vars);
}
