import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

/** A logout token a service received and verified. */
export interface ReceivedLogout {
  payload: JWTPayload & { sid?: string; events?: Record<string, unknown> };
  header: { typ?: string; alg?: string; kid?: string };
  /** The names of the form's fields, in order (OIDC Back-Channel Logout 1.0 2.5: logout_token alone). */
  fields: string[];
  /** The logout token as sent. */
  token: string;
}

export interface LogoutReceiver {
  /** Register this as the client's `backchannel_logout_uri`. */
  readonly uri: string;
  /** Every logout token received that verified, in order. */
  readonly received: ReceivedLogout[];
  /** Every request that did not verify (its reason). */
  readonly refused: string[];
  /** How many requests came in at all. */
  readonly requests: () => number;
  /** Answer this HTTP status instead of 200 (a service that is failing); undefined: verify and answer 200. */
  failWith: number | undefined;
  /** Resolves once `count` tokens verified, or rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedLogout[]>;
  close(): Promise<void>;
}

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * A service's back-channel logout endpoint on loopback, as a real relying party writes one: it reads
 * `logout_token` from the form and verifies it with jose against Concord's JWKS (OIDC Back-Channel
 * Logout 1.0 2.6: signature, `typ` logout+jwt, `iss`, `aud` = its client id, `iat`, `exp`, the `events`
 * member, `sub` or `sid`, no `nonce`), answering 200, or 400 for a token that fails.
 */
export async function startLogoutReceiver(options: { issuer: string; clientId: string; path?: string }): Promise<LogoutReceiver> {
  const jwks = createRemoteJWKSet(new URL(`${options.issuer}/jwks`));
  const received: ReceivedLogout[] = [];
  const refused: string[] = [];
  const waiters: Array<{ count: number; resolve: (r: ReceivedLogout[]) => void }> = [];
  let requests = 0;
  const state = { failWith: undefined as number | undefined };

  const server = http.createServer((req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        if (state.failWith !== undefined) {
          res.writeHead(state.failWith).end();
          return;
        }
        try {
          if (req.method !== 'POST' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) throw new Error('not a form POST');
          const form = new URLSearchParams(Buffer.concat(chunks).toString());
          const token = form.get('logout_token');
          if (!token) throw new Error('no logout_token');
          const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: options.issuer, audience: options.clientId, typ: 'logout+jwt', requiredClaims: ['iat', 'exp', 'jti'] });
          const events = payload.events as Record<string, unknown> | undefined;
          if (!events || typeof events[BACKCHANNEL_LOGOUT_EVENT] !== 'object') throw new Error('no back-channel logout event');
          if (payload.nonce !== undefined) throw new Error('a nonce');
          if (payload.sub === undefined && payload.sid === undefined) throw new Error('neither sub nor sid');
          received.push({ payload: payload as ReceivedLogout['payload'], header: protectedHeader as ReceivedLogout['header'], fields: [...form.keys()], token });
          res.writeHead(200, { 'cache-control': 'no-store' }).end();
          for (const waiter of [...waiters]) {
            if (received.length >= waiter.count) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.resolve([...received]);
            }
          }
        } catch (error) {
          refused.push((error as Error).message);
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request' }));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    uri: `http://127.0.0.1:${port}${options.path ?? '/backchannel-logout'}`,
    received,
    refused,
    requests: () => requests,
    get failWith() {
      return state.failWith;
    },
    set failWith(status) {
      state.failWith = status;
    },
    waitFor(count, timeoutMs = 10_000) {
      if (received.length >= count) return Promise.resolve([...received]);
      return new Promise((resolve, reject) => {
        const waiter = { count, resolve };
        waiters.push(waiter);
        setTimeout(() => {
          const at = waiters.indexOf(waiter);
          if (at < 0) return;
          waiters.splice(at, 1);
          reject(new Error(`${received.length} of ${count} logout tokens received in time (${refused.length} refused: ${refused.join('; ')})`));
        }, timeoutMs).unref();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
