import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPublicAddress, nonPublicAddresses } from '../../src/upstream/addresses.ts';

/** Which addresses Concord calls for a participant without allowPrivateNetwork. */
describe('upstream addresses', () => {
  it('tells public addresses from loopback, private, link-local and reserved ones', () => {
    const notPublic = [
      '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '255.255.255.255', '192.0.2.10',
      '::', '::1', 'fe80::1', 'fd00::1', 'fc12:3456::1', 'ff02::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', '64:ff9b::a00:1',
      'not-an-address',
    ];
    const isPublic = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.8.8', '64:ff9b::808:808'];
    for (const address of notPublic) assert.equal(isPublicAddress(address), false, address);
    for (const address of isPublic) assert.equal(isPublicAddress(address), true, address);
  });

  it('resolves host names, and reads IP literals as they are', async () => {
    assert.ok((await nonPublicAddresses(new URL('https://localhost:8443/jwks'))).length > 0, 'localhost is loopback');
    assert.deepEqual(await nonPublicAddresses(new URL('https://[::1]:8443/')), ['::1']);
    assert.deepEqual(await nonPublicAddresses(new URL('https://169.254.169.254/latest/meta-data/')), ['169.254.169.254']);
    assert.deepEqual(await nonPublicAddresses(new URL('https://8.8.8.8/')), []);
    // A name that does not resolve gets no verdict here: the call fails as unreachable.
    assert.deepEqual(await nonPublicAddresses(new URL('https://does-not-exist.invalid/')), []);
  });
});
