import { errors, type KoaContextWithOIDC, type ResourceServer as OidcResourceServer, type AsymmetricSigningAlgorithm } from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import { OIDC_SCOPES } from './claims.ts';

/**
 * The resource servers that let every client get tokens for them (no `clients` list): logged as a
 * warning at start-up.
 */
export function openResourceServers(settings: ConcordSettings): string[] {
  return settings.resourceServers.filter((rs) => rs.clients === undefined).map((rs) => rs.audience);
}

/**
 * Every access token is a JWT (RFC 9068) for one audience (RFC 8707). A client that names no
 * `resource` gets a token for its `default_resource`, else for Concord itself (aud = issuer),
 * which Concord's userinfo accepts. Services should ask for their own audience.
 */
export function resourceIndicators(settings: ConcordSettings, signingAlg: () => AsymmetricSigningAlgorithm) {
  const oidcScopes = OIDC_SCOPES.filter((s) => s !== 'offline_access');
  // What oidc-provider is told of each resource server is the same at every request (the settings do
  // not change while the provider lives): built once, read-only (oidc-provider copies what it keeps).
  const info = (audience: string, scopes: readonly string[], accessTokenTTL: number): OidcResourceServer =>
    Object.freeze({ accessTokenFormat: 'jwt' as const, jwt: { sign: { alg: signingAlg() } }, audience, scope: [...new Set(scopes)].join(' '), accessTokenTTL });
  const own = info(settings.issuer, oidcScopes, settings.tokens.accessTokenTtl);
  const servers = new Map(settings.resourceServers.map((rs) => [rs.audience, { clients: rs.clients, info: info(rs.audience, [...oidcScopes, ...rs.scopes], rs.accessTokenTtl ?? settings.tokens.accessTokenTtl) }]));

  return {
    enabled: true,
    useGrantedResource: () => true,
    defaultResource(_ctx: KoaContextWithOIDC, client: { default_resource?: string } & object): string {
      return (client as { default_resource?: string }).default_resource ?? settings.issuer;
    },
    getResourceServerInfo(_ctx: KoaContextWithOIDC, resource: string, client?: { clientId: string }): OidcResourceServer {
      if (resource === settings.issuer) return own;
      const server = servers.get(resource);
      if (!server) throw new errors.InvalidTarget(`unknown resource ${resource}`);
      // Only the clients the API names get tokens for it (all when it names none; see resourceServers[].clients).
      if (server.clients && !(client && server.clients.includes(client.clientId))) throw new errors.InvalidTarget(`this client may not get tokens for ${resource}`);
      return server.info;
    },
  };
}

/** Scopes clients may ask for: the OIDC ones and every resource server's. */
export function allScopes(settings: ConcordSettings): string[] {
  return [...new Set([...OIDC_SCOPES, ...settings.resourceServers.flatMap((rs) => rs.scopes)])];
}
