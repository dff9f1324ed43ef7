import { readFile } from 'node:fs/promises';
import { describeSyntaxProblem, parseDocumentText } from '../config/index.ts';
import { CliError } from './errors.ts';

/** A YAML or JSON document (JSON is YAML, but a .json file gets JSON's rules); a syntax error names its line and column. */
export async function readDocument(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const parsed = parseDocumentText(text, file);
  if (parsed.ok) return parsed.value;
  throw new CliError(`${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${parsed.problems.map(describeSyntaxProblem).join('; ')}`);
}
