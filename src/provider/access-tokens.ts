import type { Context, Next } from 'koa';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { publicJwk, SIGNING_ALGORITHMS, type KeyManager } from '../keys/index.ts';
import type { Logger } from '../observability/index.ts';
import { requestLocal, StoreUnavailableError, type Adapter, type AdapterPayload, type Store } from '../store/index.ts';
import { keyedHash, RECORD_ID_PREFIX } from './hashed-ids.ts';

/*
 * Revocation of JWT access tokens, at the root.
 *
 * oidc-provider keeps opaque access tokens in its store, indexed by grant: when it revokes a grant
 * (a replayed code or refresh token, RFC 6749 4.1.2 and RFC 9700 4.14.2; RP-initiated logout) it
 * deletes them with the grant, and its introspection looks each one up and checks its grant. Concord's
 * access tokens are JWTs (RFC 9068), which oidc-provider signs and forgets: no record, so nothing to
 * delete and nothing to look up, and its introspection refuses them outright.
 *
 * So every JWT access token gets the record an opaque one would have (same model, same payload,
 * same grant index, same lifetime), under an id only Concord can compute from the token's `jti`
 * (a keyed hash, so the id is no bearer value: knowing a token's jti gives nothing). Everything that
 * revokes a grant, oidc-provider's own revocation or Concord's sessions ending (logout, offboarding,
 * a disabled participant, revoke-sessions), reaches these records through the grant index. Then one
 * rule says whether a token still stands, `liveAccessToken`, and both endpoints that answer about
 * tokens use it: `/me` (userinfo.ts) calls it; introspection and revocation (RFC 7662, RFC 7009) get
 * the record's id in place of the JWT, so oidc-provider's own lookup and grant check apply as they do
 * for opaque tokens.
 *
 * A client-credentials token is the exception: it has no grant, no session and no user, so nothing
 * but its own revocation (RFC 7009) or its expiry ends it, and everything its record would hold is in
 * the signed JWT. It gets no record (a store write and an HMAC less per token, issue 17): its `jti`
 * carries CLIENT_CREDENTIALS_JTI_PREFIX, and when introspection, revocation or `/me` have verified
 * such a JWT, the record oidc-provider looks up is made from its claims for that request
 * (`knowVerifiedToken`); revoking it writes a marker under the record's id until the token's `exp`
 * (`statelessClientCredentials`), which every instance sharing the store reads. A token with such a
 * `jti` was never recorded, and no other token has one (oidc-provider's own ids are nanoids, without
 * a `.`), so a login's token whose record is gone can never be taken for one. Client-credentials
 * tokens of the release before (a nanoid `jti`, a record) are found and revoked by their records as before.
 */

/** Concord's published keys as a jose key set, rebuilt when the key set changes. */
export function publishedKeys(keys: KeyManager): () => ReturnType<typeof createLocalJWKSet> {
  let cached: { fingerprint: string; jwks: ReturnType<typeof createLocalJWKSet> } | undefined;
  return () => {
    const set = keys.keySet();
    if (cached?.fingerprint !== set.fingerprint) cached = { fingerprint: set.fingerprint, jwks: createLocalJWKSet({ keys: set.jwks.keys.map(publicJwk) }) };
    return cached.jwks;
  };
}

/**
 * The id of a JWT access token's record: `at1.` + HMAC-SHA256(key, `jwt-at:` + jti), base64url. The
 * store keeps the record under the hash as it is (hashed-ids.ts RECORD_ID_PREFIX: one HMAC per token).
 */
export function accessTokenRecordId(key: Buffer, jti: string): string {
  return `${RECORD_ID_PREFIX}${keyedHash(key, `jwt-at:${jti}`)}`;
}

interface IssuedToken {
  jti: string;
  kind: string;
  grantId?: string;
  extra?: Record<string, unknown>;
  constructor: { IN_PAYLOAD: string[]; adapter: Adapter };
  [field: string]: unknown;
}

/**
 * Fields of an opaque token's payload a record leaves out: nothing reads them from it (the liveness
 * check reads client, account and grant; introspection and revocation what they answer or destroy),
 * and a record per token kept for its lifetime should be no larger than its use.
 */
const UNREAD = new Set(['gty', 'sessionUid', 'expiresWithSession']);

/** A model's payload fields a record keeps (its IN_PAYLOAD, a getter that builds the list each time, less UNREAD), once per model class. */
const recordFields = new WeakMap<object, string[]>();
function fieldsOf(model: IssuedToken['constructor']): string[] {
  let fields = recordFields.get(model);
  if (fields === undefined) recordFields.set(model, (fields = model.IN_PAYLOAD.filter((field) => !UNREAD.has(field))));
  return fields;
}

/**
 * oidc-provider's `formats.customizers.jwt`: before a JWT access token is signed, keeps its record
 * (the payload an opaque token of the same model would have but what nothing reads, UNREAD; `iat`/`exp` those of the JWT) under
 * `accessTokenRecordId(key, jti)` for as long as the token lives. Awaited by oidc-provider, so the
 * record exists before the token is handed out.
 * A client-credentials token gets no record: its `jti` is marked instead (CLIENT_CREDENTIALS_JTI_PREFIX).
 * @throws StoreUnavailableError for a token of a grant when the store is away (the request fails
 *   503, as the grant lookup would); a token without a grant is issued without its record then.
 */
export function recordJwtAccessTokens(key: Buffer, log: Logger) {
  let storeDown = false;
  return async (_ctx: unknown, token: unknown, jwt: { payload: JWTPayload }): Promise<void> => {
    const issued = token as IssuedToken;
    const { iat, exp, jti } = jwt.payload;
    if (typeof jti !== 'string' || typeof exp !== 'number') return;
    // No grant, no session, no user: the JWT is its whole record (see the top of this file).
    if (issued.kind === 'ClientCredentials' && issued.grantId === undefined) {
      jwt.payload.jti = `${CLIENT_CREDENTIALS_JTI_PREFIX}${jti}`;
      return;
    }
    const id = accessTokenRecordId(key, jti);
    const record: Record<string, unknown> = {};
    for (const field of fieldsOf(issued.constructor)) if (issued[field] !== undefined) record[field] = issued[field];
    record.jti = id;
    record.kind = issued.kind;
    record.iat = iat;
    record.exp = exp;
    if (issued.extra) record.extra = issued.extra;
    const ttl = Math.max(1, exp - Math.floor(Date.now() / 1000));
    try {
      await issued.constructor.adapter.upsert(id, record as never, ttl);
      storeDown = false;
    } catch (err) {
      // A token of a grant needs the store anyway (the grant is there). A client-credentials token
      // does not, and keeps being issued while the store is away: without its record, introspection
      // answers it inactive; it verifies offline as ever. Said once per outage, not per token.
      if (issued.grantId || !(err instanceof StoreUnavailableError)) throw err;
      if (!storeDown) log.warn({ err, kind: issued.kind }, 'store unavailable: access token issued without its record (introspection answers it inactive)');
      storeDown = true;
    }
  };
}

/** What `liveAccessToken` answers: the token's record as oidc-provider reads it. */
export interface LiveAccessToken {
  clientId: string;
  accountId?: string;
  grantId?: string;
}

/**
 * Whether the JWT access token with these claims (its signature already verified) still stands: its
 * record is there (not revoked, not expired; for a client-credentials token, made from the claims and
 * not revoked) and so is its grant, for the same client and account.
 * The rules of oidc-provider's introspection for opaque tokens (lib/actions/introspection.js), so
 * `/me` and introspection answer alike. Undefined when it does not stand.
 */
export async function liveAccessToken(provider: Provider, key: Buffer, payload: JWTPayload): Promise<LiveAccessToken | undefined> {
  const id = knowVerifiedToken(key, payload);
  const token = ((await provider.AccessToken.find(id)) ?? (await provider.ClientCredentials.find(id))) as (LiveAccessToken & { isValid: boolean }) | undefined;
  if (!token?.isValid) return undefined;
  if (token.grantId) {
    const grant = await provider.Grant.find(token.grantId, { ignoreExpiration: true });
    if (!grant || grant.isExpired || grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;
  }
  return token;
}

/**
 * Introspection (RFC 7662) and revocation (RFC 7009) of Concord's JWT access tokens. oidc-provider
 * refuses JWTs at both (`unsupported_token_type`); this hands it the token's record id instead, once
 * the JWT is verified as one of Concord's access tokens, so client authentication, the lookup, the
 * grant check, the `allowedPolicy` and the answer are oidc-provider's own. A JWT that does not verify
 * is handed on as a value no record has: introspection answers `{ "active": false }`, revocation 200
 * (RFC 7009 2.2). The JWT's `jti` goes back into an active introspection answer.
 */
export function jwtTokenEndpoints(deps: {
  issuer: string;
  keys: KeyManager;
  tokenIdKey: Buffer;
  /** The request's form as the edge check read it (urlencoded), if it read one. */
  readForm: (ctx: Context) => string | undefined;
  /** Hands oidc-provider this form instead (the edge check's replaceForm). */
  writeForm: (ctx: Context, form: string) => void;
}) {
  const jwks = publishedKeys(deps.keys);
  return async function jwtTokens(ctx: Context, next: Next): Promise<void> {
    const route = (ctx.state.route as { name?: string } | undefined)?.name;
    if ((route !== 'introspection' && route !== 'revocation') || ctx.method !== 'POST') return next();
    const raw = deps.readForm(ctx);
    if (raw === undefined) return next();
    const form = new URLSearchParams(raw);
    const tokens = form.getAll('token');
    // Not one compact JWS: oidc-provider's own checks answer (missing or repeated token, opaque tokens).
    if (tokens.length !== 1 || tokens[0]!.split('.').length !== 3) return next();
    let payload: JWTPayload | undefined;
    try {
      ({ payload } = await jwtVerify(tokens[0]!, jwks(), { issuer: deps.issuer, typ: 'at+jwt', algorithms: [...SIGNING_ALGORITHMS], requiredClaims: ['jti', 'exp'] }));
    } catch {
      payload = undefined;
    }
    const jti = payload === undefined ? undefined : String(payload.jti);
    form.set('token', payload === undefined ? 'not-an-access-token' : knowVerifiedToken(deps.tokenIdKey, payload));
    deps.writeForm(ctx, form.toString());
    await next();
    const body = (ctx as unknown as KoaContextWithOIDC).body as { active?: boolean; jti?: string } | undefined;
    if (route === 'introspection' && jti !== undefined && body?.active === true) body.jti = jti;
  };
}

/**
 * The mark of a client-credentials token's `jti` (`cc.` + oidc-provider's nanoid): a token without a
 * record. No id oidc-provider makes holds a `.`, so no other token (of this release or the one before) has it.
 */
export const CLIENT_CREDENTIALS_JTI_PREFIX = 'cc.';

/** JWT claims that are not a token's `extra` (oidc-provider's jwt format sets them from the model). */
const MODEL_CLAIMS = new Set(['jti', 'sub', 'iat', 'exp', 'authorization_details', 'scope', 'client_id', 'iss', 'aud', 'cnf']);

/** Per request: the records of the client-credentials JWTs it verified, by record id (knowVerifiedToken). */
const verifiedTokens = requestLocal(() => new Map<string, AdapterPayload>());

/**
 * The record id of a verified JWT access token (`accessTokenRecordId` of its `jti`). For a
 * client-credentials token without a record (CLIENT_CREDENTIALS_JTI_PREFIX), also makes for this
 * request the record its release before would have written: what oidc-provider's ClientCredentials
 * model keeps (clientId, aud, scope, iat, exp, extra, the DPoP or certificate thumbprint), from the
 * signed claims. `statelessClientCredentials` answers it unless the token was revoked.
 */
export function knowVerifiedToken(key: Buffer, payload: JWTPayload): string {
  const jti = String(payload.jti);
  const id = accessTokenRecordId(key, jti);
  if (!jti.startsWith(CLIENT_CREDENTIALS_JTI_PREFIX) || typeof payload.client_id !== 'string' || typeof payload.exp !== 'number') return id;
  const record: AdapterPayload = { jti: id, kind: 'ClientCredentials', clientId: payload.client_id, exp: payload.exp };
  if (typeof payload.iat === 'number') record.iat = payload.iat;
  if (payload.aud !== undefined) record.aud = payload.aud as never;
  if (typeof payload.scope === 'string') record.scope = payload.scope;
  if (payload.authorization_details !== undefined) record.rar = payload.authorization_details as never;
  const cnf = payload.cnf as { jkt?: string; 'x5t#S256'?: string } | undefined;
  if (cnf?.jkt !== undefined) record.jkt = cnf.jkt;
  if (cnf?.['x5t#S256'] !== undefined) record['x5t#S256'] = cnf['x5t#S256'];
  const extra = Object.fromEntries(Object.entries(payload).filter(([claim]) => !MODEL_CLAIMS.has(claim)));
  if (Object.keys(extra).length > 0) record.extra = extra;
  verifiedTokens.get()?.set(id, record);
  return id;
}

/** The store key of a revoked client-credentials token's marker, from its record id (`at1.` + keyed hash). */
export const revokedTokenKey = (id: string) => `revoked-at:${id.slice(RECORD_ID_PREFIX.length)}`;

/**
 * The ClientCredentials adapter: a token this request verified and knows without a record
 * (knowVerifiedToken) is found unless its revocation marker is there, and destroying it (RFC 7009
 * revocation) writes that marker until the token's `exp`. Every other id goes to `inner`: the records
 * of tokens issued by the release before, found and destroyed as ever.
 */
export function statelessClientCredentials(inner: Adapter, store: Pick<Store, 'getTemp' | 'setTemp'>): Adapter {
  return {
    upsert: (id, payload, expiresIn) => inner.upsert(id, payload, expiresIn),
    findByUid: (uid) => inner.findByUid(uid),
    findByUserCode: (userCode) => inner.findByUserCode(userCode),
    consume: (id) => inner.consume(id),
    revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
    async find(id: string) {
      const known = verifiedTokens.peek()?.get(id);
      if (known === undefined) return inner.find(id);
      if ((await store.getTemp<number>(revokedTokenKey(id))) !== undefined) return undefined;
      // oidc-provider's own copy: its model is built on what find answers.
      return { ...known };
    },
    async destroy(id: string) {
      const known = verifiedTokens.peek()?.get(id);
      if (known === undefined) return inner.destroy(id);
      await store.setTemp(revokedTokenKey(id), 1, Math.max(1, Number(known.exp) - Math.floor(Date.now() / 1000)));
    },
  };
}
