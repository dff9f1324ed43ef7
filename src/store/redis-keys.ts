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
 * | {prefix}set:{key}                   | SET    | none                         |
 * | {prefix}oidc:{Model}:{id}           | STRING | expiresIn; JSON, `c{ts}|`JSON consumed (a HASH {payload, consumed} from before is still read); a code bound to its session may hold `sessionJti`, its Session's id (redis.ts) |
 * | {prefix}oidc-grant:{grantId}        | SET    | the grant's (its `exp`); the longest member's when added without the grant at hand |
 * | {prefix}oidc-uid:{Model}:{uid}      | STRING | expiresIn; -> id             |
 * | {prefix}oidc-ucode:{Model}:{code}   | STRING | expiresIn; -> id             |
 * | channel {prefix}chan:{channel}      | pub/sub| -                            |
 */

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

  uid(model: string, uid: string): string {
    return `${this.prefix}oidc-uid:${model}:${uid}`;
  }

  userCode(model: string, userCode: string): string {
    return `${this.prefix}oidc-ucode:${model}:${userCode}`;
  }
}
