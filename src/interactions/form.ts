import type { Context } from 'koa';
import { ConcordError } from '../errors.ts';

const MAX_FORM_BYTES = 16 * 1024;

/** Reads a small urlencoded form. Oversized or other bodies are refused before anything else happens. */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new ConcordError('invalid_request', 'expected a form (application/x-www-form-urlencoded)', { status: 415 });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new ConcordError('invalid_request', 'form too large', { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
