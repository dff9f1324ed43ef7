import { ConcordError } from '../errors.ts';

/** One thing wrong with a mapping. `index` is the 0-based position in `rules`, null for the mapping as a whole. */
export interface MappingIssue {
  participant: string;
  index: number | null;
  /** Dotted path of the field inside the rule (or the mapping when `index` is null), e.g. `regex.pattern`. */
  field: string;
  message: string;
}

/** A mapping that cannot be used; lists every issue found, not only the first. */
export class MappingError extends ConcordError {
  readonly issues: MappingIssue[];

  constructor(issues: MappingIssue[]) {
    super('invalid_mapping', `invalid mapping:\n${issues.map(describeIssue).join('\n')}`, { status: 422, expose: true });
    this.issues = issues;
  }
}

export function describeIssue(issue: MappingIssue): string {
  const where = issue.index === null ? 'mapping' : `rules[${issue.index}]`;
  return `  participant ${issue.participant}, ${where}${issue.field ? `.${issue.field}` : ''}: ${issue.message}`;
}
