import { LIMITS } from './limits.ts';
import { parsePath, readPath, type Path } from './path.ts';

/** `{given_name} {family_name}`: placeholders are source paths; `{{` and `}}` are literal braces. */
export type Template = readonly (string | Path)[];

export function parseTemplate(source: string): Template | string {
  if (source.length > LIMITS.template) return `a template has at most ${LIMITS.template} characters`;
  const parts: (string | Path)[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '{' && source[i + 1] === '{') {
      text += '{';
      i++;
    } else if (c === '}' && source[i + 1] === '}') {
      text += '}';
      i++;
    } else if (c === '{') {
      const end = source.indexOf('}', i);
      if (end === -1) return `unterminated "{" at position ${i}`;
      const path = parsePath(source.slice(i + 1, end).trim());
      if (typeof path === 'string') return `placeholder at position ${i}: ${path}`;
      if (path.many) return `placeholder at position ${i}: [*] has no single value to insert`;
      if (text) parts.push(text);
      text = '';
      parts.push(path);
      i = end;
    } else if (c === '}') {
      return `unexpected "}" at position ${i} (write "}}" for a literal brace)`;
    } else {
      text += c;
    }
  }
  if (text) parts.push(text);
  return parts;
}

/** The filled-in template, or undefined when a placeholder is missing or not a string, number or boolean. */
export function renderTemplate(template: Template, claims: Record<string, unknown>): string | undefined {
  let out = '';
  for (const part of template) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = readPath(claims, part);
    if (typeof value === 'string') out += value;
    else if (typeof value === 'number' || typeof value === 'boolean') out += String(value);
    else return undefined;
  }
  return out;
}
