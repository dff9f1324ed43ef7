import { randomUUID } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { LogoutNotice } from '../sessions/index.ts';

/** The back-channel logout event (OIDC Back-Channel Logout 1.0 2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A service that did not take a logout token; `status` is its HTTP answer, when it answered. */
export class LogoutDeliveryError extends Error {
  readonly status: number | undefined;
  readonly code: string;
  constructor(code: string, message: string, status?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.status = status;
  }
}

/**
 * Signs a logout token for one service of an ended session and POSTs it to the service's
 * `backchannel_logout_uri` (OIDC Back-Channel Logout 1.0 2.4 and 2.5): `typ: logout+jwt`, `iss`,
 * `aud` = the client, `iat`, `exp` (2 minutes), a fresh `jti`, the back-channel `events` member,
 * `sub` (pairwise for a pairwise client) and the service's `sid` in that session when known; signed
 * by oidc-provider's IdToken with the client's `id_token_signed_response_alg` and Concord's current
 * key, as its own end_session would. The service must answer 200 or 204 (2.8), within `timeoutMs`;
 * redirects are not followed. Throws LogoutDeliveryError (`client_gone`, `rejected` with `status`,
 * `unreachable`).
 */
export async function sendLogoutToken(provider: Provider, notice: LogoutNotice, timeoutMs: number): Promise<void> {
  const client = await provider.Client.find(notice.clientId);
  const uri = client?.backchannelLogoutUri;
  if (!client || !uri) throw new LogoutDeliveryError('client_gone', `client ${notice.clientId} no longer has a backchannel_logout_uri`);
  const token = new provider.IdToken({ sub: notice.accountId }, { client });
  // Only `sub` of the account's claims (what oidc-provider's own Client#backchannelLogout releases).
  (token as unknown as { mask: Record<string, null> }).mask = { sub: null };
  token.set('events', { [BACKCHANNEL_LOGOUT_EVENT]: {} });
  token.set('jti', randomUUID());
  if (notice.sid) token.set('sid', notice.sid);
  const logoutToken = await token.issue({ use: 'logout' });
  let response: Response;
  try {
    response = await fetch(uri, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Concord back-channel logout' },
      body: new URLSearchParams({ logout_token: logoutToken }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    throw new LogoutDeliveryError('unreachable', `${notice.clientId}: the back-channel logout URI did not answer`, undefined, cause);
  }
  await response.body?.cancel();
  if (response.status !== 200 && response.status !== 204) {
    throw new LogoutDeliveryError('rejected', `${notice.clientId}: the back-channel logout URI answered HTTP ${response.status}`, response.status);
  }
}
