import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Store } from '../store/index.ts';

/** Who is signed in to the console: a `sub` from Concord's own ID token, or the break-glass admin token. */
export interface ConsoleAdmin {
  /** What audit entries name: the ID token's `sub`, or `admin-token`. */
  actor: string;
  /** For the header: a name or email when the ID token has one. */
  name: string;
  via: 'oidc' | 'admin-token';
}

/** What the console keeps per browser, in the store (never in the cookie, which holds only the random id). */
export interface ConsoleSession {
  /** The synchronizer CSRF token every state-changing form carries (`_csrf`). */
  csrf: string;
  /** Unix ms */
  createdAt: number;
  /** Absent until sign-in. */
  admin?: ConsoleAdmin;
  /** When the admin signed in (Unix ms): the absolute limit counts from here. */
  signedInAt?: number;
  /** The sign-in through Concord under way: PKCE verifier, state and nonce. */
  login?: { state: string; nonce: string; codeVerifier: string };
  /** The onboarding wizard's answers so far. */
  draft?: Record<string, string>;
  /** Test logins this session started (their references), newest last. */
  testLogins?: string[];
}

export const COOKIE = 'concord_console';
const keyOf = (id: string) => `console:session:${createHash('sha256').update(id).digest('base64url')}`;
const ID = /^[A-Za-z0-9_-]{43}$/;

export interface ConsoleSessions {
  /** The session of this request's cookie, if it is still alive. Refreshes its idle timer on save. */
  load(ctx: Context): Promise<{ id: string; session: ConsoleSession } | undefined>;
  /** A new session (new id, new CSRF token): at first sight, and at every sign-in (no fixation). */
  create(ctx: Context, session?: Partial<ConsoleSession>): Promise<{ id: string; session: ConsoleSession }>;
  save(id: string, session: ConsoleSession): Promise<void>;
  destroy(ctx: Context, id: string): Promise<void>;
  /** Whether `presented` is this session's CSRF token (constant time). */
  csrfMatches(session: ConsoleSession, presented: string | null | undefined): boolean;
}

/**
 * Console sessions: short (`console.idleTimeout` without a request, `console.maxAge` after sign-in),
 * in the store so any instance serves them, behind a cookie `HttpOnly; SameSite=Strict; Path=/console`
 * (and `Secure` when the console's origin is https).
 */
export function consoleSessions(options: { store: Store; idleSeconds: number; maxAgeSeconds: number; secure: boolean; now?: () => number }): ConsoleSessions {
  const { store, idleSeconds, maxAgeSeconds } = options;
  const now = options.now ?? Date.now;

  function ttlOf(session: ConsoleSession): number {
    const started = session.signedInAt ?? session.createdAt;
    const left = Math.floor((started + maxAgeSeconds * 1000 - now()) / 1000);
    return Math.min(idleSeconds, left);
  }

  function setCookie(ctx: Context, value: string, maxAge: number) {
    const parts = [`${COOKIE}=${value}`, 'Path=/console', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAge}`];
    if (options.secure) parts.push('Secure');
    ctx.append('Set-Cookie', parts.join('; '));
  }

  async function save(id: string, session: ConsoleSession): Promise<void> {
    const ttl = ttlOf(session);
    if (ttl <= 0) {
      await store.deleteTemp(keyOf(id));
      return;
    }
    await store.setTemp(keyOf(id), session, ttl);
  }

  return {
    async load(ctx) {
      const id = ctx.cookies.get(COOKIE);
      if (!id || !ID.test(id)) return undefined;
      const session = await store.getTemp<ConsoleSession>(keyOf(id));
      if (!session || ttlOf(session) <= 0) return undefined;
      return { id, session };
    },
    async create(ctx, initial = {}) {
      const id = randomBytes(32).toString('base64url');
      const session: ConsoleSession = { ...initial, csrf: randomBytes(32).toString('base64url'), createdAt: now() };
      await save(id, session);
      // The cookie outlives the idle timeout by nothing: the store decides when the session ends.
      setCookie(ctx, id, maxAgeSeconds);
      return { id, session };
    },
    save,
    async destroy(ctx, id) {
      await store.deleteTemp(keyOf(id));
      setCookie(ctx, '', 0);
    },
    csrfMatches(session, presented) {
      if (typeof presented !== 'string' || presented.length === 0) return false;
      const a = createHash('sha256').update(presented).digest();
      const b = createHash('sha256').update(session.csrf).digest();
      return timingSafeEqual(a, b);
    },
  };
}
