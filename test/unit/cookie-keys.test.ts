import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import Koa from 'koa';
import { CookieKeys } from '../../src/http/cookie-keys.ts';

/**
 * A Koa app whose GET /set sets a signed cookie and GET /get reads it back: keys as Koa takes them
 * by default (an array of strings: Keygrip, through `cookies`) or as Concord's signer.
 */
async function app(keys: string[] | CookieKeys) {
  const koa = new Koa();
  koa.keys = keys;
  koa.use((ctx) => {
    if (ctx.path === '/set') ctx.cookies.set('concord_interaction', 'uid-123', { signed: true });
    else ctx.body = { value: ctx.cookies.get('concord_interaction', { signed: true }) ?? null, setCookie: ctx.response.get('set-cookie') || null };
  });
  const server = http.createServer(koa.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    /** The `name=value; name.sig=...` header a browser would send back. */
    async set(): Promise<string> {
      const res = await fetch(`${url}/set`);
      return res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    },
    async get(cookie: string): Promise<{ value: string | null; setCookie: string[] | null }> {
      return (await (await fetch(`${url}/get`, { headers: { cookie } })).json()) as { value: string | null; setCookie: string[] | null };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('cookie keys', () => {
  const ring = ['key-now-0123456789abcdef', 'key-before-0123456789abcd'];

  it('signs byte for byte as Keygrip does: cookies cross between the two both ways (a rolling upgrade)', async () => {
    const keygrip = await app(ring);
    const concord = await app(new CookieKeys(ring));
    try {
      const fromKeygrip = await keygrip.set();
      const fromConcord = await concord.set();
      assert.equal(fromConcord, fromKeygrip, 'the same name.sig');
      assert.equal((await concord.get(fromKeygrip)).value, 'uid-123');
      assert.equal((await keygrip.get(fromConcord)).value, 'uid-123');
    } finally {
      await keygrip.close();
      await concord.close();
    }
  });

  it('accepts a cookie signed with an older key of the ring and re-signs it with the first', async () => {
    const before = await app(new CookieKeys([ring[1]!]));
    const now = await app(new CookieKeys(ring));
    try {
      const cookie = await before.set();
      const read = await now.get(cookie);
      assert.equal(read.value, 'uid-123');
      assert.ok(read.setCookie?.some((c) => c.startsWith('concord_interaction.sig=')), 'a new signature with the current key');
      assert.equal(new CookieKeys(ring).index('concord_interaction=uid-123', new CookieKeys([ring[1]!]).sign('concord_interaction=uid-123')), 1);
    } finally {
      await before.close();
      await now.close();
    }
  });

  it('refuses a changed value, a changed or truncated signature, and a key not in the ring', async () => {
    const concord = await app(new CookieKeys(ring));
    try {
      const cookie = await concord.set();
      assert.equal((await concord.get(cookie.replace('uid-123', 'uid-124'))).value, null, 'another value');
      const sig = /concord_interaction\.sig=([^;]+)/.exec(cookie)![1]!;
      const flipped = `${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`;
      assert.equal((await concord.get(cookie.replace(sig, flipped))).value, null, 'another signature');
      assert.equal((await concord.get(cookie.replace(sig, sig.slice(0, -2)))).value, null, 'a shorter signature');
      const other = await app(new CookieKeys(['some-other-key-0123456789']));
      try {
        assert.equal((await concord.get(await other.set())).value, null, 'signed with a key not in the ring');
      } finally {
        await other.close();
      }
    } finally {
      await concord.close();
    }
    const keys = new CookieKeys(ring);
    assert.equal(keys.index('a=b', ''), -1);
    assert.equal(keys.index('a=b', undefined as unknown as string), -1);
    assert.equal(keys.verify('a=b', keys.sign('a=b')), true);
    assert.throws(() => new CookieKeys([]), /no key/);
  });
});
