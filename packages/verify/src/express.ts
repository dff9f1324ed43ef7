import { createBearerAuthenticator, isRefusal, type BearerMiddlewareOptions } from './http.ts';
import type { ConcordAccessTokenClaims, Verifier, VerifierOptions } from './types.ts';

declare global {
  // Adds `req.concord` to Express's Request type, as passport does for `req.user`. Harmless where
  // Express is not used: it only declares an interface.
  namespace Express {
    interface Request {
      /** Claims of the verified Concord access token, set by `concordExpress()`. */
      concord?: ConcordAccessTokenClaims;
    }
  }
}

/**
 * What this middleware needs of a request and response. Declared here rather than imported from
 * express so services not using Express need no Express types; Express's (and node:http's) fit.
 */
export interface ExpressRequestLike {
  headers: { authorization?: string | undefined; dpop?: string | string[] | undefined; host?: string | undefined };
  method?: string | undefined;
  /** Express's (follows `trust proxy`); absent (node:http), "http". */
  protocol?: string | undefined;
  /** Express's path and query before any mount point was stripped; absent, `url`. */
  originalUrl?: string | undefined;
  url?: string | undefined;
  concord?: ConcordAccessTokenClaims;
}

export interface ExpressResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export type ConcordExpressMiddleware = (
  req: ExpressRequestLike,
  res: ExpressResponseLike,
  next: (err?: unknown) => void,
) => Promise<void>;

/**
 * Express (or connect / node:http) middleware: verifies the access token (`Bearer`, or `DPoP` with
 * its proof: RFC 9449 §7), puts its claims on
 * `req.concord` and calls `next()`; otherwise answers 401 / 403 / 503 with a WWW-Authenticate
 * challenge (RFC 6750, RFC 9449 §7.1). Behind a proxy, set Express's `trust proxy` or the
 * `origin` option, so the URL DPoP proofs are checked against is the one clients use. An unexpected error goes to `next(err)`.
 */
export function concordExpress(verifier: Verifier | VerifierOptions, options?: BearerMiddlewareOptions): ConcordExpressMiddleware {
  const { authenticate } = createBearerAuthenticator(verifier, options);
  return async function concordBearer(req, res, next) {
    let result;
    try {
      const { dpop, host } = req.headers;
      result = await authenticate({
        authorization: req.headers.authorization,
        dpop: Array.isArray(dpop) ? dpop.join(', ') : dpop,
        method: req.method ?? 'GET',
        origin: `${req.protocol ?? 'http'}://${host ?? 'localhost'}`,
        path: req.originalUrl ?? req.url ?? '/',
      });
    } catch (err) {
      next(err);
      return;
    }
    if (isRefusal(result)) {
      res.statusCode = result.status;
      if (result.challenge !== undefined) res.setHeader('WWW-Authenticate', result.challenge);
      if (result.dpopNonce !== undefined) res.setHeader('DPoP-Nonce', result.dpopNonce);
      if (result.body === undefined) {
        res.end();
      } else {
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(result.body);
      }
      return;
    }
    req.concord = result;
    next();
  };
}
