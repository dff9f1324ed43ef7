import type Router from '@koa/router';
import type { Context } from 'koa';
import type { SessionRecord } from '../sessions/index.ts';
import { actorOf, type AdminDeps } from './context.ts';
import { SESSION_ID, USER_ID, type AdminOperations } from './operations.ts';
import { AdminError, notFound } from './errors.ts';
import { intParam } from './validation.ts';

/** How the API shows a session: who, through which organisation, at which services, and when (ISO 8601). */
export interface SessionView {
  /** The session's id (for GET and DELETE /sessions/{id}). */
  id: string;
  /** The user: Concord's account id `{participantId}:{upstream sub}` (the `sub` of public clients' tokens). */
  user: string;
  participant: string;
  /** The services that got an authorization in this session. */
  clients: Array<{ clientId: string; name?: string }>;
  /** When the user signed in upstream. */
  startedAt: string;
  /** When a service last refreshed its tokens in this session; null: never. */
  lastRefreshedAt: string | null;
  /** When the partner's IdP last vouched for the user (the login, or a re-check at refresh). */
  lastConfirmedAt: string;
  /** Whether the partner's logout notices can name this session (it gave an upstream session id). */
  upstreamSession: boolean;
}

/** How the API shows an account found by email. */
export interface UserView {
  id: string;
  participant: string;
  email?: string;
  name?: string;
  /** How many sessions the user has now. */
  sessions: number;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
const MAX_USERS = 500;

/** What the API and the console read of users and sessions (GET only; ending them is in operations.ts). */
export interface SessionReads {
  /** The users with that email, or of that participant, with how many sessions each has now. */
  users(query: { email: string } | { participant: string }, limit: number): Promise<UserView[]>;
  view(record: SessionRecord): Promise<SessionView>;
}

export function sessionReads(deps: Pick<AdminDeps, 'sessions' | 'accounts' | 'registry'>): SessionReads {
  const { sessions, accounts, registry } = deps;
  async function view(record: SessionRecord): Promise<SessionView> {
    const refreshed = await sessions.lastRefreshed(record.id);
    return {
      id: record.id,
      user: record.accountId,
      participant: record.participantId,
      clients: [...new Set(record.clients.map((c) => c.clientId))].map((clientId) => {
        const name = registry.client(clientId)?.client_name;
        return { clientId, ...(name ? { name } : {}) };
      }),
      startedAt: iso(record.startedAt),
      lastRefreshedAt: refreshed === undefined ? null : iso(refreshed),
      lastConfirmedAt: iso(record.confirmedAt),
      upstreamSession: record.upstreamSession,
    };
  }

  async function users(query: { email: string } | { participant: string }, limit: number): Promise<UserView[]> {
    const ids = 'email' in query ? await accounts.idsByEmail(query.email) : await accounts.idsOfParticipant(query.participant);
    const found: UserView[] = [];
    for (const id of ids.sort().slice(0, limit)) {
      const [account, own] = await Promise.all([accounts.find(id), sessions.ofAccount(id)]);
      if (!account && own.length === 0) continue;
      // The claims of the newest session (an account keeps only its email; one from before, its last login's claims).
      const claims = own.at(-1)?.claims ?? account?.claims ?? {};
      const email = claims.email ?? account?.email;
      found.push({
        id,
        participant: account?.participantId ?? own[0]!.participantId,
        ...(typeof email === 'string' ? { email } : {}),
        ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
        sessions: own.length,
      });
    }
    return found;
  }
  return { users, view };
}

/**
 * /users and /sessions: what an administrator (and the console) sees of a user's sessions, and ends.
 *
 *   GET  /users?email=E | ?participant=P[&limit=N]   the users with that email, or of that participant
 *   GET  /users/{userId}/sessions                     a user's sessions, oldest first
 *   POST /users/{userId}/revoke-sessions              ends all of them (audited: user.revoke_sessions)
 *   GET  /sessions/{id}                               one session
 *   DELETE /sessions/{id}                             ends it (audited: session.end)
 *
 * Ending a session is what every other end of a session does (src/sessions): its grants and refresh
 * tokens revoked, and each of its services with a back-channel logout URI sent a logout token.
 */
export function sessionRoutes(router: Router, deps: AdminDeps, ops: AdminOperations): void {
  const { sessions, accounts } = deps;
  const reads = sessionReads(deps);
  const { view } = reads;

  const userIdOf = (ctx: Context) => {
    const id = ctx.params.userId!;
    if (!USER_ID.test(id)) throw new AdminError(400, 'invalid_request', 'a user id is {participantId}:{upstream sub}', { field: 'userId' });
    return id;
  };
  const sessionIdOf = (ctx: Context) => {
    const id = ctx.params.id!;
    if (!SESSION_ID.test(id)) throw notFound('session', id.slice(0, 128));
    return id;
  };

  router.get('/users', async (ctx) => {
    const email = typeof ctx.query.email === 'string' ? ctx.query.email.trim() : undefined;
    const participant = typeof ctx.query.participant === 'string' ? ctx.query.participant : undefined;
    const limit = intParam(ctx, 'limit', 100, MAX_USERS)!;
    if (!email === !participant) throw new AdminError(400, 'invalid_request', 'give one of email or participant', { field: email ? 'participant' : 'email' });
    ctx.body = { users: await reads.users(email ? { email } : { participant: participant! }, limit) };
  });

  router.get('/users/:userId/sessions', async (ctx) => {
    const user = userIdOf(ctx);
    const own = await sessions.ofAccount(user);
    if (own.length === 0 && !(await accounts.find(user))) throw notFound('user', user);
    ctx.body = { user, sessions: await Promise.all(own.map(view)) };
  });

  router.post('/users/:userId/revoke-sessions', async (ctx) => {
    const user = userIdOf(ctx);
    ctx.body = { user, ended: await ops.revokeUserSessions(user, actorOf(ctx)) };
  });

  router.get('/sessions/:id', async (ctx) => {
    const id = sessionIdOf(ctx);
    const record = await sessions.get(id);
    if (!record) throw notFound('session', id);
    ctx.body = await view(record);
  });

  router.delete('/sessions/:id', async (ctx) => {
    const id = sessionIdOf(ctx);
    const ended = await ops.endSession(id, actorOf(ctx));
    if (!ended) throw notFound('session', id);
    ctx.body = { ended };
  });
}
