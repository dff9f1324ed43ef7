import { LIMITS } from './limits.ts';

export interface RegexSpec {
  pattern: string;
  ignoreCase?: boolean;
  /** On a match, the rule yields this, with `$1`, `$<name>`, `$&` filled in from the match. */
  extract?: string;
  /** Every match is replaced (JavaScript `replace` syntax: `$1`, `$<name>`, `$&`, `$$`). */
  replace?: string;
}

/** Yields the transformed value, or undefined (no match, or a value too long to be matched safely). */
export type CompiledRegex = (value: string) => string | undefined;

export interface RegexIssue {
  field: string;
  message: string;
}

/**
 * Patterns use JavaScript's backtracking engine, so the worst inputs of some patterns take exponential
 * time. What is refused here, before compiling: patterns longer than LIMITS.regexPattern, backreferences
 * and lookaround (neither has a linear-time equivalent), repetition counts above LIMITS.regexRepeat, and a
 * repeated group that itself holds a quantifier or an alternation (`(a+)+`, `(a|ab)*`, `(a?){20}`): the
 * shapes behind exponential backtracking. Not refused: polynomial cases such as `\d*\d*\d*x`; they are
 * bounded by matching only values of at most LIMITS.regexInput characters.
 */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length > LIMITS.regexPattern) return `a pattern has at most ${LIMITS.regexPattern} characters`;
  const groups: { quantified: boolean; alternation: boolean }[] = [{ quantified: false, alternation: false }];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    let group: { quantified: boolean; alternation: boolean } | undefined;
    if (c === '\\') {
      const d = pattern[i + 1] ?? '';
      if (/[1-9]/.test(d) || (d === 'k' && pattern[i + 2] === '<')) return 'backreferences are not supported';
      i += 2;
      // \p{..}, \u{..}: the braces belong to the escape, not to a quantifier.
      if ('pPu'.includes(d) && pattern[i] === '{') {
        const end = pattern.indexOf('}', i);
        i = end === -1 ? pattern.length : end + 1;
      }
    } else if (c === '[') {
      i = classEnd(pattern, i);
    } else if (c === '(') {
      if (/^\(\?<?[=!]/.test(pattern.slice(i, i + 4))) return 'lookahead and lookbehind are not supported';
      if (pattern[i + 1] === '?' && pattern[i + 2] !== ':' && pattern[i + 2] !== '<') return 'only (...), (?:...) and (?<name>...) groups are supported';
      groups.push({ quantified: false, alternation: false });
      i++;
      continue;
    } else if (c === ')') {
      group = groups.length > 1 ? groups.pop() : undefined;
      i++;
    } else if (c === '|') {
      groups[groups.length - 1]!.alternation = true;
      i++;
      continue;
    } else {
      i++;
    }
    const quantifier = readQuantifier(pattern, i);
    const parent = groups[groups.length - 1]!;
    if (group) {
      parent.quantified ||= group.quantified;
      parent.alternation ||= group.alternation;
    }
    if (!quantifier) continue;
    if ((Number.isFinite(quantifier.max) && quantifier.max > LIMITS.regexRepeat) || quantifier.min > LIMITS.regexRepeat) return `repetition counts are at most ${LIMITS.regexRepeat}`;
    if (group && quantifier.max > 1 && group.quantified) return 'a repeated group cannot hold a quantifier (nested quantifiers can take exponential time)';
    if (group && quantifier.max > 1 && group.alternation) return 'a repeated group cannot hold an alternation (use a character class, e.g. [ab]+, instead of (a|b)+)';
    parent.quantified = true;
    i = quantifier.end;
  }
  return undefined;
}

function classEnd(pattern: string, open: number): number {
  for (let j = open + 1; j < pattern.length; j++) {
    if (pattern[j] === '\\') j++;
    else if (pattern[j] === ']') return j + 1;
  }
  return pattern.length;
}

function readQuantifier(pattern: string, i: number): { end: number; min: number; max: number } | undefined {
  const c = pattern[i];
  let result: { end: number; min: number; max: number } | undefined;
  if (c === '*') result = { end: i + 1, min: 0, max: Infinity };
  else if (c === '+') result = { end: i + 1, min: 1, max: Infinity };
  else if (c === '?') result = { end: i + 1, min: 0, max: 1 };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i, i + 24));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    result = { end: i + m[0].length, min, max };
  }
  if (result && pattern[result.end] === '?') result.end++;
  return result;
}

type Part = string | { group: number } | { name: string } | { before: true } | { after: true } | { whole: true };

export function compileRegex(spec: RegexSpec): CompiledRegex | RegexIssue[] {
  const problem = patternProblem(spec.pattern);
  if (problem) return [{ field: 'regex.pattern', message: problem }];
  const flags = spec.ignoreCase ? 'iu' : 'u';
  let re: RegExp;
  let groupCount: number;
  let names: Set<string>;
  try {
    re = new RegExp(spec.pattern, flags);
    const empty = new RegExp(`(?:${spec.pattern})|`, flags).exec('')!;
    groupCount = empty.length - 1;
    names = new Set(Object.keys(empty.groups ?? {}));
  } catch (error) {
    return [{ field: 'regex.pattern', message: `not a valid regular expression: ${(error as Error).message}` }];
  }
  const limit = LIMITS.regexInput;

  if (spec.replace !== undefined) {
    const parsed = parseReplacement(spec.replace, groupCount, names);
    if (typeof parsed === 'string') return [{ field: 'regex.replace', message: parsed }];
    const global = new RegExp(spec.pattern, `${flags}g`);
    const replacement = spec.replace;
    return (value) => (value.length > limit ? undefined : value.replace(global, replacement));
  }
  if (spec.extract !== undefined) {
    const parts = parseReplacement(spec.extract, groupCount, names);
    if (typeof parts === 'string') return [{ field: 'regex.extract', message: parts }];
    return (value) => {
      if (value.length > limit) return undefined;
      const match = re.exec(value);
      return match ? expand(parts, match) : undefined;
    };
  }
  return (value) => (value.length <= limit && re.test(value) ? value : undefined);
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

function expand(parts: Part[], match: RegExpExecArray): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') out += part;
    else if ('group' in part) out += match[part.group] ?? '';
    else if ('name' in part) out += match.groups?.[part.name] ?? '';
    else if ('whole' in part) out += match[0];
    else if ('before' in part) out += match.input.slice(0, match.index);
    else out += match.input.slice(match.index + match[0].length);
  }
  return out;
}
