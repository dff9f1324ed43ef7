import type { Context, Next } from 'koa';

/** The policy of every page: nothing inline, no framing. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/**
 * Headers for every response; the CSP allows no inline script or style. `form-action` is left out
 * on purpose: browsers apply it to the redirects after a form post, and the login form's redirect
 * goes to each partner's own IdP.
 *
 * The CSP is set before the routes run: oidc-provider's auto-submitting pages (response_mode
 * form_post, and the logout confirmation without a session) add the SHA-256 of their one inline
 * script to an existing `script-src`. Without a CSP in place they would add nothing, and the policy
 * set afterwards would block the script and leave the browser on a blank page.
 */
function header(ctx: Context, name: string): string {
  const value = ctx.res.getHeader(name);
  return Array.isArray(value) ? value.join(', ') : value === undefined ? '' : String(value);
}

/**
 * Koa's `ctx.set(name, value)` for one string value, on the response itself: Koa 3's builds arrays
 * for every call (about 600 bytes each; the headers of every response cost 3 KB of garbage per
 * token request). Like Koa's, nothing is set once the headers are sent.
 */
export function setHeader(ctx: Context, name: string, value: string): void {
  if (!ctx.res.headersSent) ctx.res.setHeader(name, value);
}

export function securityHeaders(options: { https: boolean }) {
  return async function setSecurityHeaders(ctx: Context, next: Next) {
    setHeader(ctx, 'Content-Security-Policy', CONTENT_SECURITY_POLICY);
    await next();
    setHeader(ctx, 'X-Content-Type-Options', 'nosniff');
    setHeader(ctx, 'Referrer-Policy', 'no-referrer');
    if (options.https) setHeader(ctx, 'Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    // Read through `ctx.res`: Koa's ctx.response.get copies every header on each call.
    const existing = header(ctx, 'content-security-policy');
    if (!existing) setHeader(ctx, 'Content-Security-Policy', CONTENT_SECURITY_POLICY);
    // 'none' next to a hash oidc-provider added: the hash alone is the allow-list.
    else if (existing.includes("script-src 'none' 'sha256-")) setHeader(ctx, 'Content-Security-Policy', existing.replace("script-src 'none' 'sha256-", "script-src 'sha256-"));
    if (/^text\/html\b/i.test(header(ctx, 'content-type'))) {
      setHeader(ctx, 'X-Frame-Options', 'DENY');
      setHeader(ctx, 'Cache-Control', header(ctx, 'cache-control') || 'no-store');
    }
  };
}
