import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { concordExpress, concordKoa, createVerifier, type ConcordState, type Verifier } from '../../packages/verify/src/index.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';

const now = () => Math.floor(Date.now() / 1000);

async function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

interface Answer {
  status: number;
  challenge: string | null;
  body: string;
}

async function call(url: string, authorization?: string): Promise<Answer> {
  const res = await fetch(url, authorization === undefined ? {} : { headers: { authorization } });
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text() };
}

const REALM = 'Bearer realm="orders"';
/** No credentials: both schemes the middleware accepts (RFC 6750 §3.1, RFC 9449 §7.1). */
const BARE = `${REALM}, DPoP realm="orders", algs="ES256 EdDSA Ed25519 PS256 RS256"`;

type Framework = 'koa' | 'express';

/** The same service in Koa and in Express: /orders needs a token, /orders/admin also orders:admin. */
function app(framework: Framework, verify: Verifier): http.RequestListener {
  if (framework === 'koa') {
    const koa = new Koa<ConcordState>();
    const auth = concordKoa(verify, { realm: 'orders' });
    const admin = concordKoa(verify, { realm: 'orders', requiredScopes: ['orders:admin'] });
    koa.use(async (ctx, next) => {
      if (ctx.path === '/orders/admin') return admin(ctx, next);
      return auth(ctx, next);
    });
    koa.use((ctx) => {
      ctx.body = { sub: ctx.state.concord.sub, client: ctx.state.concord.client_id, path: ctx.path };
    });
    return koa.callback();
  }
  const ex = express();
  ex.get('/orders/admin', concordExpress(verify, { realm: 'orders', requiredScopes: ['orders:admin'] }), (req, res) => {
    res.json({ sub: req.concord!.sub, client: req.concord!.client_id, path: req.path });
  });
  ex.use(concordExpress(verify, { realm: 'orders' }));
  ex.get('/orders', (req, res) => {
    res.json({ sub: req.concord!.sub, client: req.concord!.client_id, path: req.path });
  });
  return ex;
}

for (const framework of ['koa', 'express'] as const) {
  describe(`verify middleware over HTTP: ${framework}`, () => {
    let concord: JwksServer;
    let service: { url: string; close(): Promise<void> };
    let down: { url: string; close(): Promise<void> };

    before(async () => {
      concord = await startJwksServer({ audience: 'https://orders.example.test' });
      const verify = createVerifier({ issuer: concord.issuer, audience: concord.audience });
      service = await listen(app(framework, verify));
      // A service whose Concord cannot be reached.
      const unreachable = createVerifier({ issuer: 'http://127.0.0.1:9', audience: concord.audience, timeoutDuration: 500 });
      down = await listen(app(framework, unreachable));
    });
    after(async () => {
      await service.close();
      await down.close();
      await concord.close();
    });

    it('no token: 401 with bare Bearer and DPoP challenges, no error (RFC 6750 §3.1, RFC 9449 §7.1)', async () => {
      const answer = await call(`${service.url}/orders`);
      assert.equal(answer.status, 401);
      assert.equal(answer.challenge, BARE);
    });

    it('another scheme (Basic): 401 with the bare challenges', async () => {
      const answer = await call(`${service.url}/orders`, 'Basic dXNlcjpwYXNz');
      assert.equal(answer.status, 401);
      assert.equal(answer.challenge, BARE);
    });

    it('valid token: passes, the claims on ctx.state.concord / req.concord', async () => {
      const answer = await call(`${service.url}/orders`, `Bearer ${await concord.sign()}`);
      assert.equal(answer.status, 200, answer.body);
      assert.deepEqual(JSON.parse(answer.body), { sub: 'acme:alice', client: 'test-client', path: '/orders' });
      assert.equal(answer.challenge, null);
    });

    it('the scheme is case-insensitive', async () => {
      const answer = await call(`${service.url}/orders`, `bearer ${await concord.sign()}`);
      assert.equal(answer.status, 200);
    });

    it('expired token: 401 error="invalid_token"', async () => {
      const answer = await call(`${service.url}/orders`, `Bearer ${await concord.sign({ iat: now() - 900, exp: now() - 600 })}`);
      assert.equal(answer.status, 401);
      assert.equal(answer.challenge, `${REALM}, error="invalid_token", error_description="the access token has expired"`);
      assert.deepEqual(JSON.parse(answer.body), { error: 'invalid_token', error_description: 'the access token has expired' });
    });

    it('token for another audience, ID token, garbage, empty Bearer: 401 error="invalid_token"', async () => {
      const tokens = [
        `Bearer ${await concord.sign({ aud: 'https://billing.example.test' })}`,
        `Bearer ${await concord.sign({}, { typ: 'JWT' })}`,
        'Bearer not-a-jwt',
        'Bearer ',
        'Bearer a b',
      ];
      for (const authorization of tokens) {
        const answer = await call(`${service.url}/orders`, authorization);
        assert.equal(answer.status, 401, authorization);
        assert.match(answer.challenge ?? '', /^Bearer realm="orders", error="invalid_token", error_description="[^"\\]+"$/);
      }
    });

    it('missing scope: 403 error="insufficient_scope" with scope="..."', async () => {
      const answer = await call(`${service.url}/orders/admin`, `Bearer ${await concord.sign({ scope: 'openid orders:read' })}`);
      assert.equal(answer.status, 403);
      assert.equal(
        answer.challenge,
        `${REALM}, error="insufficient_scope", error_description="the access token lacks a required scope", scope="orders:admin"`,
      );
      assert.equal(JSON.parse(answer.body).scope, 'orders:admin');
    });

    it('with the scope: passes', async () => {
      const answer = await call(`${service.url}/orders/admin`, `Bearer ${await concord.sign({ scope: 'openid orders:admin' })}`);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(JSON.parse(answer.body).path, '/orders/admin');
    });

    it('Concord unreachable: 503, not a verdict on the token', async () => {
      const answer = await call(`${down.url}/orders`, `Bearer ${await concord.sign()}`);
      assert.equal(answer.status, 503);
      assert.equal(answer.challenge, null);
      assert.equal(JSON.parse(answer.body).error, 'temporarily_unavailable');
    });
  });
}

describe('verify middleware: construction', () => {
  it('accepts verifier options in place of a verifier, and refuses a realm that cannot be quoted', () => {
    const options = { issuer: 'https://concord.example', audience: 'https://api.example' };
    assert.equal(typeof concordKoa(options), 'function');
    assert.equal(typeof concordExpress(options), 'function');
    assert.throws(() => concordKoa(options, { realm: 'a"b' }), TypeError);
    assert.throws(() => concordExpress(options, { requiredScopes: ['a b'] }), TypeError);
  });

  it('fits a plain Koa app and a plain Express app without casts (type-level)', () => {
    const options = { issuer: 'https://concord.example', audience: 'https://api.example' };
    new Koa().use(concordKoa(options));
    express().use(concordExpress(options));
    express().get('/', concordExpress(options), (_req, res) => res.end());
  });
});
