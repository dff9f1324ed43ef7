import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LogoFile, sourceName, type PagesSettings } from '../config/index.ts';
import type { CatalogueIssue } from './messages.ts';
import { viewFile, VIEWS_DIR } from './render.ts';
import { readFileSync } from 'node:fs';

/** A file the pages load from Concord's own origin. */
export interface Asset {
  type: string;
  body: Buffer | string;
  /** Strong validator of the body (RFC 9110 8.8.3). */
  etag: string;
}

/** Largest logo Concord serves: 256 KiB. A logo is a small picture, not a download. */
export const MAX_LOGO_BYTES = 256 * 1024;

const LOGO_TYPES: Record<string, string> = {
  svg: 'image/svg+xml',
  png: 'image/png',
  webp: 'image/webp',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
};

const etagOf = (body: Buffer | string) => `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
const asset = (type: string, body: Buffer | string): Asset => ({ type, body, etag: etagOf(body) });

/**
 * The logos of the configuration directory's `logos/` folder (names as LogoFile allows, each at
 * most MAX_LOGO_BYTES), by file name. Files with other names are ignored; a file too large is an issue.
 */
export async function loadLogos(dir: string | undefined): Promise<{ logos: Map<string, Asset>; issues: CatalogueIssue[] }> {
  const logos = new Map<string, Asset>();
  const issues: CatalogueIssue[] = [];
  if (!dir) return { logos, issues };
  const logosDir = path.join(dir, 'logos');
  let names: string[];
  try {
    names = await readdir(logosDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { logos, issues };
    throw error;
  }
  for (const name of names.sort()) {
    if (!LogoFile.safeParse(name).success) continue;
    const file = path.join(logosDir, name);
    const info = await stat(file);
    if (!info.isFile()) continue;
    if (info.size > MAX_LOGO_BYTES) {
      issues.push({ source: sourceName(file), field: '', message: `${info.size} bytes: a logo may have at most ${MAX_LOGO_BYTES} bytes` });
      continue;
    }
    logos.set(name, asset(LOGO_TYPES[name.split('.').pop()!.toLowerCase()]!, await readFile(file)));
  }
  return { logos, issues };
}

/**
 * The stylesheet: views/concord.css with the deployment's colours (pages.branding.colors, whose
 * contrast the config schema checked) as its accent variables.
 */
export function stylesheetAsset(settings: PagesSettings): Asset {
  const { primary, primaryDark } = settings.branding.colors;
  return asset('text/css; charset=utf-8', `${viewFile('concord.css')}\n:root { --accent: ${primary}; --accent-dark: ${primaryDark}; }\n`);
}

let favicons: { ico: Asset; svg: Asset } | undefined;
/** Concord's icon, as /favicon.ico (ICO holding a PNG) and /assets/favicon.svg. */
export function faviconAssets(): { ico: Asset; svg: Asset } {
  favicons ??= {
    ico: asset('image/x-icon', readFileSync(path.join(VIEWS_DIR, 'favicon.ico'))),
    svg: asset('image/svg+xml', viewFile('favicon.svg')),
  };
  return favicons;
}
