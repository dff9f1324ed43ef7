import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type Koa from 'koa';

/** What Koa and oidc-provider take as the signer of signed cookies: Keygrip's interface (sign, verify, index). */
export type CookieSigner = Exclude<Koa['keys'], string[]>;

/**
 * The signer of signed cookies (`name.sig`), for Koa (`app.keys`) and oidc-provider
 * (`cookies.keys`): Keygrip's interface and format, HMAC-SHA1 in base64url of `name=value` with
 * the first key, any key of the ring accepted. What `cookies` makes of a plain array of keys.
 *
 * Why not that: given an array, `cookies` builds a new Keygrip for every context (oidc-provider
 * builds a context of its own in each interactionDetails and interactionFinished), which imports
 * the key for every HMAC and compares signatures with tsscmp, a back-port for Node versions before
 * `crypto.timingSafeEqual` that draws 32 random bytes and computes two more HMAC-SHA256 with them
 * on every comparison. A login reads five signed cookies. Here the keys are KeyObjects made once
 * and the comparison is `timingSafeEqual`; the signatures are byte for byte Keygrip's, so a cookie
 * set by one instance verifies on another during a rolling upgrade, both ways.
 */
export class CookieKeys implements CookieSigner {
  readonly #keys: KeyObject[];

  /** `keys`: the ring, the signing key first (each a string, as Keygrip takes it: its UTF-8 bytes). */
  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('CookieKeys: no key');
    this.#keys = keys.map((key) => createSecretKey(Buffer.from(key, 'utf8')));
  }

  /** The signature of `data` (base64url, 27 characters) with the first key. */
  sign(data: string): string {
    return hmac(this.#keys[0]!, data);
  }

  verify(data: string, digest: string): boolean {
    return this.index(data, digest) > -1;
  }

  /** The position in the ring of the key that signed `data` as `digest`; -1 when none did. */
  index(data: string, digest: string): number {
    if (typeof digest !== 'string') return -1;
    const given = Buffer.from(digest, 'utf8');
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = Buffer.from(hmac(this.#keys[i]!, data), 'utf8');
      // The length of a signature is public (27 characters); only equal lengths are compared.
      if (given.length === expected.length && timingSafeEqual(given, expected)) return i;
    }
    return -1;
  }
}

const hmac = (key: KeyObject, data: string): string => createHmac('sha1', key).update(data).digest('base64url');
