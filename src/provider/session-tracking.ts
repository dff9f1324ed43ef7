import type { Context, Next } from 'koa';
import Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { HeldLoginTaken, type Sessions } from '../sessions/index.ts';
import { showError } from '../pages/index.ts';
import { noteSessionId, type Adapter, type AdapterPayload } from '../store/index.ts';
import { providerCookie } from './cookies.ts';

interface AuthorizationContext {
  oidc?: {
    /** The resumed interaction's result (oidc-provider sets it at the resume). */
    result?: unknown;
    session?: KoaContextWithOIDC['oidc']['session'] & { destroyed?: boolean };
    entities?: {
      Interaction?: { uid?: string };
      AuthorizationCode?: { clientId?: string; grantId?: string; sessionUid?: string };
    };
  };
}

/** What trackSessions reads ahead with: oidc-provider's Interactions and the provider's cookies. */
export interface ResumeReads {
  /** The provider serving now (its cookie names and keys). */
  provider: () => Provider;
  /** The Interaction adapter: a find issued now answers oidc-provider's find later in the request (store request-reads.ts). */
  interactions: Adapter;
}

/**
 * Around oidc-provider's authorization endpoint (/auth and its resume): after it answered, the login
 * an interaction finished goes to the session oidc-provider put it in (Sessions.bind), and a service
 * that got an authorization code in a session is recorded with its `sid` and grant, so the session's
 * end reaches it. Mounted for the `authorization` and `resume` routes only.
 *
 * A resume (`/auth/:uid`) whose resume cookie names that uid (the cookie oidc-provider checks before
 * it resumes anything) begins with what it will read: the Interaction, whose result carries the
 * login its callback finished (Sessions.holdAtCallback). A login an earlier version's callback held under
 * its own key is taken by findAccount (Sessions.takeAhead), and when taken so and not bound (the
 * resume ended another way) held again as the request ends (Sessions.settleTakes).
 */
export function trackSessions(sessions: Sessions, reads?: ResumeReads) {
  return async function trackSession(ctx: Context, next: Next) {
    // The interaction this request resumes (`/auth/:uid`), read before oidc-provider answers: when the
    // login it finished is followed by another prompt (consent), oidc-provider replaces its Interaction
    // entity with the new one, and the login, held under the resumed interaction, would never be bound.
    const resumed = (ctx.state.route as { name?: string } | undefined)?.name === 'resume' ? lastSegment(ctx.path) : undefined;
    if (resumed && reads && providerCookie(reads.provider(), ctx.req, ctx.res, 'resume') === resumed) {
      reads.interactions.find(resumed).catch(() => {}); // oidc-provider's own find gets the answer, or the failure
    }
    try {
      await next();
    } catch (error) {
      // What was taken ahead is held again; the request's own failure is what it answers.
      await sessions.settleTakes().catch(() => {});
      throw error;
    }
    try {
      const { oidc } = ctx as unknown as AuthorizationContext;
      const session = oidc?.session;
      if (!session?.accountId || session.destroyed) return;
      const current = oidc?.entities?.Interaction?.uid;
      const code = oidc?.entities?.AuthorizationCode;
      const sid = code?.clientId ? session.sidFor(code.clientId) : undefined;
      let client = code?.clientId && code.sessionUid === session.uid ? { clientId: code.clientId, ...(sid ? { sid } : {}), ...(code.grantId ? { grantId: code.grantId } : {}) } : undefined;
      for (const interaction of new Set([resumed, current])) {
        // The service of this code goes in with the record the login is bound to (no write of its own).
        // The resumed interaction's result carries its login (Sessions.holdAtCallback), or says it is held apart.
        const result = interaction === resumed ? (oidc?.result ?? {}) : undefined;
        try {
          if (interaction && (await sessions.bind(interaction, { uid: session.uid, accountId: session.accountId }, client, result))) client = undefined;
        } catch (error) {
          if (!(error instanceof HeldLoginTaken)) throw error;
          // Another resume of this interaction bound its login first: this one answers no code, and
          // sets no cookie (the browser keeps the session the other resume signed in, not the one
          // oidc-provider made here, which has no record).
          ctx.remove('Location');
          ctx.remove('Set-Cookie');
          showError(ctx, 'session_expired', { log: { outcome: 'interaction_taken' } });
          return;
        }
      }
      if (client) await sessions.addClient(session.uid, client);
    } finally {
      await sessions.settleTakes();
    }
  };
}

/** The last segment of a path, decoded (undefined when it is not valid percent-encoding). */
function lastSegment(path: string): string | undefined {
  try {
    return decodeURIComponent(path.replace(/\/$/, '').slice(path.replace(/\/$/, '').lastIndexOf('/') + 1)) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Codes and refresh tokens name the session they were issued in (`sessionUid`); redeeming one
 * reads that session's record next (findAccount), after oidc-provider checked the token and its
 * grant. The adapter starts that read as soon as the token is found (Sessions.readAhead), so it
 * leaves with the grant's read instead of taking a round trip of its own. And as one is saved, the
 * id of the oidc-provider Session it is issued in (the one oidc-provider holds for the request, by
 * its uid) is noted for the store (noteSessionId), which keeps it with a code: redeeming the code
 * reads that Session by id, with the grant (store/redis.ts).
 */
export function readSessionAhead(adapter: Adapter, name: string, sessions: Sessions): Adapter {
  if (name !== 'AuthorizationCode' && name !== 'RefreshToken') return adapter;
  return {
    ...adapter,
    upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      const session = (Provider.ctx?.oidc as { session?: { uid?: unknown; jti?: unknown } } | undefined)?.session;
      if (typeof session?.uid === 'string' && typeof session.jti === 'string' && session.uid === (payload as { sessionUid?: unknown }).sessionUid) noteSessionId(session.uid, session.jti);
      return adapter.upsert(id, payload, expiresIn);
    },
    async find(id: string) {
      const payload = await adapter.find(id);
      const uid = (payload as { sessionUid?: unknown } | undefined)?.sessionUid;
      if (typeof uid === 'string' && !payload?.consumed) sessions.readAhead(uid);
      return payload;
    },
  };
}
