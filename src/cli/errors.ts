/** A failure the CLI reports as one line on stderr, with its exit code (1 failure, 2 usage, 3 a dry-run rejection, 4 a domain not proven). */
export class CliError extends Error {
  readonly exitCode: number;
  /** The admin API's error body, printed on stdout with --json. */
  readonly body: unknown;

  constructor(message: string, exitCode = 1, body?: unknown) {
    super(message);
    this.exitCode = exitCode;
    this.body = body;
  }
}

export const usage = (message: string) => new CliError(message, 2);
