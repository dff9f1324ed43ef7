import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ErrorPage } from '../../src/pages/index.ts';
import { authorizationRequest, exchange, startFederation, type Federation } from '../support/federation.ts';
import { Browser } from '../support/http-client.ts';
import { REFUSED_MODES, startHostileIdp, type HostileIdp, type HostileMode } from '../support/hostile-idp.ts';
import { assertErrorPage, assertNoCodeAtRp, atRp } from './broker-helpers.ts';

/**
 * Hostile upstreams registered as participants of a running Concord: one hostile IdP per mode (each
 * serves its mode from its first request, so no discovery cache hides a mode), each its own
 * participant with its own domain. Every refused mode must end on an error page, never at the RP.
 */

/** The page each refused mode ends on, or the OAuth error it ends with at the RP (`{ error }`: OIDC Core 3.1.2.6). */
const EXPECTED_PAGE: Record<(typeof REFUSED_MODES)[number], ErrorPage | { error: string }> = {
  wrong_iss: 'upstream_invalid',
  wrong_aud: 'upstream_invalid',
  wrong_nonce: 'upstream_invalid',
  missing_nonce: 'upstream_invalid',
  expired: 'upstream_invalid',
  alg_none: 'upstream_invalid',
  hs256_with_public_key: 'upstream_invalid',
  unknown_key: 'upstream_invalid',
  bad_signature: 'upstream_invalid',
  future_iat: 'upstream_invalid',
  wrong_azp: 'upstream_invalid',
  multi_aud: 'upstream_invalid',
  wrong_callback_iss: 'upstream_invalid',
  missing_callback_iss: 'upstream_invalid',
  userinfo_wrong_sub: 'upstream_invalid',
  // The user cancelled at the IdP: the service hears access_denied, as it expects.
  error_response: { error: 'access_denied' },
  token_error: 'upstream_error',
  // Discovery offers no acceptable algorithm: the IdP is not set up to work with Concord (not "down").
  no_acceptable_alg: 'upstream_misconfigured',
};

const idOf = (mode: HostileMode) => `h-${mode.replace(/_/g, '-')}`;
const domainOf = (mode: HostileMode) => `${idOf(mode)}.example`;

describe('brokered login through hostile upstream IdPs', () => {
  let fed: Federation;
  const idps = new Map<string, HostileIdp>();

  const hostileParticipant = (id: string, idp: HostileIdp, domain: string, extra: Record<string, unknown> = {}) => ({
    id,
    displayName: `Hostile ${id}`,
    domains: [domain],
    upstream: { type: 'oidc', issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, allowInsecureHttp: true, fetchUserinfo: true },
    ...extra,
  });

  before(async () => {
    const modes: HostileMode[] = ['ok', ...REFUSED_MODES];
    await Promise.all(
      modes.map(async (mode) => idps.set(idOf(mode), await startHostileIdp({ mode, domain: domainOf(mode), subject: 'user-1' }))),
    );
    // foreign_email: a valid answer whose email is in Acme's domain; once with the default policy, once kept unverified.
    idps.set('h-foreign', await startHostileIdp({ mode: 'foreign_email', domain: 'h-foreign.example', foreignDomain: 'acme.example', subject: 'alice' }));
    idps.set('h-foreign-kept', await startHostileIdp({ mode: 'foreign_email', domain: 'h-foreign-kept.example', foreignDomain: 'acme.example', subject: 'alice' }));
    fed = await startFederation({
      settings: { upstream: { timeoutMs: 2000 } },
      participants: [
        ...modes.map((mode) => hostileParticipant(idOf(mode), idps.get(idOf(mode))!, domainOf(mode))),
        hostileParticipant('h-foreign', idps.get('h-foreign')!, 'h-foreign.example'),
        hostileParticipant('h-foreign-kept', idps.get('h-foreign-kept')!, 'h-foreign-kept.example', { mapping: { keepForeignEmailUnverified: true, rules: [] } }),
      ],
    });
  });
  after(async () => {
    await fed.close();
    await Promise.all([...idps.values()].map((idp) => idp.close()));
  });

  /** The hostile IdPs answer at once (no login page): one request chain ends at the RP or on a page. */
  async function login(email: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(fed.rp, { login_hint: email });
    const res = await browser.get(auth.url, { stopAt: atRp });
    return { browser, auth, res };
  }

  it("mode 'ok' signs in (the harness can reach the RP)", async () => {
    const { auth, res } = await login(`user-1@${domainOf('ok')}`);
    assert.ok(res.stoppedAt, `no code: ${res.status} ${res.body.slice(0, 300)}`);
    const claims = (await exchange(fed.rp, res.stoppedAt, auth)).claims()!;
    assert.equal(claims.sub, 'h-ok:user-1');
    assert.equal(claims.idp, 'h-ok');
    assert.equal(claims.email, `user-1@${domainOf('ok')}`);
    assert.equal(claims.acr, 'urn:hostile:pwd');
    assert.deepEqual(claims.amr, ['pwd']);
  });

  for (const mode of REFUSED_MODES) {
    const expected = EXPECTED_PAGE[mode];
    it(`mode '${mode}' ends ${typeof expected === 'string' ? `on the ${expected} page` : `at the RP with ${expected.error}`}, never with a code`, async () => {
      const { browser, auth, res } = await login(`user-1@${domainOf(mode)}`);
      if (typeof expected === 'string') {
        assert.equal(res.stoppedAt, undefined, `mode ${mode} reached the RP: ${res.stoppedAt?.href}`);
        assertErrorPage(fed, res, expected);
      } else {
        assert.equal(res.stoppedAt?.searchParams.get('error'), expected.error, `mode ${mode}: ${res.status} ${res.url.href}`);
        assert.equal(res.stoppedAt.searchParams.get('state'), auth.state);
        assert.equal(res.stoppedAt.searchParams.get('iss'), fed.concord.issuer);
      }
      assertNoCodeAtRp(browser);
      if (mode !== 'no_acceptable_alg') {
        assert.ok(idps.get(idOf(mode))!.requests.includes('GET /authorize'), 'the login went to the hostile IdP');
      }
      const accounts = await fed.concord.concord.accounts.idsOfParticipant(idOf(mode));
      assert.deepEqual(accounts, [], 'a refused login left an account behind');
    });
  }

  it('foreign_email: an email in another participant’s domain is dropped, never released as verified', async () => {
    const { auth, res } = await login('alice@h-foreign.example');
    assert.ok(res.stoppedAt, `no code: ${res.status} ${res.body.slice(0, 300)}`);
    const tokens = await exchange(fed.rp, res.stoppedAt, auth);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, 'h-foreign:alice', 'a distinct account, not Acme’s alice');
    assert.equal(claims.idp, 'h-foreign');
    assert.equal(claims.email, undefined);
    assert.equal(claims.email_verified, undefined);
    const userinfo = await fetch(`${fed.concord.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 200);
    const body = (await userinfo.json()) as Record<string, unknown>;
    assert.equal(body.email, undefined);
    assert.equal(body.email_verified, undefined);
  });

  it('foreign_email with keepForeignEmailUnverified: kept, with email_verified false', async () => {
    const { auth, res } = await login('alice@h-foreign-kept.example');
    assert.ok(res.stoppedAt, `no code: ${res.status} ${res.body.slice(0, 300)}`);
    const claims = (await exchange(fed.rp, res.stoppedAt, auth)).claims()!;
    assert.equal(claims.sub, 'h-foreign-kept:alice');
    assert.equal(claims.email, 'alice@acme.example');
    assert.equal(claims.email_verified, false);
  });
});
