import { RE2JS, RE2JSException, type Matcher } from 're2js';
import { LIMITS } from './limits.ts';

export interface RegexSpec {
  pattern: string;
  ignoreCase?: boolean;
  /** On a match, the rule yields this, with `$1`, `$<name>`, `$&` filled in from the match. */
  extract?: string;
  /** Every match is replaced (JavaScript `replace` syntax: `$1`, `$<name>`, `$&`, `$$`). */
  replace?: string;
}

/** Yields the transformed value, or undefined (no match, or a value too long to be matched). */
export type CompiledRegex = (value: string) => string | undefined;

export interface RegexIssue {
  field: string;
  message: string;
}

/**
 * A pattern compiled for RE2 (re2js, the JavaScript port of RE2): matching is linear in the input,
 * whatever the pattern, so there is no catastrophic backtracking to guard against. What is bounded
 * here is the cost of one match, which is at most (program size x input length) steps: patterns have
 * at most LIMITS.regexPattern characters and compile to at most LIMITS.regexProgram instructions.
 * The syntax is RE2's (github.com/google/re2/wiki/Syntax), which is JavaScript's for everything a
 * mapping needs (classes, `\d`, `\p{L}`, `(?:...)`, `(?<name>...)`), except: a code point is written
 * `\x{e9}`, not `\u00e9`, and backreferences and lookaround do not exist (refused as syntax errors).
 *
 * Returns the compiled pattern, or a message saying why the pattern is refused.
 */
export function compilePattern(pattern: string, options: { ignoreCase?: boolean } = {}): RE2JS | string {
  if (pattern.length > LIMITS.regexPattern) return `a pattern has at most ${LIMITS.regexPattern} characters`;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, options.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (error) {
    if (error instanceof RE2JSException) return `not a valid RE2 regular expression: ${error.message.replace(/^error parsing regexp: /, '')}`;
    throw error;
  }
  const size = re.programSize();
  if (size > LIMITS.regexProgram) return `the pattern is too large once compiled: ${size} instructions (at most ${LIMITS.regexProgram}); use smaller repetition counts`;
  return re;
}

/** The steps one match of `re` over `length` characters can take at most (RE2: program size x input). */
export const matchSteps = (re: RE2JS, length: number) => re.programSize() * Math.max(1, length);

type Part = string | { group: number } | { name: string } | { before: true } | { after: true } | { whole: true };

export function compileRegex(spec: RegexSpec): CompiledRegex | RegexIssue[] {
  const re = compilePattern(spec.pattern, { ignoreCase: spec.ignoreCase ?? false });
  if (typeof re === 'string') return [{ field: 'regex.pattern', message: re }];
  const groupCount = re.groupCount();
  const names = new Set(Object.keys(re.namedGroups()));
  const limit = LIMITS.regexInput;

  if (spec.replace !== undefined) {
    const parts = parseReplacement(spec.replace, groupCount, names);
    if (typeof parts === 'string') return [{ field: 'regex.replace', message: parts }];
    return (value) => (value.length > limit ? undefined : replaceAll(re, value, parts));
  }
  if (spec.extract !== undefined) {
    const parts = parseReplacement(spec.extract, groupCount, names);
    if (typeof parts === 'string') return [{ field: 'regex.extract', message: parts }];
    return (value) => {
      if (value.length > limit) return undefined;
      const matcher = re.matcher(value);
      return matcher.find() ? expand(parts, matcher, value) : undefined;
    };
  }
  return (value) => (value.length <= limit && re.test(value) ? value : undefined);
}

/** As String.prototype.replace with a global pattern: every match replaced, an empty match included. */
function replaceAll(re: RE2JS, value: string, parts: Part[]): string {
  const matcher = re.matcher(value);
  let out = '';
  let from = 0;
  while (matcher.find()) {
    out += value.slice(from, matcher.start()) + expand(parts, matcher, value);
    from = matcher.end();
  }
  return out + value.slice(from);
}

/** Parses `$1`, `$<name>`, `$&`, `` $` ``, `$'`, `$$` once, refusing references to groups the pattern lacks. */
function parseReplacement(text: string, groupCount: number, names: Set<string>): Part[] | string {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const d = text[i + 1];
    if (c !== '$' || d === undefined) {
      literal += c;
      continue;
    }
    let part: Part | undefined;
    if (d === '$') literal += '$';
    else if (d === '&') part = { whole: true };
    else if (d === '`') part = { before: true };
    else if (d === "'") part = { after: true };
    else if (d === '<') {
      const end = text.indexOf('>', i);
      if (end === -1) return `unterminated $< at position ${i}`;
      const name = text.slice(i + 2, end);
      if (!names.has(name)) return `$<${name}> names no group of the pattern`;
      parts.push(literal, { name });
      literal = '';
      i = end;
      continue;
    } else if (/[0-9]/.test(d)) {
      // As in String.prototype.replace: two digits when they name a group, else one.
      const two = text.slice(i + 1, i + 3);
      const useTwo = /^[0-9]{2}$/.test(two) && Number(two) >= 1 && Number(two) <= groupCount;
      const n = useTwo ? Number(two) : Number(d);
      if (n === 0) return '$0 is not a group; write $& for the whole match';
      if (n > groupCount) return `$${n} refers to a group the pattern does not have (it has ${groupCount})`;
      parts.push(literal, { group: n });
      literal = '';
      i += useTwo ? 2 : 1;
      continue;
    } else {
      literal += c;
      continue;
    }
    if (part) {
      parts.push(literal, part);
      literal = '';
    }
    i++;
  }
  parts.push(literal);
  return parts.filter((p) => p !== '');
}

function expand(parts: Part[], match: Matcher, input: string): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') out += part;
    else if ('group' in part) out += match.group(part.group) ?? '';
    else if ('name' in part) out += match.group(part.name) ?? '';
    else if ('whole' in part) out += match.group(0) ?? '';
    else if ('before' in part) out += input.slice(0, match.start());
    else out += input.slice(match.end());
  }
  return out;
}
