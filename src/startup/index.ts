import { isLoopbackHost, upstreamName, type ConcordSettings, type Participant } from '../config/index.ts';
import { ConcordError } from '../errors.ts';

/*
 * What `npm start` says about a set-up that starts but will not work as the operator thinks: each
 * notice once, at start-up, in words (src/main.ts logs them at warn level). Pure functions of the
 * settings and of what the listeners and the first health checks found, so each can be tested.
 */

/** A start-up notice: `message` for the log line, `detail` its structured fields. */
export interface StartupNotice {
  code: 'issuer_listener_mismatch' | 'admin_api_off' | 'local_idps_not_running';
  message: string;
  detail: Record<string, unknown>;
}

/**
 * The issuer names this machine (a loopback host) on another port than the public listener's: the
 * tokens' `iss` and every URL in discovery point where Concord is not (typically CONCORD_PORT
 * changed without CONCORD_ISSUER). A public issuer may differ from the listener (a proxy in front).
 */
export function issuerMismatch(issuer: string, listenerPort: number): StartupNotice | undefined {
  const url = URL.parse(issuer);
  if (!url || !isLoopbackHost(url.hostname)) return undefined;
  const issuerPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (issuerPort === listenerPort) return undefined;
  const suggested = new URL(url);
  suggested.port = String(listenerPort);
  return {
    code: 'issuer_listener_mismatch',
    message:
      `the issuer ${issuer} is not the public listener (port ${listenerPort}): tokens carry that iss and browsers are sent there; ` +
      `set CONCORD_ISSUER=${suggested.href.replace(/\/$/, '')} (or the public URL a proxy serves)`,
    detail: { issuer, port: listenerPort },
  };
}

/** No admin token: the admin API (and so the concord CLI, the console) refuses every call. */
export function adminApiOff(settings: Pick<ConcordSettings, 'admin'>, adminUrl: string): StartupNotice | undefined {
  if (settings.admin.token) return undefined;
  return {
    code: 'admin_api_off',
    message: `the admin API at ${adminUrl} is off: CONCORD_ADMIN_TOKEN is not set, so every /admin/v1 call (and the concord CLI) is refused; set it to turn the API on`,
    detail: { admin: adminUrl },
  };
}

/**
 * Participants whose IdP is on this machine (a loopback URL) and did not answer the first health
 * check: the shipped config/participants are the demo's partners (`npm run demo` runs their IdPs),
 * and nobody signs in through them with `npm start` alone.
 */
export function localIdpsNotRunning(participants: Array<Pick<Participant, 'id' | 'upstream'>>, unreachable: (id: string) => boolean): StartupNotice | undefined {
  const idle = participants.filter((p) => {
    const url = URL.parse(upstreamName(p.upstream));
    return url !== null && isLoopbackHost(url.hostname) && unreachable(p.id);
  });
  if (idle.length === 0) return undefined;
  const list = idle.map((p) => `${p.id} (${upstreamName(p.upstream)})`).join(', ');
  return {
    code: 'local_idps_not_running',
    message:
      `no IdP answers for participants ${list}: they are on this machine and not running, so nobody can sign in through them. ` +
      'The shipped config/participants are the demo\'s partners: `npm run demo` runs them with Concord; for your own, replace config/participants',
    detail: { participants: idle.map((p) => p.id) },
  };
}

/** A listener could not bind: which one, the setting that moves it, and what to do. */
export function listenError(error: NodeJS.ErrnoException, listener: { name: 'public' | 'admin'; host: string; port: number }): Error {
  const variable = listener.name === 'public' ? 'CONCORD_PORT' : 'CONCORD_ADMIN_PORT';
  const where = `${listener.host}:${listener.port}`;
  if (error.code === 'EADDRINUSE') {
    return new ConcordError('port_in_use', `port ${listener.port} of the ${listener.name} listener (${where}) is in use: stop what holds it, or set ${variable} to a free port`, { cause: error });
  }
  if (error.code === 'EACCES') {
    return new ConcordError('port_not_allowed', `the ${listener.name} listener may not bind ${where} (ports below 1024 need privileges): set ${variable} to a port above 1023`, { cause: error });
  }
  if (error.code === 'EADDRNOTAVAIL') {
    return new ConcordError('address_not_available', `the ${listener.name} listener cannot bind ${where}: no such address on this machine; set ${listener.name === 'public' ? 'CONCORD_HOST' : 'CONCORD_ADMIN_HOST'}`, { cause: error });
  }
  return error;
}
