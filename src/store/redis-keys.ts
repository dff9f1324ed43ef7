/**
 * Key layout of the Redis store. Every key starts with the deployment's prefix (default `concord:`).
 *
 * Every operation of the store touches a single key (or runs a Lua script on a single key), so
 * nothing ever crosses a Cluster slot. Hash tags (`{...}`) mark the keys that belong to one named
 * collection or log, so helpers kept next to them later land on the same slot.
 *
 * | key                                 | type   | TTL                          |
 * | ----------------------------------- | ------ | ---------------------------- |
 * | {prefix}rec:{collection}            | HASH   | none; field id -> JSON       |
 * | {prefix}tmp:{key}                   | STRING | the caller's                 |
 * | {prefix}ctr:{key}                   | STRING | none; INCR                   |
 * | {prefix}log:{log}                   | LIST   | none; seq = index + 1        |
 * | {prefix}set:{key}                   | HASH   | the adds'; member -> '' (a SET before: still read, added to, removed from) |
 * | {prefix}oidc:{Model}:{id}           | STRING | expiresIn; JSON, `c{ts}|`JSON consumed (a HASH {payload, consumed} from before is still read); a code bound to its session may hold `sessionJti`, its Session's id (redis.ts) |
 * | {prefix}oidc-grant:{grantId}        | HASH   | the grant's (its `exp`); the longest member's when added without the grant at hand; grantField -> '' (a SET of the members' keys before: still read) |
 * | {prefix}oidc-uid:{Model}:{uid}      | STRING | expiresIn; -> id             |
 * | {prefix}oidc-ucode:{Model}:{code}   | STRING | expiresIn; -> id             |
 * | channel {prefix}chan:{channel}      | pub/sub| -                            |
 */

/** The letters of the models a grant indexes (grantField). */
const GRANT_FIELD_OF: Readonly<Record<string, string>> = {
  AccessToken: 'A',
  AuthorizationCode: 'C',
  RefreshToken: 'R',
  DeviceCode: 'D',
  BackchannelAuthenticationRequest: 'B',
};
const MODEL_OF_GRANT_FIELD: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(GRANT_FIELD_OF).map(([model, letter]) => [letter, model]));

/** Escapes the braces of a name placed inside a hash tag, so the tag ends where we mean it to. */
export function tagged(name: string): string {
  return `{${name.replaceAll('%', '%25').replaceAll('{', '%7B').replaceAll('}', '%7D')}}`;
}

export class RedisKeys {
  readonly prefix: string;

  constructor(prefix = 'concord:') {
    this.prefix = prefix;
  }

  record(collection: string): string {
    return `${this.prefix}rec:${tagged(collection)}`;
  }

  temp(key: string): string {
    return `${this.prefix}tmp:${key}`;
  }

  counter(key: string): string {
    return `${this.prefix}ctr:${key}`;
  }

  log(log: string): string {
    return `${this.prefix}log:${tagged(log)}`;
  }

  set(key: string): string {
    return `${this.prefix}set:${key}`;
  }

  channel(channel: string): string {
    return `${this.prefix}chan:${channel}`;
  }

  oidc(model: string, id: string): string {
    return `${this.prefix}oidc:${model}:${id}`;
  }

  /** One index per grant, shared by every model (as in memory.ts): revoking it removes them all. */
  grant(grantId: string): string {
    return `${this.prefix}oidc-grant:${tagged(grantId)}`;
  }

  /**
   * A token's field in its grant's index: `{model's letter}:{id}` (`R:h1.…` for a refresh token),
   * 48 characters for a hashed id, so a small index stays a listpack (fields of at most 64 bytes,
   * Redis's hash-max-listpack-value); a model without a letter goes by its name.
   */
  grantField(model: string, id: string): string {
    return `${GRANT_FIELD_OF[model] ?? model}:${id}`;
  }

  /** The key a grant index's field names (grantField), or undefined when it names none. */
  grantFieldKey(field: string): string | undefined {
    const colon = field.indexOf(':');
    if (colon <= 0) return undefined;
    const head = field.slice(0, colon);
    return this.oidc(MODEL_OF_GRANT_FIELD[head] ?? head, field.slice(colon + 1));
  }

  uid(model: string, uid: string): string {
    return `${this.prefix}oidc-uid:${model}:${uid}`;
  }

  userCode(model: string, userCode: string): string {
    return `${this.prefix}oidc-ucode:${model}:${userCode}`;
  }
}
