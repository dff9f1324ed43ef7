import { ConcordError } from '../errors.ts';

export interface ConfigIssue {
  /** The file, or `environment` for CONCORD_* variables. */
  source: string;
  /** Dotted path of the field, empty for the whole document. */
  field: string;
  message: string;
}

/** A configuration that cannot be used; its message lists every issue, one a line, for a person to fix. */
export class ConfigError extends ConcordError {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const lines = issues.map((i) => `  ${i.source}${i.field ? ` (${i.field})` : ''}: ${i.message}`);
    super('invalid_config', `invalid configuration:\n${lines.join('\n')}`, { status: 422, expose: true });
    this.issues = issues;
  }
}
