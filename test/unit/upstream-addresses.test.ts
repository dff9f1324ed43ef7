import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPublicAddress, lookupDispatcher, nonPublicLiteral, NotPublicAddress, publicOnlyDispatcher, publicOnlyLookup, type AddressLookup } from '../../src/upstream/addresses.ts';

/** Which addresses Concord calls for a participant without allowPrivateNetwork. */
describe('upstream addresses', () => {
  it('tells public addresses from loopback, private, link-local and reserved ones', () => {
    const notPublic = [
      '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.254', '192.168.1.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '255.255.255.255', '192.0.2.10',
      '::', '::1', 'fe80::1', 'fd00::1', 'fc12:3456::1', 'ff02::1', 'fec0::1', 'feff:ffff::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', '64:ff9b::a00:1', '::7f00:1', '::ffff:0:7f00:1', '2002:7f00:1::1', '2001:0:4136:e378::1',
      'not-an-address',
    ];
    const isPublic = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001::200e', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'];
    for (const address of notPublic) assert.equal(isPublicAddress(address), false, address);
    for (const address of isPublic) assert.equal(isPublicAddress(address), true, address);
  });

  it('reads IP literals in URLs as they are', () => {
    assert.equal(nonPublicLiteral(new URL('https://[::1]:8443/')), '::1');
    assert.equal(nonPublicLiteral(new URL('https://169.254.169.254/latest/meta-data/')), '169.254.169.254');
    assert.equal(nonPublicLiteral(new URL('https://8.8.8.8/')), undefined);
    assert.equal(nonPublicLiteral(new URL('https://localhost/')), undefined, 'names are checked as they are connected to');
  });

  it('answers a connection lookup in both of its shapes with the public addresses', async () => {
    const lookup = (options: { all?: boolean; family?: number }) =>
      new Promise<unknown[]>((resolve) => publicOnlyLookup('8.8.8.8', options, (err, address, family) => resolve([err, address, family])));
    assert.deepEqual(await lookup({ all: true }), [null, [{ address: '8.8.8.8', family: 4 }], undefined]);
    assert.deepEqual(await lookup({}), [null, '8.8.8.8', 4]);
    const [err] = await new Promise<unknown[]>((resolve) => publicOnlyLookup('127.0.0.1', { all: true }, (...args) => resolve(args)));
    assert.ok(err instanceof NotPublicAddress);
  });

  it('connects to a name only through its public addresses: localhost gets no connection', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const refused = await fetch(`http://localhost:${port}/`, { dispatcher: publicOnlyDispatcher() } as RequestInit).then(
        () => undefined,
        (err: { cause?: unknown }) => err.cause,
      );
      assert.ok(refused instanceof NotPublicAddress, `expected NotPublicAddress, got ${String(refused)}`);
      assert.match(refused.message, /localhost is at .*127\.0\.0\.1|localhost is at ::1/);
      assert.equal(connections, 0);
      // The same server, without the dispatcher: reachable (the refusal above was the dispatcher's).
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
      assert.equal(connections, 1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('keeps the same guard over a lookup of its own (another resolver): a name it puts on loopback gets no connection, unless private networks are allowed', async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const asked: string[] = [];
    const lookup: AddressLookup = (hostname, _options, callback) => {
      asked.push(hostname);
      callback(null, [{ address: '127.0.0.1', family: 4 }]);
    };
    try {
      const refused = await fetch(`http://proof.example:${port}/`, { dispatcher: publicOnlyDispatcher(lookup) } as RequestInit).then(
        () => undefined,
        (err: { cause?: unknown }) => err.cause,
      );
      assert.ok(refused instanceof NotPublicAddress, `expected NotPublicAddress, got ${String(refused)}`);
      assert.equal(connections, 0);
      assert.deepEqual(asked, ['proof.example'], 'the given lookup, not the system resolver, found the address');
      const allowed = await fetch(`http://proof.example:${port}/`, { dispatcher: lookupDispatcher(lookup) } as RequestInit);
      assert.equal(await allowed.text(), 'ok');
      assert.equal(connections, 1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
