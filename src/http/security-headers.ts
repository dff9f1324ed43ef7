import type { Context, Next } from 'koa';

/**
 * Headers for every response; the CSP allows no inline script or style. `form-action` is left out
 * on purpose: browsers apply it to the redirects after a form post, and the login form's redirect
 * goes to each partner's own IdP.
 */
export function securityHeaders(options: { https: boolean }) {
  const csp = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";
  return async function setSecurityHeaders(ctx: Context, next: Next) {
    await next();
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    if (options.https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    if (ctx.response.is('html')) {
      const existing = ctx.response.get('Content-Security-Policy');
      // oidc-provider adds hashes for its own inline scripts (form_post); keep those when present.
      if (!existing) ctx.set('Content-Security-Policy', csp);
      ctx.set('X-Frame-Options', 'DENY');
      ctx.set('Cache-Control', ctx.response.get('Cache-Control') || 'no-store');
    }
  };
}
