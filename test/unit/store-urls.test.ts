import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStore } from '../../src/store/index.ts';
import { parseClusterUrl, parseSentinelUrl, redact, redisVersion, supportedRedis } from '../../src/store/redis.ts';

/** The URL forms of CONCORD_STORE that name several servers, and what may be shown of them. */
describe('store URLs', () => {
  it('reads a Sentinel URL: sentinels, master name, credentials, TLS', () => {
    assert.deepEqual(parseSentinelUrl('redis-sentinel://app:p%40ss+word@10.0.0.1:26379,[::1]:26380,sentinel-3/concord?sentinelPassword=s+p%26x&tls=true'), {
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
        { host: 'sentinel-3', port: 26379 },
      ],
      name: 'concord',
      tls: true,
      username: 'app',
      password: 'p@ss+word',
      sentinelPassword: 's+p&x',
    });
    assert.deepEqual(parseSentinelUrl('redis-sentinel://127.0.0.1:26379/mymaster'), { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster', tls: false });
  });

  it('refuses a Sentinel URL without a master name or with a bad port', () => {
    assert.throws(() => parseSentinelUrl('redis-sentinel://127.0.0.1:26379'), /master name is missing/);
    assert.throws(() => parseSentinelUrl('redis-sentinel://127.0.0.1:99999/m'), /invalid node/);
  });

  it('reads a Cluster URL as before', () => {
    assert.deepEqual(parseClusterUrl('redis-cluster://:secret@10.0.0.1:7000,10.0.0.2?tls=1'), {
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      tls: true,
      password: 'secret',
    });
  });

  it('shows no credential of a store URL in messages', () => {
    assert.equal(redact('redis://user:hunter2@redis.example:6379/0'), 'redis://***@redis.example:6379/0');
    const sentinel = redact('redis-sentinel://u:hunter2@s1:26379,s2:26379/concord?tls=true&sentinelPassword=hunter3');
    assert.doesNotMatch(sentinel, /hunter/);
    assert.match(sentinel, /s1:26379,s2:26379\/concord\?tls=true&sentinelPassword=\*\*\*/);
  });

  it('names an unknown store by its scheme only', async () => {
    await assert.rejects(createStore({ url: 'mysql://root:hunter2@db:3306' }), (err: Error) => {
      assert.match(err.message, /unknown store "mysql:\/\/\.\.\."/);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });
});

describe('Redis version', () => {
  it('reads redis_version of INFO server and accepts 7.0 and later only', () => {
    assert.equal(redisVersion('# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n'), '7.0.15');
    assert.equal(redisVersion('# Server\r\nredis_mode:standalone\r\n'), undefined);
    for (const v of ['7.0.0', '7.0.15', '7.2.4', '8.0.2', '10.0.0']) assert.equal(supportedRedis(v), true, v);
    for (const v of ['6.2.14', '6.0.20', '5.0.7', '']) assert.equal(supportedRedis(v), false, v);
  });
});
