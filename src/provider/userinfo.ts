import type { Context, Next } from 'koa';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type { ConcordSettings } from '../config/index.ts';
import type { KeyManager } from '../keys/index.ts';
import type { Registry } from '../participants/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { AccountStore } from './accounts.ts';
import { claimsForScopes } from './claims.ts';
import type { userinfoDPoP } from './dpop.ts';

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

/**
 * Userinfo for Concord's JWT access tokens. oidc-provider's own userinfo accepts only opaque
 * tokens, and every Concord access token is an RFC 9068 JWT; a token whose audience is Concord
 * itself (no `resource` asked for) is what userinfo accepts, as Keycloak does. The claims are those
 * of the token's session (found by the client's `sid` in the token): another device's login of the
 * same user has its own. A token from before per-session state gets the account's last login's.
 */
export function jwtUserinfo(deps: {
  settings: ConcordSettings;
  keys: KeyManager;
  accounts: AccountStore;
  sessions: Sessions;
  registry: Registry;
  pairwiseAccount: (clientId: string, sub: string) => Promise<string | undefined>;
  /** RFC 9449 at /me: DPoP-bound tokens only with their proof (dpop.ts). */
  dpop: ReturnType<typeof userinfoDPoP>;
}) {
  const { settings, keys, accounts, sessions, registry } = deps;
  let cached: { fingerprint: string; jwks: ReturnType<typeof createLocalJWKSet> } | undefined;
  const jwks = () => {
    const set = keys.keySet();
    if (cached?.fingerprint !== set.fingerprint) {
      const publicKeys = set.jwks.keys.map((k) => Object.fromEntries(PUBLIC_MEMBERS.filter((m) => k[m] !== undefined).map((m) => [m, k[m]])) as JWK);
      cached = { fingerprint: set.fingerprint, jwks: createLocalJWKSet({ keys: publicKeys }) };
    }
    return cached.jwks;
  };

  const refuse = (ctx: Context, status: number, error: string, description: string) => {
    ctx.status = status;
    ctx.set('WWW-Authenticate', `Bearer realm="${settings.issuer}", error="${error}", error_description="${description}"`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { error, error_description: description };
  };

  return async function userinfo(ctx: Context, next: Next) {
    if ((ctx.state.route as { name?: string } | undefined)?.name !== 'userinfo' || (ctx.method !== 'GET' && ctx.method !== 'POST')) return next();
    const header = ctx.get('authorization');
    const scheme = /^DPoP /i.test(header) ? 'DPoP' : 'Bearer';
    const token = /^(Bearer|DPoP) /i.test(header) ? header.slice(scheme.length + 1).trim() : '';
    if (!token) return refuse(ctx, 401, 'invalid_token', 'no access token provided');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks(), {
        issuer: settings.issuer,
        audience: settings.issuer,
        typ: 'at+jwt',
        algorithms: ['ES256', 'EdDSA', 'RS256'],
        requiredClaims: ['sub', 'client_id', 'exp'],
      }));
    } catch {
      return refuse(ctx, 401, 'invalid_token', 'invalid access token');
    }
    const unbound = await deps.dpop.check(ctx, scheme, token, payload.cnf);
    if (unbound) return deps.dpop.refuse(ctx, unbound);
    const scopes = new Set(String(payload.scope ?? '').split(' '));
    if (!scopes.has('openid')) return refuse(ctx, 403, 'insufficient_scope', 'access token missing openid scope');
    const sub = String(payload.sub);
    const clientId = String(payload.client_id);
    const accountId = registry.client(clientId)?.subject_type === 'pairwise' ? await deps.pairwiseAccount(clientId, sub) : sub;
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    let account: { participantId: string; claims: Record<string, unknown> } | undefined;
    if (accountId && sid) {
      // The session this token was issued in: the one whose part for this client has the token's sid.
      account = (await sessions.ofAccount(accountId)).find((s) => s.clients.some((c) => c.clientId === clientId && c.sid === sid));
      if (!account) return refuse(ctx, 401, 'invalid_token', 'the session of this access token has ended');
    } else if (accountId) {
      account = await accounts.find(accountId);
    }
    const participant = account && registry.participant(account.participantId);
    if (!account || !participant?.config.enabled) return refuse(ctx, 401, 'invalid_token', 'associated account not found');
    const released = claimsForScopes(scopes);
    const all: Record<string, unknown> = { ...account.claims, idp: account.participantId };
    const body: Record<string, unknown> = { sub };
    for (const name of released) if (name !== 'sub' && all[name] !== undefined) body[name] = all[name];
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  };
}
