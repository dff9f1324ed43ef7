import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

/*
 * Every relative link and anchor in README.md and docs/*.md leads somewhere inside the repository:
 * a file or folder that exists, and a heading that is there (anchors as GitHub makes them).
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCUMENTS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((n) => n.endsWith('.md')).map((n) => `docs/${n}`)];

/** GitHub's heading anchors: lower case, markup and punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** The links of a document, outside code: inline `[text](target)` and reference `[label]: target`. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/`[^`\n]*`/g, '');
  const inline = [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const reference = [...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return [...inline, ...reference];
}

describe('documentation links', () => {
  for (const document of DOCUMENTS) {
    it(`${document}: every relative link and anchor resolves inside the repository`, () => {
      const text = readFileSync(path.join(ROOT, document), 'utf8');
      const problems: string[] = [];
      const links = linksOf(text);
      for (const link of links) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:: not a file of the repository
        const [target = '', anchor] = link.split('#', 2) as [string, string | undefined];
        const file = target === '' ? path.join(ROOT, document) : path.resolve(path.dirname(path.join(ROOT, document)), decodeURIComponent(target));
        if (!file.startsWith(ROOT + path.sep) && file !== ROOT) {
          problems.push(`${link}: outside the repository`);
          continue;
        }
        if (!existsSync(file)) {
          problems.push(`${link}: ${path.relative(ROOT, file)} does not exist`);
          continue;
        }
        if (anchor !== undefined) {
          if (statSync(file).isDirectory() || !file.endsWith('.md')) {
            problems.push(`${link}: an anchor into something that is not a Markdown file`);
          } else if (!anchorsOf(readFileSync(file, 'utf8')).has(anchor)) {
            problems.push(`${link}: no heading #${anchor} in ${path.relative(ROOT, file)}`);
          }
        }
      }
      assert.deepEqual(problems, [], `${document} has ${links.length} links`);
    });
  }

  it('makes anchors as GitHub does', () => {
    const anchors = anchorsOf('# Sessions re-checked on refresh, ended by the IdP\'s logout\n## SAML 2.0 partners\n## SAML 2.0 partners\n```\n# not a heading\n```\n');
    assert.deepEqual([...anchors], ['sessions-re-checked-on-refresh-ended-by-the-idps-logout', 'saml-20-partners', 'saml-20-partners-1']);
  });
});
