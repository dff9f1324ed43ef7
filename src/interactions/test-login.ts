import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { ActiveParticipant, ConnectorPool } from '../participants/index.ts';
import type { Store } from '../store/index.ts';
import { UpstreamError, type CallbackInput, type PendingLogin } from '../upstream/index.ts';
import { pagesOf, renderPage } from '../pages/index.ts';

/*
 * A console test login (issue 16): an administrator signs in at a participant's upstream (enabled
 * or not, domains proven or not) to see what it sends and what the mapping makes of it. It shares
 * only the upstream leg with a real login: the redirect to the upstream and the broker callback.
 * There is no interaction, no service, no oidc-provider session: nothing is issued to anyone. The
 * result goes to the store under the test's random reference, where only the console reads it.
 */

/** What a test login found: the upstream's claims and the mapping's answer, or why it failed. */
export interface TestLoginResult {
  participant: string;
  /** Who started it (a console admin's `sub`, or `admin-token`). */
  actor: string;
  state: 'started' | 'finished' | 'failed';
  /** Unix ms */
  startedAt: number;
  finishedAt?: number;
  upstream?: { issuer: string; subject: string; claims: Record<string, unknown> };
  mapped?: { outcome: 'released'; claims: Record<string, unknown> } | { outcome: 'rejected'; code: string; rule: number | null; requirement?: string; message?: string };
  error?: { code: string; message: string; reference: string };
}

/** The pending upstream login of a test: kept under the state like a real one's, marked by `testLogin`. */
export interface TestLoginPending {
  participantId: string;
  pending: PendingLogin;
  testLogin: string;
  startedAt: number;
}

const resultKey = (ref: string) => `test-login:${ref}`;
const REF = /^[A-Za-z0-9_-]{24}$/;
/** How long a test login may take and its result stays readable: 15 minutes. */
export const TEST_LOGIN_TTL_S = 15 * 60;

export interface TestLogins {
  /** Starts a test login through `participant`; returns the upstream URL to send the browser to, and the reference of its result. */
  begin(participant: ActiveParticipant, actor: string): Promise<{ url: string; ref: string }>;
  result(ref: string): Promise<TestLoginResult | undefined>;
}

export function testLogins(deps: { store: Store; connectors: ConnectorPool; pendingKey: (state: string) => string; interactionTtl: number }): TestLogins {
  const { store, connectors } = deps;
  return {
    async begin(participant, actor) {
      const id = participant.config.id;
      const ref = randomBytes(18).toString('base64url');
      // No parameters of a service are forwarded: there is none.
      const { url, pending } = await connectors.get(participant).beginLogin({ redirectUri: connectors.redirectUri(id), params: {} });
      const startedAt = Date.now();
      const ttl = Math.min(TEST_LOGIN_TTL_S, deps.interactionTtl);
      await store.setTemp<TestLoginResult>(resultKey(ref), { participant: id, actor, state: 'started', startedAt }, TEST_LOGIN_TTL_S);
      await store.setTemp<TestLoginPending>(deps.pendingKey(pending.state), { participantId: id, pending, testLogin: ref, startedAt }, ttl);
      return { url, ref };
    },
    result: async (ref) => (REF.test(ref) ? store.getTemp<TestLoginResult>(resultKey(ref)) : undefined),
  };
}

/**
 * The broker callback of a test login (its pending record already found by state, and taken):
 * completes the upstream leg, runs the participant's mapping, keeps the result for the console,
 * and shows a page that says so. Never a code, never a token, never a redirect to a service.
 */
export async function finishTestLogin(ctx: Context, store: Store, connectors: ConnectorPool, participant: ActiveParticipant, record: TestLoginPending, callback: CallbackInput): Promise<void> {
  const previous = await store.getTemp<TestLoginResult>(resultKey(record.testLogin));
  const base: TestLoginResult = previous ?? { participant: participant.config.id, actor: 'unknown', state: 'started', startedAt: record.startedAt };
  const reference = String(ctx.state.requestId ?? randomBytes(8).toString('hex'));
  let result: TestLoginResult;
  try {
    const identity = await connectors.get(participant).completeLogin(callback, record.pending);
    const outcome = participant.mapping.apply(identity.claims);
    result = {
      ...base,
      state: 'finished',
      finishedAt: Date.now(),
      upstream: { issuer: identity.issuer, subject: identity.subject, claims: identity.claims },
      mapped: outcome.ok
        ? { outcome: 'released', claims: outcome.claims }
        : { outcome: 'rejected', code: outcome.code, rule: outcome.ruleIndex, ...(outcome.requirement === undefined ? {} : { requirement: outcome.requirement }), ...(outcome.message === undefined ? {} : { message: outcome.message }) },
    };
    ctx.state.log?.info({ participant: participant.config.id, testLogin: true, outcome: outcome.ok ? 'released' : outcome.code }, 'console test login finished');
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    ctx.state.log?.warn({ participant: participant.config.id, testLogin: true, reference, ...error.logFields() }, 'console test login failed at the upstream');
    result = { ...base, state: 'failed', finishedAt: Date.now(), error: { code: error.outcome, message: error.message, reference } };
  }
  await store.setTemp(resultKey(record.testLogin), result, TEST_LOGIN_TTL_S);
  ctx.set('Cache-Control', 'no-store');
  const done = result.state === 'finished';
  const t = pagesOf(ctx).translate(ctx);
  const name = participant.config.displayName;
  ctx.body = renderPage(ctx, 'test-login', done ? 'testLogin.finished' : 'testLogin.failed', {
    heading: t(done ? 'testLogin.finished' : 'testLogin.failed'),
    text: done ? t('testLogin.finishedText', { participant: name }) : t('testLogin.failedText', { participant: name, error: result.error?.message ?? '', reference }),
  });
}
