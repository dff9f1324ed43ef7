/**
 * oidc-provider 9's own router (lib/helpers/router.js; the package has no `exports` map, so the file
 * can be imported). Concord uses it, not a copy of its rules, to know which route oidc-provider will
 * dispatch a request to: case-insensitive segments, one trailing slash ignored.
 */
declare module 'oidc-provider/lib/helpers/router.js' {
  type Middleware = (ctx: unknown, next: () => Promise<unknown>) => unknown;
  export default class Router {
    get(name: string, path: string, ...middleware: Middleware[]): this;
    post(name: string, path: string, ...middleware: Middleware[]): this;
    put(name: string, path: string, ...middleware: Middleware[]): this;
    delete(name: string, path: string, ...middleware: Middleware[]): this;
    options(name: string, path: string, ...middleware: Middleware[]): this;
    match(method: string, path: string): { route: { name: string; path: string }; params: Record<string, string> } | undefined;
  }
}

/**
 * oidc-provider 9's server challenges (lib/helpers/challenge.js): the DPoP nonces its /token issues
 * (`new ServerChallenge(nonceSecret, 'DPoP')`). Concord's /me accepts the same nonces through it.
 */
declare module 'oidc-provider/lib/helpers/challenge.js' {
  export default class ServerChallenge {
    constructor(secret: Buffer, info: string);
    nextChallenge(): string;
    checkChallenge(challenge: string): boolean;
  }
}
