/*
 * Where a client may have the browser sent: its redirect and post-logout redirect URIs.
 *
 *   web clients (application_type web, the default): https; http only to a loopback host
 *     (127.0.0.0/8, [::1], localhost) unless the deployment allows http (clients.allowHttpRedirectUris)
 *   native clients (application_type native, RFC 8252 section 7): a private-use scheme named after a
 *     domain the app owns, reversed (com.example.app:/callback, section 7.1); http to a loopback IP with
 *     any port (7.3); https on a host that is not loopback (a claimed URL, 7.2)
 *   never: javascript:, data:, file:, vbscript:, blob:, about: and the like (they run or read in the
 *     browser rather than go anywhere), a fragment (RFC 6749 3.1.2), user:password@ in the URI
 *
 * The config loader and the admin API refuse a client that breaks a rule (422 at the API), and
 * Concord's own error redirects check a target again before sending a browser there.
 */

export type ApplicationType = 'web' | 'native';

/** Schemes that never name a place to send a browser back to. */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:', 'about:', 'filesystem:', 'view-source:', 'jar:', 'intent:', 'chrome:', 'ws:', 'wss:', 'ftp:', 'mailto:', 'tel:', 'sms:']);
/** RFC 8252 7.1: reverse domain name, e.g. com.example.app. */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;

/** 127.0.0.0/8, [::1] and `localhost` (RFC 8252 8.3 prefers the IP literals; both are loopback). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Why `uri` cannot be a redirect or post-logout redirect URI of a client of `applicationType`, or
 * undefined when it can. `allowHttp`: the deployment accepts http to hosts that are not loopback
 * (web clients only); undefined checks everything but that (the schema, which has no deployment).
 */
export function redirectUriProblem(uri: string, applicationType: ApplicationType, allowHttp?: boolean): string | undefined {
  const url = URL.parse(uri);
  if (!url) return 'not a URL';
  const scheme = url.protocol.toLowerCase();
  if (FORBIDDEN_SCHEMES.has(scheme)) return `the ${scheme.slice(0, -1)}: scheme cannot be a redirect URI`;
  if (uri.includes('#')) return 'a redirect URI has no fragment';
  if (url.username || url.password) return 'a redirect URI carries no user name or password';
  if (applicationType === 'web') {
    if (scheme === 'https:') return undefined;
    if (scheme !== 'http:') return `a web client's redirect URIs are https (${scheme.slice(0, -1)}: needs application_type native and a private-use scheme like com.example.app:/callback)`;
    if (isLoopbackHost(url.hostname) || allowHttp !== false) return undefined;
    return 'http only to a loopback host (127.0.0.1, [::1], localhost) unless the deployment sets clients.allowHttpRedirectUris';
  }
  if (scheme === 'http:') return isLoopbackHost(url.hostname) ? undefined : "a native client's http redirect URIs are loopback only (RFC 8252 7.3)";
  if (scheme === 'https:') return isLoopbackHost(url.hostname) ? "a native client's https redirect URIs are claimed URLs, not loopback (RFC 8252 7.2)" : undefined;
  if (!PRIVATE_USE_SCHEME.test(scheme)) return 'a private-use scheme is a reversed domain name the app owns, like com.example.app (RFC 8252 7.1)';
  return undefined;
}

/**
 * Whether Concord itself may send a browser to `uri` (an error redirect to a client's registered
 * URI): the same rules, checked again at the moment of sending, so a record that predates them or was
 * damaged in the store never becomes a redirect to somewhere dangerous.
 */
export function isSafeRedirect(uri: string, applicationType: ApplicationType = 'web', allowHttp = false): boolean {
  return redirectUriProblem(uri, applicationType, allowHttp) === undefined;
}

/**
 * Why `uri` cannot be a client's `backchannel_logout_uri` (OIDC Back-Channel Logout 1.0 2.2: absolute,
 * no fragment), or undefined when it can. Concord POSTs logout tokens there from its own servers: https,
 * or http to a loopback host, or http anywhere when the deployment sets clients.allowHttpRedirectUris
 * (`allowHttp`; undefined: the schema's check, which has no deployment).
 */
export function backchannelLogoutUriProblem(uri: string, allowHttp?: boolean): string | undefined {
  const url = URL.parse(uri);
  if (!url) return 'not a URL';
  if (uri.includes('#')) return 'a back-channel logout URI has no fragment (Back-Channel Logout 1.0 2.2)';
  if (url.username || url.password) return 'a back-channel logout URI carries no user name or password';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol !== 'http:') return 'a back-channel logout URI is https';
  if (isLoopbackHost(url.hostname) || allowHttp !== false) return undefined;
  return 'http only to a loopback host (127.0.0.1, [::1], localhost) unless the deployment sets clients.allowHttpRedirectUris';
}

/** Every problem of a client's redirect, post-logout and back-channel logout URIs, with the field it is in (`redirect_uris.0`). */
export function clientRedirectProblems(
  client: { application_type: ApplicationType; redirect_uris: readonly string[]; post_logout_redirect_uris: readonly string[]; backchannel_logout_uri?: string | undefined },
  allowHttp?: boolean,
): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    client[field].forEach((uri, i) => {
      const message = redirectUriProblem(uri, client.application_type, allowHttp);
      if (message) problems.push({ field: `${field}.${i}`, message });
    });
  }
  if (client.backchannel_logout_uri !== undefined) {
    const message = backchannelLogoutUriProblem(client.backchannel_logout_uri, allowHttp);
    if (message) problems.push({ field: 'backchannel_logout_uri', message });
  }
  return problems;
}
