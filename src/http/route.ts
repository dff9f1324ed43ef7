import type { Context, Next } from 'koa';
import ProviderRouter from 'oidc-provider/lib/helpers/router.js';

/*
 * One view of the path. oidc-provider dispatches `/TOKEN`, `/Token` and `/token/` to its token route
 * (segments compared case-insensitively, one trailing slash ignored). A middleware comparing
 * `ctx.path === '/token'` would let every other spelling past its limit. So the route of a request is
 * derived once, here, by oidc-provider's own router class populated with the same paths, and every
 * middleware that decides by route reads `ctx.state.route`.
 */

/** The routes Concord's middleware decides on. oidc-provider's use its route names. */
export type RouteName =
  | 'authorization'
  | 'resume'
  | 'pushed_authorization_request'
  | 'token'
  | 'introspection'
  | 'revocation'
  | 'userinfo'
  | 'jwks'
  | 'discovery'
  | 'end_session'
  | 'end_session_confirm'
  | 'end_session_success'
  | 'interaction'
  | 'interaction_login'
  | 'interaction_consent'
  | 'interaction_abort'
  | 'interaction_callback'
  | 'broker_callback'
  | 'broker_backchannel_logout'
  | 'broker'
  | 'saml_metadata'
  | 'saml_acs'
  | 'saml_slo'
  | 'health';

export interface Route {
  name: RouteName;
  /** The route's template, e.g. `/interaction/:uid/callback`. */
  template: string;
}

/** oidc-provider's routes Concord enables (features in src/provider/index.ts), by name. */
const PROVIDER_ROUTES: ReadonlyArray<[RouteName, string]> = [
  ['authorization', 'authorization'],
  ['resume', 'resume'],
  ['pushed_authorization_request', 'pushed_authorization_request'],
  ['token', 'token'],
  ['introspection', 'introspection'],
  ['revocation', 'revocation'],
  ['userinfo', 'userinfo'],
  ['jwks', 'jwks'],
  ['end_session', 'end_session'],
  ['end_session_confirm', 'end_session_confirm'],
  ['end_session_success', 'end_session_success'],
];

/** Concord's own routes (interactions, broker, health). */
const CONCORD_ROUTES: ReadonlyArray<[RouteName, string]> = [
  ['interaction', '/interaction/:uid'],
  ['interaction_login', '/interaction/:uid/login'],
  ['interaction_consent', '/interaction/:uid/consent'],
  ['interaction_abort', '/interaction/:uid/abort'],
  ['interaction_callback', '/interaction/:uid/callback'],
  ['broker_callback', '/broker/:participantId/callback'],
  // A partner IdP's server, not a browser: JSON answers, the edge check of a form, its own budget (request-limits.ts, rate-limit.ts).
  ['broker_backchannel_logout', '/broker/:participantId/backchannel-logout'],
  ['broker', '/broker/:participantId/:action'],
  ['saml_metadata', '/saml/:participantId/metadata'],
  ['saml_acs', '/saml/:participantId/acs'],
  ['saml_slo', '/saml/:participantId/slo'],
  ['health', '/healthz'],
  ['health', '/readyz'],
];

const METHODS = ['get', 'post', 'put', 'delete', 'options'] as const;

export interface RouteTable {
  /** The route `path` dispatches to, whatever the method; undefined for paths no route serves. */
  match(path: string): Route | undefined;
}

/**
 * The route table. `pathFor` is oidc-provider's `provider.pathFor(name)`: the paths come from the
 * provider's configuration, the matching from its router.
 */
export function routeTable(pathFor: (name: string, params?: Record<string, string>) => string): RouteTable {
  const router = new ProviderRouter();
  const noop = () => undefined;
  const add = (name: RouteName, template: string) => {
    for (const method of METHODS) router[method](name, template, noop);
  };
  for (const [name, providerName] of PROVIDER_ROUTES) {
    const path = templateOf(pathFor, providerName);
    if (path !== undefined) add(name, path); // a feature that is off has no route
  }
  add('discovery', '/.well-known/openid-configuration');
  add('discovery', '/.well-known/oauth-authorization-server');
  for (const [name, template] of CONCORD_ROUTES) add(name, template);
  return {
    match(path) {
      const found = router.match('GET', path);
      return found ? { name: found.route.name as RouteName, template: found.route.path } : undefined;
    },
  };
}

/**
 * A provider route's template (`/auth/:uid` for resume). oidc-provider's pathFor builds paths, and
 * asks for the values of a template's parameters (`Missing parameters: uid`): each is given a
 * placeholder, which becomes `:name` again. Undefined for a route that does not exist.
 */
function templateOf(pathFor: (name: string, params?: Record<string, string>) => string, name: string): string | undefined {
  try {
    return pathFor(name);
  } catch (error) {
    const missing = /^Missing parameters: (.+)$/.exec((error as Error).message ?? '')?.[1]?.split(/,\s*/);
    if (!missing) return undefined;
    const params = Object.fromEntries(missing.map((param) => [param, `__${param}__`]));
    try {
      return missing.reduce((path, param) => path.replace(`__${param}__`, `:${param}`), pathFor(name, params));
    } catch {
      return undefined;
    }
  }
}

/** The request's route, set once by `routing()`; undefined for paths no route serves. */
export const routeOf = (ctx: Context): Route | undefined => ctx.state.route as Route | undefined;

/** Sets `ctx.state.route` for every later middleware. First on the public app. */
export function routing(table: RouteTable) {
  return function deriveRoute(ctx: Context, next: Next) {
    ctx.state.route = table.match(ctx.path);
    return next();
  };
}
