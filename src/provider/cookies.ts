import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

/**
 * The value of one of oidc-provider's own cookies in a request (`interaction`: the interaction's uid,
 * path /interaction/{uid}; `resume`: the same uid, path /auth/{uid}), verified with the provider's
 * cookie keys as oidc-provider verifies it; undefined when the request has none, or one that does
 * not verify. For checks Concord makes before oidc-provider reads the interaction.
 */
export function providerCookie(provider: Provider, req: IncomingMessage, res: ServerResponse, name: 'interaction' | 'resume'): string | undefined {
  return provider.createContext(req, res).cookies.get(provider.cookieName(name), { signed: true }) ?? undefined;
}
