import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { requestLocal, type Adapter, type AdapterPayload } from '../store/index.ts';

/**
 * oidc-provider models whose id is the credential itself: whoever holds the value can redeem it
 * (a code, a refresh token, an opaque access token, a request_uri of a pushed request).
 */
export const BEARER_MODELS: ReadonlySet<string> = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'AccessToken',
  'ClientCredentials',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PushedAuthorizationRequest',
  'RegistrationAccessToken',
  'InitialAccessToken',
]);

/**
 * Each raw key as a KeyObject, made once: `createHmac` with a Buffer imports the key on every call,
 * which cost about 14 µs of the 17 µs of each hash on the token endpoint's path (3 µs with a KeyObject).
 */
const keyObjects = new WeakMap<Buffer, KeyObject>();

/** HMAC-SHA256(key, value), base64url. */
export function keyedHash(key: Buffer, value: string): string {
  let keyObject = keyObjects.get(key);
  if (keyObject === undefined) keyObjects.set(key, (keyObject = createSecretKey(key)));
  return createHmac('sha256', keyObject).update(value, 'utf8').digest('base64url');
}

/** The store key of a bearer value: `h1.` + HMAC-SHA256(key, value), base64url. */
export function hashedId(key: Buffer, value: string): string {
  return `h1.${keyedHash(key, value)}`;
}

/**
 * The mark of a JWT access token's record id (access-tokens.ts accessTokenRecordId): `at1.` and a
 * keyed hash of the token's jti, which is no bearer value. Not a character oidc-provider's own values
 * (nanoid: A-Z a-z 0-9 _ -) can hold, so no code or opaque token is ever taken for one.
 */
export const RECORD_ID_PREFIX = 'at1.';
/** The models whose records Concord keeps for its JWT access tokens (access-tokens.ts). */
const RECORD_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'ClientCredentials']);

/**
 * Stores a bearer model under a keyed hash of its value, and without the value in its payload
 * (oidc-provider keeps it as `jti`), so read access to the store (a Redis replica, a backup, a
 * MONITOR session) yields no usable code or refresh token. The key is derived from
 * CONCORD_SECRETS_KEY, which a store reader does not have; a hash without it cannot be redeemed.
 *
 * Entries written before (under the value itself) keep working until they expire: a value not found
 * under its hash is looked up as it is, and consume/destroy reach both.
 *
 * A JWT access token's record (id `at1.{hash}`, RECORD_ID_PREFIX) is stored under `{hash}`, as it
 * is: the id is a keyed hash already, and hashing it again cost an HMAC per token. That is where
 * instances of before look a value up when it is not under its hash (above), so they find these
 * records, and their destroy reaches them. Records those instances wrote, under `h1.` + the hash of
 * `{hash}`, are found, destroyed and consumed here too until they expire (at most an access token's
 * lifetime).
 */
export function hashedIdAdapter(inner: Adapter, name: string, key: Buffer): Adapter {
  if (!BEARER_MODELS.has(name)) return inner;
  const h = (id: string) => hashedId(key, id);
  /** The store id of a JWT access token's record; undefined for any other value. */
  const recordOf = RECORD_MODELS.has(name) ? (id: string) => (id.startsWith(RECORD_ID_PREFIX) ? id.slice(RECORD_ID_PREFIX.length) : undefined) : () => undefined;
  /**
   * Per request: the values this request found under their hash, and that hash (a code or refresh
   * token found, then consumed: the same hash, not computed again, and no entry under the value to reach).
   */
  const foundHashed = requestLocal(() => new Map<string, string>());
  return {
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const { jti: _value, ...stored } = payload;
      await inner.upsert(recordOf(id) ?? h(id), stored as AdapterPayload, expiresIn);
    },
    async find(id: string) {
      const record = recordOf(id);
      if (record !== undefined) {
        const stored = (await inner.find(record)) ?? (await inner.find(h(record)));
        if (stored) stored.jti = id;
        return stored;
      }
      const hashed = h(id);
      const stored = await inner.find(hashed);
      if (stored) {
        foundHashed.get()?.set(id, hashed);
        // The store's payload is this find's own (parsed for it): given its jti in place, not copied.
        stored.jti = id;
        return stored;
      }
      return inner.find(id);
    },
    findByUid: (uid: string) => inner.findByUid(uid),
    findByUserCode: (userCode: string) => inner.findByUserCode(userCode),
    async consume(id: string, drops?: readonly string[]) {
      const record = recordOf(id);
      if (record !== undefined) return void (await Promise.all([inner.consume(record, drops), inner.consume(h(record), drops)]));
      // A value this request found under its hash has no entry under the value itself (those were
      // written before hashing, and a value is stored one way): one consume, not two.
      const found = foundHashed.peek()?.get(id);
      if (found !== undefined) await inner.consume(found, drops);
      else await Promise.all([inner.consume(h(id), drops), inner.consume(id, drops)]);
    },
    async destroy(id: string) {
      const record = recordOf(id);
      if (record !== undefined) return void (await Promise.all([inner.destroy(record), inner.destroy(h(record))]));
      await Promise.all([inner.destroy(foundHashed.peek()?.get(id) ?? h(id)), inner.destroy(id)]);
    },
    revokeByGrantId: (grantId: string) => inner.revokeByGrantId(grantId),
  };
}
