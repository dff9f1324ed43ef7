import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';

/** Where and why a configuration document is not YAML (or JSON): 1-based line and column. */
export interface SyntaxProblem {
  line?: number;
  column?: number;
  /** The parser's reason, without its trailing excerpt. */
  reason: string;
}

/** A readable message: `line 3, column 7: Map keys must be unique`; never a dangling colon. */
export const describeSyntaxProblem = (problem: SyntaxProblem) =>
  `${problem.line === undefined ? '' : `line ${problem.line}, column ${problem.column ?? 1}: `}${problem.reason}`;

/** The outcome of parsing a document: its value, or every syntax problem found in it. */
export type ParsedDocument = { ok: true; value: unknown } | { ok: false; problems: SyntaxProblem[] };

/**
 * Parses a YAML or JSON document (by its file name: `.json` gets JSON's rules, the rest YAML 1.2's).
 * Every YAML problem is listed (duplicate keys included), each with where it is; a JSON document
 * stops at its first.
 */
export function parseDocumentText(text: string, file: string): ParsedDocument {
  if (file.endsWith('.json')) {
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (error) {
      const message = (error as Error).message;
      const position = /at position (\d+)/.exec(message);
      const reason = message.replace(/\s*(in JSON )?at position \d+.*$/s, '').replace(/[.:]\s*$/, '') || 'not JSON';
      if (!position) return { ok: false, problems: [{ reason }] };
      const before = text.slice(0, Number(position[1]));
      const line = before.split('\n').length;
      return { ok: false, problems: [{ line, column: before.length - before.lastIndexOf('\n'), reason }] };
    }
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length === 0) return { ok: true, value: document.toJS() };
  return {
    ok: false,
    problems: document.errors.map((error) => {
      const reason = error.message.split('\n')[0]!.replace(/\s*at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
      const at = error.linePos?.[0];
      return at ? { line: at.line, column: at.col, reason } : { reason };
    }),
  };
}

/** Reads and parses a file; a file that cannot be read throws (the caller names it). */
export async function readDocumentFile(file: string): Promise<ParsedDocument> {
  return parseDocumentText(await readFile(file, 'utf8'), file);
}
