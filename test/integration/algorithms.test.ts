import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { createVerifier } from '../../packages/verify/src/index.ts';
import { startConcord } from '../support/concord.ts';

const MACHINE = { client_id: 'machine', client_secret: 'machine-secret-0123456789', grant_types: ['client_credentials'] };

describe('signing algorithms', () => {
  for (const [algorithm, kty] of [['ES256', 'EC'], ['EdDSA', 'OKP'], ['RS256', 'RSA']] as const) {
    it(`signs and publishes ${algorithm} keys when configured`, async () => {
      const instance = await startConcord({ clients: [MACHINE], settings: { keys: { algorithm } } });
      try {
        const jwks = (await (await fetch(`${instance.issuer}/jwks`)).json()) as { keys: Array<{ kty: string; alg: string; d?: string }> };
        assert.deepEqual(jwks.keys.map((k) => [k.kty, k.alg, k.d]), [[kty, algorithm, undefined]]);
        const discovery = (await (await fetch(`${instance.issuer}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
        assert.deepEqual(discovery.id_token_signing_alg_values_supported, [algorithm]);
        const response = await fetch(`${instance.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('machine:machine-secret-0123456789').toString('base64')}` },
          body: 'grant_type=client_credentials',
        });
        const { access_token } = (await response.json()) as { access_token: string };
        assert.equal(decodeProtectedHeader(access_token).alg, algorithm);
        const claims = await createVerifier({ issuer: instance.issuer, audience: instance.issuer })(access_token);
        assert.equal(claims.client_id, 'machine');
      } finally {
        await instance.close();
      }
    });
  }
});
