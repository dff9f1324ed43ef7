import type { Context } from 'koa';
import ServerChallenge from 'oidc-provider/lib/helpers/challenge.js';
import {
  DEFAULT_DPOP_ALGORITHMS,
  resolveDPoPOptions,
  verifyDPoPProof,
  VerifyError,
  type DPoPNonceSource,
  type DPoPReplayCache,
  type ResolvedDPoPOptions,
} from '#concord-verify';
import type { Store } from '../store/index.ts';
import { derivedKey } from './derived-key.ts';

/**
 * DPoP (RFC 9449) at Concord, decided:
 * - on, as oidc-provider has it: a client that sends a proof to /token gets access tokens bound to
 *   its key (`cnf.jkt`); refresh tokens of public clients are bound too (oidc-provider binds them
 *   for `token_endpoint_auth_method: none`; a refresh with another key is `invalid_grant`);
 * - a client registered with `dpop_bound_access_tokens: true` must send one (RFC 9449 §5.2), else
 *   its token request is answered `invalid_dpop_proof` (answerMissingProof);
 * - nonces (§8) are offered on every DPoP response (`DPoP-Nonce`), from a secret derived from
 *   CONCORD_SECRETS_KEY, so every instance issues and accepts the same ones; they are required
 *   only with `tokens.dpop.requireNonce` (default false: the proof's `iat` window and its `jti`,
 *   remembered in the store, keep a proof from being used twice);
 * - Concord's own /me checks proofs with concord-verify, as services do.
 */
export const DPOP_ALGORITHMS = DEFAULT_DPOP_ALGORITHMS;

/**
 * The 32-byte secret of DPoP nonces (oidc-provider's `features.dPoP.nonceSecret`): from
 * CONCORD_SECRETS_KEY when set (the same on every instance), else from the embedded store's secret.
 */
export function dpopNonceSecret(secretsKey: string | undefined, fallbackSecret: string): Buffer {
  return derivedKey(secretsKey, fallbackSecret, 'concord:dpop-nonce:v1');
}

/** What oidc-provider's InvalidGrant says (error_detail) when a dpop_bound_access_tokens client sent no proof. */
const PROOF_NOT_PROVIDED = 'DPoP proof JWT not provided';

/**
 * `grant.error` listener: a dpop_bound_access_tokens client's token request without a proof is
 * answered `invalid_dpop_proof` (RFC 9449 §5: the proof is what is wrong; oidc-provider says
 * invalid_grant). Only that one error: a wrong code or refresh token, checked before, keeps its
 * invalid_grant, and so keeps counting as a guess for the credential-failure limits.
 */
export function answerMissingProof(ctx: { body: unknown }, err: unknown): void {
  if ((err as { error_detail?: unknown } | undefined)?.error_detail !== PROOF_NOT_PROVIDED) return;
  const answer = { error: 'invalid_dpop_proof', error_description: 'this client must send a DPoP proof with every token request (dpop_bound_access_tokens)' };
  // The error too: the token error metric (registered after this listener) counts what was answered.
  Object.assign(err as object, answer);
  ctx.body = answer;
}

/** The nonces /token hands out (oidc-provider's own ServerChallenge, same secret and info): /me accepts them too. */
export function dpopNonces(secret: Buffer): DPoPNonceSource {
  const challenge = new ServerChallenge(secret, 'DPoP');
  return { next: () => challenge.nextChallenge(), check: (nonce) => challenge.checkChallenge(nonce) };
}

/** Proofs' `jti` in the store (SET NX): a proof used at one instance is refused at every other. */
export function storeReplayCache(store: Store): DPoPReplayCache {
  return { claim: (key, ttlSeconds) => store.claimTemp(`dpop:jti:${key}`, 1, ttlSeconds) };
}

/**
 * The DPoP check of /me (RFC 9449 §7.1): a token presented with the DPoP scheme must be bound and
 * come with a valid proof for it, a bound token presented as Bearer is refused. Resolves to
 * undefined when the presentation is acceptable, else to the VerifyError to answer with.
 */
export function userinfoDPoP(deps: { issuer: string; store: Store; nonceSecret: Buffer; requireNonce: boolean }) {
  const options: Readonly<ResolvedDPoPOptions> = resolveDPoPOptions(
    { algorithms: DPOP_ALGORITHMS, replayCache: storeReplayCache(deps.store), ...(deps.requireNonce ? { nonce: dpopNonces(deps.nonceSecret) } : {}) },
    new Set(DPOP_ALGORITHMS),
  );
  const algs = DPOP_ALGORITHMS.join(' ');
  // Concord serves its routes at the issuer's origin (a path-prefixed issuer keeps its path in ctx.path).
  const origin = new URL(deps.issuer).origin;
  return {
    async check(ctx: Context, scheme: 'Bearer' | 'DPoP', token: string, cnf: unknown): Promise<VerifyError | undefined> {
      const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as { jkt?: unknown }).jkt : undefined;
      if (scheme === 'Bearer') return jkt === undefined ? undefined : new VerifyError('dpop_bound', { claim: 'cnf' });
      if (typeof jkt !== 'string') return new VerifyError('dpop_unbound', { claim: 'cnf' });
      try {
        await verifyDPoPProof({ proof: ctx.get('dpop') || undefined, method: ctx.method, url: `${origin}${ctx.path}` }, options, { accessToken: token, jkt });
        return undefined;
      } catch (err) {
        if (err instanceof VerifyError) return err;
        throw err;
      }
    },
    /** RFC 9449 §7.1's challenge, with the DPoP-Nonce header for use_dpop_nonce. */
    refuse(ctx: Context, err: VerifyError): void {
      const scheme = err.code === 'dpop_unbound' ? 'Bearer' : 'DPoP';
      ctx.status = 401;
      ctx.set('WWW-Authenticate', `${scheme} realm="${deps.issuer}", error="${err.error}", error_description="${err.message}"${scheme === 'DPoP' ? `, algs="${algs}"` : ''}`);
      if (err.dpopNonce !== undefined) ctx.set('DPoP-Nonce', err.dpopNonce);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: err.error, error_description: err.message };
    },
  };
}
