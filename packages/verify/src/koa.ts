import { createBearerAuthenticator, isRefusal, type BearerMiddlewareOptions } from './http.ts';
import type { ConcordAccessTokenClaims, Verifier, VerifierOptions } from './types.ts';

/**
 * What this middleware needs of a Koa context. Declared here rather than imported from koa so a
 * service that does not use Koa needs no Koa types; a real `Koa.Context` fits.
 */
export interface KoaContextLike {
  get(field: string): string;
  method: string;
  /** Scheme and Host the request reached (both follow `app.proxy`): DPoP's `htu` starts with them. */
  protocol: string;
  host: string;
  /** Path and query as requested, before any router mount stripped a prefix. */
  originalUrl: string;
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  type: string;
  state: object;
}

/** The state the middleware adds: type a Koa app or router with it, `new Koa<ConcordState>()`. */
export interface ConcordState {
  concord: ConcordAccessTokenClaims;
}

export type ConcordKoaMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;

/**
 * Koa middleware: verifies the access token (`Bearer`, or `DPoP` with its proof: RFC 9449 §7), puts its claims on `ctx.state.concord` and calls the
 * next middleware; otherwise answers 401 / 403 / 503 with a WWW-Authenticate challenge (RFC 6750,
 * RFC 9449 §7.1: `DPoP error="invalid_dpop_proof"|"use_dpop_nonce"|"invalid_token", algs="..."`).
 */
export function concordKoa(verifier: Verifier | VerifierOptions, options?: BearerMiddlewareOptions): ConcordKoaMiddleware {
  const { authenticate } = createBearerAuthenticator(verifier, options);
  return async function concordBearer(ctx, next) {
    const header = ctx.get('authorization');
    const dpop = ctx.get('dpop');
    const result = await authenticate({
      authorization: header === '' ? undefined : header,
      dpop: dpop === '' ? undefined : dpop,
      method: ctx.method,
      origin: `${ctx.protocol}://${ctx.host}`,
      path: ctx.originalUrl,
    });
    if (isRefusal(result)) {
      ctx.status = result.status;
      if (result.challenge !== undefined) ctx.set('WWW-Authenticate', result.challenge);
      if (result.dpopNonce !== undefined) ctx.set('DPoP-Nonce', result.dpopNonce);
      if (result.body !== undefined) {
        ctx.type = 'application/json';
        ctx.body = result.body;
      }
      return;
    }
    (ctx.state as { concord?: ConcordAccessTokenClaims }).concord = result;
    await next();
  };
}
