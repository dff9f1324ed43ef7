import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { AdminError, mappingField } from '../admin/index.ts';
import { ConcordError } from '../errors.ts';
import { MappingError, type MappingIssue } from '../mapping/index.ts';
import { html, type Html } from './html.ts';

/**
 * A document typed into a console textarea: YAML (JSON is YAML too). Throws AdminError 422
 * `invalid_document` naming the field and the line when it does not parse.
 */
export function parseDocument(text: string, field: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return parseYaml(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new AdminError(422, 'invalid_document', `${field}: not YAML or JSON: ${(error as Error).message.split('\n')[0]}`, { field });
  }
}

export const toYaml = (value: unknown): string => (value === undefined ? '' : stringifyYaml(value, { lineWidth: 0 }));

const isMappingIssue = (issue: unknown): issue is MappingIssue => typeof issue === 'object' && issue !== null && 'index' in issue && 'participant' in issue;

/** Where a mapping issue sits, in words: "rule 3 (regex.pattern)". Rules are numbered from 1 for people; the field keeps the API's index. */
export function ruleLabel(issue: MappingIssue): string {
  if (issue.index === null) return issue.field ? `mapping (${issue.field})` : 'mapping';
  return `rule ${issue.index + 1}${issue.field ? ` (${issue.field})` : ''}`;
}

/** A refusal of the shared operations as the console shows it: the message, then each issue with the field or rule it points at. */
export function errorPanel(error: unknown): Html {
  const issues: Array<{ where: string; field: string; message: string }> = [];
  if (error instanceof AdminError) {
    for (const issue of error.issues ?? []) {
      if (isMappingIssue(issue)) issues.push({ where: ruleLabel(issue), field: mappingField(issue), message: issue.message });
      else issues.push({ where: issue.field || 'document', field: issue.field, message: issue.message });
    }
  } else if (error instanceof MappingError) {
    for (const issue of error.issues) issues.push({ where: ruleLabel(issue), field: mappingField(issue), message: issue.message });
  }
  const message = error instanceof ConcordError ? error.message : String(error);
  const field = error instanceof AdminError ? error.field : undefined;
  return html`<div class="error" role="alert"><p><strong>Not saved.</strong> ${message}</p>
    ${issues.length > 0
      ? html`<ul>${issues.map((i) => html`<li><strong>${i.where}</strong>${i.field && i.field !== i.where ? html` <code>${i.field}</code>` : ''}: ${i.message}</li>`)}</ul>`
      : field
        ? html`<p>Field: <code>${field}</code></p>`
        : ''}</div>`;
}
