import { HELD_LOGIN } from '../sessions/index.ts';
import type { Adapter, AdapterPayload } from '../store/index.ts';

/**
 * Models stored without their `jti`, the id they are stored under: those oidc-provider finds by id
 * alone (Grant, Interaction), and the Session, also found by uid, whose id the store's findByUid
 * gives back as `jti` (its uid index names it).
 */
const FOUND_BY_ID = new Set(['Grant', 'Interaction', 'Session']);

/**
 * What a refresh token holds as oidc-provider first issues it, from a code (RefreshToken model,
 * grants/authorization_code.js), and what these fields are then: left out when so (a refresh token
 * lives for weeks: 59 bytes of each live session's), put back on read. `iiat` (when the first of a
 * rotating chain was issued) is its `iat` until the first rotation; oidc-provider itself takes `iat`
 * for a missing `iiat`, and 0 for missing `rotations`, so a record without them reads the same there too.
 */
const REFRESH_TOKEN_DEFAULTS = { rotations: 0, gty: 'authorization_code' } as const;

/** A refresh token's payload without the fields that say what REFRESH_TOKEN_DEFAULTS and its `iat` say. */
function compactRefreshToken(payload: AdapterPayload): AdapterPayload {
  const { rotations, gty, iiat, ...rest } = payload as AdapterPayload & { rotations?: unknown; gty?: unknown; iiat?: unknown };
  return {
    ...rest,
    ...(rotations !== REFRESH_TOKEN_DEFAULTS.rotations && rotations !== undefined ? { rotations } : {}),
    ...(gty !== REFRESH_TOKEN_DEFAULTS.gty && gty !== undefined ? { gty } : {}),
    ...(iiat !== payload.iat && iiat !== undefined ? { iiat } : {}),
  } as AdapterPayload;
}

/** Puts back what compactRefreshToken left out (in place). */
function restoreRefreshToken(payload: AdapterPayload): void {
  const p = payload as AdapterPayload & { rotations?: unknown; gty?: unknown; iiat?: unknown };
  if (p.rotations === undefined) p.rotations = REFRESH_TOKEN_DEFAULTS.rotations;
  if (p.gty === undefined) p.gty = REFRESH_TOKEN_DEFAULTS.gty;
  if (p.iiat === undefined && p.iat !== undefined) p.iiat = p.iat;
}

/**
 * What a consumed refresh token is written again without (Adapter consume `drops`): oidc-provider
 * reads one again only to refuse its replay (grants/refresh_token.js: found ignoring expiry, its
 * client, `exp`, its x5t#S256 / jkt / attestationJkt binding, its grant, a requested scope within
 * its `scope`, its account (findAccount reads its `sessionUid`, checkSessionBinding its
 * `expiresWithSession`), then `consumed`: destroyed, the grant revoked), and the store reads its
 * `grantId`, `sessionUid`, `expiresWithSession`, `exp`. The login it carried (acr, amr, authTime,
 * claims, nonce, sid, rar), its resource and what a rotation copies (gty, iiat, rotations) and `iat`
 * are not written again: each refresh leaves its consumed token behind until that token's `exp`
 * (weeks). Named long and short (SHORT_NAMES): a token of the previous release has its long names.
 * Fields not named are kept, whatever a later oidc-provider checks first.
 */
const CONSUMED_REFRESH_TOKEN_DROPS = ['iat', 'acr', 'amr', 'authTime', 'claims', 'nonce', 'resource', 'sid', 'rar', 'gty', 'iiat', 'rotations'];

/**
 * Long-lived records (a refresh token and its Grant live for weeks) keep oidc-provider's field names
 * as one letter each: about 45 bytes of a refresh token, 25 of a Grant. Only names no layer under
 * this one reads (the store reads a token's `grantId`, `sessionUid`, `expiresWithSession`, `exp`;
 * the account index a Grant's `accountId`: sessions/oidc-index.ts). A record is written so only
 * when it has its `clientId` (every refresh token and Grant has), which then goes by `c`: a record
 * with `c` is of this form, one without it (the previous release's, with long names) reads as it is.
 */
const SHORT_NAMES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  RefreshToken: { accountId: 'a', acr: 'r', amr: 'm', authTime: 't', clientId: 'c', nonce: 'n', resource: 'u', scope: 's' },
  Grant: { clientId: 'c', openid: 'o', resources: 'r' },
};

/** Each of `fields` under its long and its short name (SHORT_NAMES of `name`). */
const underBothNames = (name: string, fields: readonly string[]): readonly string[] => [
  ...fields,
  ...fields.flatMap((field) => SHORT_NAMES[name]?.[field] ?? []),
];

/**
 * A refresh token's `resource` and a Grant's `resources` name the issuer (Concord's own userinfo) as
 * a rule, 20 to 60 characters: a refresh token's `u` is absent when its resource is the issuer (and
 * `0` when it has none), a Grant's resource `''` is the issuer (no resource indicator is empty: RFC
 * 8707 2, an absolute URI). A Grant's `r` is left out when it is the issuer alone with the Grant's
 * OpenID scope (as every login's Grant is: about 30 bytes), and `0` when the Grant has none.
 */
function shorten(name: string, payload: AdapterPayload, issuer: string): AdapterPayload {
  const names = SHORT_NAMES[name];
  if (names === undefined || typeof payload.clientId !== 'string') return payload;
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(payload)) out[names[field] ?? field] = value;
  if (name === 'RefreshToken') {
    if (out.u === issuer) delete out.u;
    else if (out.u === undefined) out.u = 0;
  } else if (out.r === undefined) {
    out.r = 0;
  } else if (out.r !== null && typeof out.r === 'object' && issuer in out.r) {
    const { [issuer]: own, ...others } = out.r as Record<string, unknown>;
    if (Object.keys(others).length === 0 && typeof own === 'string' && own === openidScope(out.o)) delete out.r;
    else out.r = { '': own, ...others };
  }
  return out as AdapterPayload;
}

/** A Grant's OpenID scope (`openid.scope`), when it is a string. */
const openidScope = (openid: unknown): string | undefined => {
  const scope = openid !== null && typeof openid === 'object' ? (openid as { scope?: unknown }).scope : undefined;
  return typeof scope === 'string' ? scope : undefined;
};

/** Puts back what shorten() shortened (in place: every find parses its own payload). */
function lengthen(name: string, payload: AdapterPayload, issuer: string): void {
  const names = SHORT_NAMES[name];
  if (names === undefined || !('c' in payload)) return;
  const p = payload as Record<string, unknown>;
  if (name === 'RefreshToken') {
    if (p.u === undefined) p.u = issuer;
    else if (p.u === 0) delete p.u;
  } else if (p.r === undefined) {
    const scope = openidScope(p.o);
    if (scope !== undefined) p.r = { [issuer]: scope };
  } else if (p.r === 0) {
    delete p.r;
  } else if (p.r !== null && typeof p.r === 'object' && '' in p.r) {
    const { '': own, ...others } = p.r as Record<string, unknown>;
    p.r = { [issuer]: own, ...others };
  }
  for (const [field, short] of Object.entries(names)) {
    if (!(short in p)) continue;
    p[field] = p[short];
    delete p[short];
  }
}

/**
 * oidc-provider's records without what their place in the store already says: `kind`, the model's
 * name (every record an adapter holds is of its model; oidc-provider takes the model's name when a
 * payload has none), and, for the models found by id alone (Grant, Interaction), `jti`, which is the
 * id. Both are put back on read, so oidc-provider gets the payload it saved. An Interaction is
 * written twice and read five times in a login: that is about 70 bytes each time. Records written
 * with them (before) read as they are.
 *
 * A Session leaves out its `jti` too (51 bytes of each live session's, for its 8 hours): found by id,
 * it is put back here; found by uid, the store's findByUid puts it back (Adapter findByUid in
 * store/redis.ts and memory.ts: the id its uid index names). Bearer models
 * (codes, tokens) are stored without their `jti` already (hashed-ids.ts). An Interaction's
 * `returnTo` is, as oidc-provider builds it, the resume URL of the interaction, `{issuer}/auth/{uid}`:
 * left out when it is exactly that.
 *
 * An Interaction is also stored without its `cid` (a random correlation id oidc-provider only copies
 * into the interaction that follows in the same authorization, and makes anew when there is none:
 * nothing reads it), without its `iat` (its `exp` says when it ends; oidc-provider checks an `iat`
 * only of a payload without `exp`, and stamps a new one at each save) and without its prompt's
 * `details` when they are empty (`{}`, put back on read): about 75 bytes of each of its seven
 * writes and reads in a login.
 */
export function compactPayloads(inner: Adapter, name: string, issuer: string): Adapter {
  const refreshToken = name === 'RefreshToken';
  const dropsJti = FOUND_BY_ID.has(name);
  const resumeUrl = (id: string) => (name === 'Interaction' ? `${issuer}/auth/${id}` : undefined);
  // In place: every find gets a payload of its own from the store (parsed from JSON for it), so it
  // is completed rather than copied (the fields come last, as a copy would have them).
  const interaction = name === 'Interaction';
  const consumedDrops = refreshToken ? underBothNames(name, CONSUMED_REFRESH_TOKEN_DROPS) : undefined;
  const restore = (payload: AdapterPayload | undefined | void, id?: string): AdapterPayload | undefined => {
    if (!payload) return undefined;
    const returnTo = id !== undefined && payload.returnTo === undefined ? resumeUrl(id) : undefined;
    if (payload.kind === undefined) payload.kind = name;
    if (dropsJti && id !== undefined && payload.jti === undefined) payload.jti = id;
    if (returnTo !== undefined) payload.returnTo = returnTo;
    if (interaction) {
      restoreParams(payload, issuer);
      restorePrompt(payload);
    }
    if (refreshToken) restoreRefreshToken(payload);
    lengthen(name, payload, issuer);
    return payload;
  };
  return {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const { kind, jti, returnTo, ...all } = payload;
      const rest = interaction ? compactParams(compactInteraction(all), issuer) : all;
      const stored: AdapterPayload = {
        ...rest,
        ...(kind !== undefined && kind !== name ? { kind } : {}),
        ...(jti !== undefined && !(dropsJti && jti === id) ? { jti } : {}),
        ...(returnTo !== undefined && returnTo !== resumeUrl(id) ? { returnTo } : {}),
      };
      return inner.upsert(id, shorten(name, refreshToken ? compactRefreshToken(stored) : stored, issuer), expiresIn);
    },
    async find(id: string) {
      return restore(await inner.find(id), id);
    },
    async findByUid(uid: string) {
      return restore(await inner.findByUid(uid));
    },
    async findByUserCode(userCode: string) {
      return restore(await inner.findByUserCode(userCode));
    },
    consume: (id: string) => inner.consume(id, consumedDrops),
    destroy: (id: string) => inner.destroy(id),
    revokeByGrantId: (grantId: string) => inner.revokeByGrantId(grantId),
  };
}

/**
 * An Interaction's payload as stored: without `cid`, and without its prompt's `details` when empty
 * (see compactPayloads); and without the held login (sessions HELD_LOGIN) in its `lastSubmission`:
 * a login resumed into another prompt (consent) was bound to its session at that resume, and its
 * sealed copy (which opens only for the interaction it was sealed for) is not carried on.
 */
function compactInteraction(payload: AdapterPayload): AdapterPayload {
  const { cid: _cid, iat: _iat, ...rest } = payload;
  const last = rest.lastSubmission as Record<string, unknown> | undefined;
  if (last && typeof last === 'object' && HELD_LOGIN in last) {
    const { [HELD_LOGIN]: _held, ...submitted } = last;
    (rest as Record<string, unknown>).lastSubmission = submitted;
  }
  const prompt = rest.prompt as { details?: unknown } | undefined;
  if (prompt && typeof prompt === 'object' && isEmptyObject(prompt.details)) {
    const { details: _details, ...shown } = prompt;
    (rest as Record<string, unknown>).prompt = shown;
  }
  return rest;
}

/** Puts back an Interaction's empty prompt `details` (compactInteraction). */
function restorePrompt(payload: AdapterPayload): void {
  const prompt = payload.prompt as { details?: unknown } | undefined;
  if (prompt && typeof prompt === 'object' && prompt.details === undefined) prompt.details = {};
}

const isEmptyObject = (value: unknown): boolean => value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;

/**
 * The short names an Interaction's authorization parameters are stored under (compactParams): the
 * OAuth 2.0 / OIDC Core 3.1.2.1 parameters oidc-provider keeps, and Concord's idp_hint. None of them
 * is a name oidc-provider accepts as a parameter (all are longer than two characters), so a stored
 * `p` reads one way.
 */
const PARAM_ALIASES: Readonly<Record<string, string>> = {
  client_id: 'c',
  code_challenge: 'cc',
  code_challenge_method: 'cm',
  nonce: 'n',
  redirect_uri: 'r',
  response_type: 't',
  response_mode: 'm',
  scope: 's',
  state: 'st',
  resource: 'rs',
  login_hint: 'lh',
  idp_hint: 'ih',
  ui_locales: 'ul',
  max_age: 'ma',
  acr_values: 'av',
  prompt: 'p',
  claims: 'cl',
};
const PARAM_NAMES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(PARAM_ALIASES).map(([name, alias]) => [alias, name]));

/**
 * An Interaction's authorization parameters as stored: under `p`, each under its short name
 * (PARAM_ALIASES; others as they are), and a `resource` that is Concord itself (the issuer,
 * oidc-provider's default resource for a service without default_resource) as "" (no resource
 * indicator is empty: RFC 8707 2). Its names were about 110 bytes of each of an Interaction's six
 * writes and reads in a login. Left as they are when a parameter is already named like an alias.
 */
function compactParams(payload: AdapterPayload, issuer: string): AdapterPayload {
  const params = payload.params as Record<string, unknown> | undefined;
  if (!params || typeof params !== 'object' || Array.isArray(params) || 'p' in payload || Object.keys(params).some((name) => name in PARAM_NAMES)) return payload;
  const short: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) short[PARAM_ALIASES[name] ?? name] = name === 'resource' && value === issuer ? '' : value;
  const { params: _params, ...rest } = payload;
  return { ...rest, p: short } as AdapterPayload;
}

/** Puts back an Interaction's parameters stored under `p` (compactParams), in place; one stored as `params` (before) is as it was. */
function restoreParams(payload: AdapterPayload, issuer: string): void {
  const short = (payload as { p?: unknown }).p;
  if (payload.params !== undefined || short === null || typeof short !== 'object' || Array.isArray(short)) return;
  const params: Record<string, unknown> = {};
  for (const [alias, value] of Object.entries(short as Record<string, unknown>)) {
    const name = PARAM_NAMES[alias] ?? alias;
    params[name] = name === 'resource' && value === '' ? issuer : value;
  }
  delete (payload as { p?: unknown }).p;
  payload.params = params;
}
