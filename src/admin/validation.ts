import type { Context } from 'koa';
import type { z } from 'zod';
import type { MappingIssue } from '../mapping/index.ts';
import { AdminError, type FieldIssue } from './errors.ts';

/** Participant documents with long rule sets stay far below this; anything bigger is a mistake or abuse. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a JSON request body; an empty body is `undefined`. */
export async function readJson(ctx: Context): Promise<unknown> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared === 0) return undefined;
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  if (!ctx.is('application/json', '+json')) {
    throw new AdminError(415, 'unsupported_media_type', 'send the request body as application/json');
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (cause) {
    throw new AdminError(400, 'invalid_json', `the request body is not JSON: ${(cause as Error).message}`);
  }
}

const tooLarge = () => new AdminError(413, 'body_too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`);

const pathOf = (path: ReadonlyArray<PropertyKey>) => path.map(String).join('.');

/**
 * Validates with the same zod schema as the configuration files. Problems inside a participant's
 * `mapping` are reported like the mapping compiler's (rule index + field), so a client handles
 * one shape of mapping error whichever check found it.
 */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, opts: { what: string; participant?: string } = { what: 'request' }): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((i) => ({ field: pathOf(i.path), message: i.message }));
  const mappingOnly = result.error.issues.every((i) => i.path[0] === 'mapping');
  if (mappingOnly && opts.participant !== undefined) {
    const mappingIssues: MappingIssue[] = result.error.issues.map((i) => {
      const [, second, third, ...rest] = i.path;
      const inRule = second === 'rules' && typeof third === 'number';
      return {
        participant: opts.participant!,
        index: inRule ? third : null,
        field: pathOf(inRule ? rest : i.path.slice(1)),
        message: i.message,
      };
    });
    return fail('invalid_mapping', issues, mappingIssues);
  }
  return fail('invalid_request', issues, issues, opts.what);

  function fail(code: string, named: FieldIssue[], reported: Array<FieldIssue | MappingIssue>, what = 'participant'): never {
    const first = named[0]!;
    const more = named.length > 1 ? ` (and ${named.length - 1} more)` : '';
    const field = code === 'invalid_mapping' ? mappingPath(first.field) : first.field;
    const where = field ? `${field}: ` : '';
    throw new AdminError(422, code, `invalid ${code === 'invalid_mapping' ? 'mapping' : what}: ${where}${first.message}${more}`, {
      field,
      issues: reported,
    });
  }
}

/** `mapping.rules.2.regex.pattern` -> `mapping.rules[2].regex.pattern`, as mapping errors name fields. */
const mappingPath = (field: string) => field.replace(/^mapping\.rules\.(\d+)/, 'mapping.rules[$1]');

/** A positive integer query parameter, or the default. */
export function intParam(ctx: Context, name: string, fallback: number | undefined, max: number): number | undefined {
  const raw = ctx.query[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new AdminError(400, 'invalid_request', `${name}: a whole number from 1 to ${max}`, { field: name });
  }
  return value;
}
