import type { Context, Next } from 'koa';
import { importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import type Provider from 'oidc-provider';
import type { ConcordSettings } from '../config/index.ts';
import { SIGNING_ALGORITHMS, type KeyManager } from '../keys/index.ts';
import type { Registry } from '../participants/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { AccountStore } from './accounts.ts';
import { liveAccessToken, publishedKeys } from './access-tokens.ts';
import { claimsForScopes } from './claims.ts';
import type { userinfoDPoP } from './dpop.ts';

/**
 * Userinfo for Concord's JWT access tokens. oidc-provider's own userinfo accepts only opaque
 * tokens, and every Concord access token is an RFC 9068 JWT; a token whose audience is Concord
 * itself (no `resource` asked for) is what userinfo accepts, as Keycloak does. A token whose grant
 * was revoked (a replayed code or refresh token, logout, offboarding, revoke-sessions) is refused:
 * `liveAccessToken`, the rule introspection applies too. The claims are those of the token's session
 * (found by the client's `sid` in the token): another device's login of the same user has its own.
 * A token from before per-session state gets the account's last login's. A client registered with
 * `userinfo_signed_response_alg` gets them as a JWT signed with that algorithm (OIDC Core 5.3.2:
 * `application/jwt`, with `iss` and `aud`).
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
  /** The provider serving now (its AccessToken and Grant models). */
  provider: () => Provider;
  /** Key of the access tokens' record ids (tokenIdKey()). */
  tokenIdKey: Buffer;
}) {
  const { settings, keys, accounts, sessions, registry } = deps;
  const jwks = publishedKeys(keys);
  // Private keys imported once per kid (signed userinfo); a key that leaves is dropped with the next.
  const imported = new Map<string, Promise<CryptoKey | Uint8Array>>();
  const signingKey = (jwk: JWK) => {
    let key = imported.get(jwk.kid!);
    if (!key) {
      const { key_ops: _ops, use: _use, ...privateJwk } = jwk;
      if (imported.size > 16) imported.clear();
      key = importJWK(privateJwk, jwk.alg);
      imported.set(jwk.kid!, key);
    }
    return key;
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
        algorithms: [...SIGNING_ALGORITHMS],
        requiredClaims: ['sub', 'client_id', 'exp', 'jti'],
      }));
    } catch {
      return refuse(ctx, 401, 'invalid_token', 'invalid access token');
    }
    const unbound = await deps.dpop.check(ctx, scheme, token, payload.cnf);
    if (unbound) return deps.dpop.refuse(ctx, unbound);
    // Revoked since it was signed: its grant is gone (or its record, revoked on its own).
    if (!(await liveAccessToken(deps.provider(), deps.tokenIdKey, payload))) return refuse(ctx, 401, 'invalid_token', 'the access token was revoked');
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
      // A token from before per-session state: its account's last login's claims (records written since keep none).
      const legacy = await accounts.find(accountId);
      if (legacy?.claims) account = { participantId: legacy.participantId, claims: legacy.claims };
    }
    const participant = account && registry.participant(account.participantId);
    if (!account || !participant?.config.enabled) return refuse(ctx, 401, 'invalid_token', 'associated account not found');
    const released = claimsForScopes(scopes);
    const all: Record<string, unknown> = { ...account.claims, idp: account.participantId };
    const body: Record<string, unknown> = { sub };
    for (const name of released) if (name !== 'sub' && all[name] !== undefined) body[name] = all[name];
    ctx.set('Cache-Control', 'no-store');
    const alg = registry.client(clientId)?.userinfo_signed_response_alg;
    const jwk = alg === undefined ? undefined : keys.signingJwk(alg);
    if (!jwk) {
      ctx.body = body;
      return;
    }
    ctx.type = 'application/jwt';
    ctx.body = await new SignJWT(body)
      .setProtectedHeader({ alg: alg!, kid: jwk.kid! })
      .setIssuer(settings.issuer)
      .setAudience(clientId)
      .setIssuedAt()
      .sign(await signingKey(jwk));
  };
}
