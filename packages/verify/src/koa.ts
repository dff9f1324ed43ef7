import { createBearerAuthenticator, isRefusal, type BearerMiddlewareOptions } from './http.ts';
import type { ConcordAccessTokenClaims, Verifier, VerifierOptions } from './types.ts';

/**
 * What this middleware needs of a Koa context. Declared here rather than imported from koa so a
 * service that does not use Koa needs no Koa types; a real `Koa.Context` fits.
 */
export interface KoaContextLike {
  get(field: string): string;
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
 * Koa middleware: verifies the bearer token, puts its claims on `ctx.state.concord` and calls the
 * next middleware; otherwise answers 401 / 403 / 503 with a WWW-Authenticate challenge (RFC 6750).
 */
export function concordKoa(verifier: Verifier | VerifierOptions, options?: BearerMiddlewareOptions): ConcordKoaMiddleware {
  const { authenticate } = createBearerAuthenticator(verifier, options);
  return async function concordBearer(ctx, next) {
    const header = ctx.get('authorization');
    const result = await authenticate(header === '' ? undefined : header);
    if (isRefusal(result)) {
      ctx.status = result.status;
      if (result.challenge !== undefined) ctx.set('WWW-Authenticate', result.challenge);
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
