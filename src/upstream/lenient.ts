import { UpstreamError } from './errors.ts';

/**
 * Lenient where it is harmless, strict where it matters. Real IdPs deviate from RFC 6749 5.1 in
 * ways that change nothing Concord relies on; those are made good here, before openid-client reads
 * the answer, and everything about signatures, issuers, audiences, nonces, state and PKCE is left
 * to the strict checks that follow. A 2xx answer Concord cannot use at all is refused here as not
 * compatible (`upstream_misconfigured`), so it is never reported as a failed security check.
 *
 *   - `token_type` missing, or in another case (`bearer`, `BEARER`): Bearer; Concord sends the
 *     access token only to the same IdP's userinfo endpoint, as a Bearer token (RFC 6750);
 *   - `expires_in` as a string (`"3600"`): read as a number; unreadable: left out (the access token is
 *     then not kept for a re-check at userinfo, whose lifetime would be unknown);
 *   - a JSON body sent with another content type: read as JSON.
 *
 * Error answers (non-2xx) pass untouched: openid-client reads their OAuth `error`.
 */
export async function lenientTokenResponse(response: Response, participantId: string, options: { idTokenRequired: boolean } = { idTokenRequired: true }): Promise<Response> {
  if (response.status < 200 || response.status >= 300) return response;
  const incompatible = (why: string) => new UpstreamError('upstream_misconfigured', `token endpoint answer is not usable: ${why}`, { participantId });
  let body: unknown;
  try {
    body = JSON.parse(await response.text());
  } catch {
    throw incompatible(`HTTP ${response.status} with a body that is not JSON`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw incompatible('not a JSON object');
  const json = body as Record<string, unknown>;
  if (typeof json.access_token !== 'string' || json.access_token.length === 0) throw incompatible('no access_token');
  // A refresh may answer without one (OIDC Core 12.2); a login may not.
  if (options.idTokenRequired && (typeof json.id_token !== 'string' || json.id_token.length === 0)) throw incompatible('no id_token (is the openid scope allowed for Concord’s client?)');

  if (json.token_type === undefined || json.token_type === null) json.token_type = 'Bearer';
  if (typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'bearer') {
    throw incompatible(`token_type ${JSON.stringify(json.token_type).slice(0, 40)}: Concord uses Bearer tokens`);
  }
  if (typeof json.expires_in === 'string') {
    const seconds = Number(json.expires_in.trim());
    if (json.expires_in.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) json.expires_in = seconds;
    else delete json.expires_in;
  } else if (json.expires_in !== undefined && (typeof json.expires_in !== 'number' || !Number.isFinite(json.expires_in) || json.expires_in < 0)) {
    delete json.expires_in;
  }

  const headers = new Headers(response.headers);
  headers.set('content-type', 'application/json');
  headers.delete('content-length');
  return new Response(JSON.stringify(json), { status: response.status, statusText: response.statusText, headers });
}
