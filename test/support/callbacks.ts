import type { CallbackInput } from '../../src/upstream/index.ts';

/** The callback a browser makes by following a redirect to `url` (response_mode=query). */
export function callbackFrom(url: URL): CallbackInput {
  return { method: 'GET', query: new URLSearchParams(url.search), body: new URLSearchParams() };
}

/** The callback a browser makes by posting `form` to the redirect URI (response_mode=form_post). */
export function postedCallback(form: Record<string, string>): CallbackInput {
  return { method: 'POST', query: new URLSearchParams(), body: new URLSearchParams(form) };
}
