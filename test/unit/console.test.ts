import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginTally } from '../../src/console/activity.ts';
import { allowPolicy } from '../../src/console/allow.ts';
import { html, page } from '../../src/console/html.ts';
import { consoleSessions } from '../../src/console/sessions.ts';
import { MemoryStore } from '../../src/store/index.ts';

describe('console.allow', () => {
  const allow = allowPolicy('claims.idp == "ops" && "concord-admins" in claims.groups');

  it('allows the claims the expression accepts, and refuses others with the reason', () => {
    assert.deepEqual(allow({ sub: 'a', idp: 'ops', groups: ['concord-admins', 'x'] }), { allowed: true });
    assert.equal(allow({ sub: 'a', idp: 'ops', groups: ['x'] }).allowed, false);
    assert.equal(allow({ sub: 'a', idp: 'acme', groups: ['concord-admins'] }).allowed, false);
  });

  it('refuses when the expression fails (a claim missing, a wrong type) rather than allowing', () => {
    assert.equal(allow({ sub: 'a', idp: 'ops' }).allowed, false);
    assert.equal(allow({ sub: 'a', idp: 'ops', groups: 'concord-admins-and-more' }).allowed, false);
  });

  it('absent: nobody signs in through Concord', () => {
    assert.equal(allowPolicy(undefined)({ idp: 'ops' }).allowed, false);
  });

  it('an expression that does not compile, or is too costly, stops start-up with console_allow_invalid', () => {
    assert.throws(() => allowPolicy('claims.idp =='), (e: Error & { code?: string }) => e.code === 'console_allow_invalid' && /console\.allow/.test(e.message));
    assert.throws(() => allowPolicy('system.exit()'), { code: 'console_allow_invalid' });
    const heavy = `claims.groups.all(a, claims.groups.all(b, claims.groups.all(c, claims.groups.all(d, a + b + c + d != ""))))`;
    assert.throws(() => allowPolicy(heavy), /too heavy/);
  });
});

describe('console templates', () => {
  it('escape what they are given, and insert only Html as markup', () => {
    const name = '<script>alert(1)</script>"\'';
    assert.equal(html`<p title="${name}">${name}</p>`.markup, '<p title="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;</p>');
    assert.equal(html`<ul>${['a', html`<b>b</b>`]}</ul>`.markup, '<ul>a<b>b</b></ul>');
    const whole = page({ title: 'T', admin: { name: '<x>', csrf: 'tok"en' } }, html`<p>body</p>`);
    assert.match(whole, /name="_csrf" value="tok&quot;en"/);
    assert.doesNotMatch(whole, /<x>/);
    assert.doesNotMatch(whole, /<script|style=/, 'no inline script or style');
  });
});

describe('console sessions', () => {
  const cookieJar = () => {
    const set: string[] = [];
    let cookie: string | undefined;
    const ctx = {
      cookies: { get: () => cookie },
      append: (_name: string, value: string) => {
        set.push(value);
        cookie = value.split(';')[0]!.split('=')[1];
      },
    };
    return { ctx: ctx as never, set };
  };

  it('end after the idle timeout and after the absolute limit, whichever comes first; the cookie is HttpOnly, SameSite=Strict, Secure on https', async () => {
    const memory = new MemoryStore();
    const ttls: number[] = [];
    // The store's TTL is the idle timeout (refreshed by each request), never past the absolute limit.
    const store = new Proxy(memory, {
      get(target, name) {
        if (name === 'setTemp') {
          return (key: string, value: unknown, ttl: number) => {
            ttls.push(ttl);
            return target.setTemp(key, value, ttl);
          };
        }
        const value = Reflect.get(target, name) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const clock = { now: 1_000_000 };
    const sessions = consoleSessions({ store, idleSeconds: 900, maxAgeSeconds: 8 * 3600, secure: true, now: () => clock.now });
    const { ctx, set } = cookieJar();
    const created = await sessions.create(ctx, { signedInAt: clock.now, admin: { actor: 'sub-1', name: 'A', via: 'oidc' } });
    assert.match(set[0]!, /^concord_console=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure$/);
    assert.equal((await sessions.load(ctx))?.session.admin?.actor, 'sub-1');
    assert.equal(sessions.csrfMatches(created.session, created.session.csrf), true);
    assert.equal(sessions.csrfMatches(created.session, `${created.session.csrf}x`), false);
    assert.equal(sessions.csrfMatches(created.session, null), false);
    assert.deepEqual(ttls, [900]);
    clock.now += 8 * 3600 * 1000 - 600_000;
    await sessions.save(created.id, created.session);
    assert.deepEqual(ttls, [900, 600], 'ten minutes before the absolute limit, the idle timer is cut to it');
    // Past the absolute limit, a session is gone even if it was just used.
    clock.now += 600_000 + 1000;
    assert.equal(await sessions.load(ctx), undefined);
    await memory.close();
  });
});

describe('login tally', () => {
  it('counts the last hour by outcome and forgets older minutes', () => {
    const clock = { now: 0 };
    const tally = new LoginTally(() => clock.now);
    tally.observe({ participant: 'acme', client: 'rp', outcome: 'success' });
    tally.observe({ participant: 'acme', client: 'rp', outcome: 'mapping_rejected' });
    clock.now += 30 * 60_000;
    tally.observe({ participant: 'acme', client: 'rp', outcome: 'success' });
    assert.deepEqual(tally.lastHour('acme'), { success: 2, mapping_rejected: 1 });
    assert.equal(tally.lastError('acme')?.outcome, 'mapping_rejected');
    clock.now += 45 * 60_000;
    assert.deepEqual(tally.lastHour('acme'), { success: 1 });
  });
});
