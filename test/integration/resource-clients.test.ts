import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';

/*
 * Issue 19 item 8 (last hole): access tokens for an API go only to the clients the API names
 * (resourceServers[].clients). An API that names none keeps accepting every client, as before, and
 * Concord says so at start-up.
 */

const MACHINE = (id: string) => ({ client_id: id, client_secret: `${id}-secret-0123456789`, grant_types: ['client_credentials'], redirect_uris: [] });
const basic = (id: string) => `Basic ${Buffer.from(`${id}:${id}-secret-0123456789`).toString('base64')}`;

describe('resource servers name their clients', () => {
  let concord: TestConcord;

  before(async () => {
    concord = await startConcord({
      clients: [CONFIDENTIAL_CLIENT, MACHINE('billing'), MACHINE('reports')],
      logLevel: 'info',
      settings: {
        resourceServers: [
          { audience: 'https://payments.example', scopes: ['pay'], clients: ['billing'] },
          { audience: 'https://wiki.example', scopes: ['read'] },
        ],
      },
    });
  });
  after(() => concord.close());

  const token = (clientId: string, resource: string, scope: string) =>
    fetch(`${concord.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic(clientId), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
    });

  it('issues tokens for an API to the clients it names, and refuses the others with invalid_target', async () => {
    const allowed = await token('billing', 'https://payments.example', 'pay');
    assert.equal(allowed.status, 200);
    assert.equal(decodeJwt(((await allowed.json()) as { access_token: string }).access_token).aud, 'https://payments.example');

    const refused = await token('reports', 'https://payments.example', 'pay');
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_target');
  });

  it('keeps an API without a clients list open to every client, and warns about it at start-up', async () => {
    for (const id of ['billing', 'reports']) assert.equal((await token(id, 'https://wiki.example', 'read')).status, 200, id);
    const warnings = concord.logs.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('resource server without a clients list'));
    assert.deepEqual(warnings.map((w) => w.audience), ['https://wiki.example']);
  });
});
