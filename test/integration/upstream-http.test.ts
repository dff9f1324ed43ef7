import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { UpstreamError, UpstreamHttp } from '../../src/upstream/index.ts';

/**
 * UpstreamHttp, the one client of Concord's calls to partner IdPs (undici's request() underneath),
 * against a loopback server: what it sends, what openid-client gets back, its body cap and timeout.
 */
describe('UpstreamHttp', () => {
  let server: http.Server;
  let base: string;
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const path = req.url!.split('?')[0];
        if (path === '/token') {
          res.setHeader('content-type', 'application/json');
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          res.end(JSON.stringify({ access_token: 'at', token_type: 'Bearer' }));
        } else if (path === '/redirect') {
          res.writeHead(302, { location: '/token' }).end();
        } else if (path === '/big-declared') {
          res.writeHead(200, { 'content-length': 2048 }).end('x'.repeat(2048));
        } else if (path === '/big-chunked') {
          res.writeHead(200); // no content-length: chunked
          res.write('x'.repeat(600));
          setTimeout(() => res.end('x'.repeat(600)), 10);
        } else if (path === '/stall-body') {
          res.writeHead(200, { 'content-length': 100 });
          res.write('x'.repeat(10)); // and never the rest
        } else if (path === '/empty') {
          res.writeHead(204).end();
        } else {
          res.writeHead(404).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = (extra: { maxBodyBytes?: number; timeoutMs?: number; allowPrivateNetwork?: boolean } = {}) =>
    new UpstreamHttp({ participantId: 'acme', timeoutMs: extra.timeoutMs ?? 2000, allowPrivateNetwork: extra.allowPrivateNetwork ?? true, ...(extra.maxBodyBytes ? { maxBodyBytes: extra.maxBodyBytes } : {}) });

  it('sends a form as fetch did (its content type, accept, user-agent) and answers a Response with every header', async () => {
    seen.length = 0;
    const response = await client().fetch(`${base}/token`, {
      method: 'POST',
      headers: { Authorization: 'Basic YTpi' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'c d' }),
      redirect: 'manual',
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { access_token: 'at', token_type: 'Bearer' });
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
    const [request] = seen;
    assert.equal(request!.method, 'POST');
    assert.equal(request!.body, 'grant_type=authorization_code&code=c+d');
    assert.equal(request!.headers['content-type'], 'application/x-www-form-urlencoded;charset=UTF-8');
    assert.equal(request!.headers.authorization, 'Basic YTpi');
    assert.equal(request!.headers.accept, '*/*');
    assert.ok(request!.headers['user-agent']);
  });

  it('keeps a caller\'s own content type and accept, and sends a string body as text', async () => {
    seen.length = 0;
    await client().request(`${base}/token`, { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: '{"a":1}' }, 'other');
    await client().request(`${base}/token`, { method: 'POST', headers: {}, body: 'plain' }, 'other');
    assert.equal(seen[0]!.headers['content-type'], 'application/json');
    assert.equal(seen[0]!.headers.accept, 'application/json');
    assert.equal(seen[0]!.body, '{"a":1}');
    assert.equal(seen[1]!.headers['content-type'], 'text/plain;charset=UTF-8');
  });

  it('follows no redirect, and answers a body-less status without a body', async () => {
    seen.length = 0;
    const redirect = await client().request(`${base}/redirect`, { method: 'GET' }, 'other');
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/token');
    assert.equal(seen.length, 1, 'the redirect was not followed');
    const empty = await client().request(`${base}/empty`, { method: 'GET' }, 'other');
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
  });

  const rejectsWith = (code: string, reason: RegExp) => (err: unknown) => {
    assert.ok(err instanceof UpstreamError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, reason);
    return true;
  };

  it('refuses a body over the cap, declared or streamed', async () => {
    const small = client({ maxBodyBytes: 1024 });
    await assert.rejects(small.request(`${base}/big-declared`, { method: 'GET' }, 'token'), rejectsWith('upstream_misconfigured', /2048 bytes is larger than 1024/));
    await assert.rejects(small.request(`${base}/big-chunked`, { method: 'GET' }, 'jwks'), rejectsWith('discovery_invalid', /larger than 1024 bytes/));
    const ok = await client({ maxBodyBytes: 2048 }).request(`${base}/big-chunked`, { method: 'GET' }, 'other');
    assert.equal((await ok.text()).length, 1200);
  });

  it('times out a body that stops coming', async () => {
    await assert.rejects(client({ timeoutMs: 200 }).request(`${base}/stall-body`, { method: 'GET' }, 'token'), rejectsWith('upstream_timeout', /within 200 ms/));
  });

  it('calls no private address unless allowed, and reports a refused connection', async () => {
    seen.length = 0;
    await assert.rejects(client({ allowPrivateNetwork: false }).request(`${base}/token`, { method: 'GET' }, 'discovery'), rejectsWith('discovery_invalid', /not a public address/));
    assert.equal(seen.length, 0);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(client().request(`http://127.0.0.1:${port}/token`, { method: 'GET' }, 'token'), rejectsWith('upstream_unreachable', /ECONNREFUSED/));
  });
});
