import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, loadConfig, PagesSchema, ParticipantSchema, sourceName, type ConfigIssue, type PagesSettings } from '../config/index.ts';
import { loadPages } from '../pages/index.ts';
import { compileMapping, MappingError, MappingRuleSchema, type MappingConfig, type MappingIssue } from '../mapping/index.ts';
import { readDocument } from './files.ts';
import { CliError } from './errors.ts';

export interface ValidationReport {
  dir: string;
  participants: number;
  clients: number;
  issues: ConfigIssue[];
}

/**
 * Offline: what Concord would refuse at start-up, and more. The loader checks every file against
 * its schema and across files; then every participant's mapping is compiled as the registry would
 * (CEL, patterns, templates), which the schema alone does not catch. Every issue is listed.
 */
export async function validateConfig(dir: string, env: NodeJS.ProcessEnv): Promise<ValidationReport> {
  const resolved = path.resolve(dir);
  const info = await stat(resolved).catch(() => undefined);
  if (!info?.isDirectory()) throw new CliError(`${dir} is not a directory`);

  const issues: ConfigIssue[] = [];
  let counts = { participants: 0, clients: 0 };
  // The pages' settings, for the check of messages/ and logos/ (the defaults when concord.yaml was refused).
  let pages: PagesSettings = PagesSchema.parse({});
  try {
    const config = await loadConfig({ dir: resolved, env });
    counts = { participants: config.participants.length, clients: config.clients.length };
    pages = config.settings.pages;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    issues.push(...error.issues);
  }
  // The pages' catalogues (messages/) and logos (logos/), as start-up checks them.
  issues.push(...(await loadPages(pages, resolved)).issues);

  // The schema cannot see into expressions and patterns: compile every rule that parses, also in
  // files the loader refused, so one run lists every problem.
  const participantsDir = path.join(resolved, 'participants');
  const names = (await readdir(participantsDir).catch(() => [] as string[])).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
  for (const name of names) {
    const file = path.join(participantsDir, name);
    const source = sourceName(file);
    let document: unknown;
    try {
      document = await readDocument(file);
    } catch {
      continue; // unreadable: the loader reported it
    }
    const raw = (document ?? {}) as { id?: unknown; domains?: unknown; mapping?: unknown };
    const id = typeof raw.id === 'string' ? raw.id : name.replace(/\.\w+$/, '');
    for (const issue of issues) {
      if (issue.source === source) issue.field = `participant ${id}${issue.field ? `, ${issue.field.replace(/^mapping\.rules\.(\d+)/, 'mapping.rules[$1]')}` : ''}`;
    }
    const parsed = ParticipantSchema.safeParse(document ?? {});
    const mapping = parsed.success ? parsed.data.mapping : raw.mapping;
    const rules = Array.isArray(mapping) ? mapping : ((mapping as { rules?: unknown } | undefined)?.rules as unknown[] | undefined);
    const domains = parsed.success ? parsed.data.domains : Array.isArray(raw.domains) ? raw.domains.filter((d): d is string => typeof d === 'string') : [];
    const found = parsed.success ? compileIssues(parsed.data.mapping, id, domains) : [];
    if (!parsed.success && Array.isArray(rules)) {
      // One rule at a time, so a rule the schema refused does not hide the others' problems.
      rules.forEach((rule, index) => {
        const one = MappingRuleSchema.safeParse(rule);
        if (one.success) found.push(...compileIssues({ passthrough: [], rules: [one.data] }, id, domains).map((i) => ({ ...i, index: i.index === null ? null : index })));
      });
    }
    for (const issue of found) {
      const where = issue.index === null ? 'mapping' : `mapping.rules[${issue.index}]`;
      issues.push({ source, field: `participant ${issue.participant}, ${where}${issue.field ? `.${issue.field}` : ''}`, message: issue.message });
    }
  }
  // File by file (a stable sort: within a file, in the order found).
  issues.sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
  return { dir: resolved, ...counts, issues };
}

export const describeIssue = (issue: ConfigIssue) => `${issue.source}${issue.field ? ` (${issue.field})` : ''}: ${issue.message}`;

function compileIssues(mapping: MappingConfig | undefined, participantId: string, domains: string[]): MappingIssue[] {
  try {
    compileMapping(mapping, { participantId, domains });
    return [];
  } catch (error) {
    if (error instanceof MappingError) return error.issues;
    throw error;
  }
}
