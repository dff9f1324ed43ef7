import type { ConcordSettings, Participant } from '../config/index.ts';
import { createOidcConnector, UpstreamError } from '../upstream/index.ts';
import { AdminError } from './errors.ts';

/** Checks an upstream before a participant is registered or changed; throws AdminError 422 with the reason. */
export type UpstreamCheck = (participant: Participant) => Promise<void>;

/**
 * Fetches the discovery document and the JWKS with the connector a login would use: the issuer
 * must match exactly, the endpoints Concord needs must be there, and an ID token algorithm we
 * accept must be offered with a key for it. A throwaway connector: nothing is cached from a
 * check of a configuration that may yet be refused.
 */
export function upstreamCheck(settings: ConcordSettings): UpstreamCheck {
  return async (participant) => {
    const { upstream } = participant;
    const connector = createOidcConnector({
      participantId: participant.id,
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      scopes: upstream.scopes,
      fetchUserinfo: upstream.fetchUserinfo,
      timeoutMs: settings.upstream.timeoutMs,
      ...(upstream.allowedAlgorithms ? { allowedAlgorithms: upstream.allowedAlgorithms } : {}),
      allowInsecureHttp: upstream.allowInsecureHttp,
      allowPrivateNetwork: upstream.allowPrivateNetwork,
    });
    try {
      await connector.probe();
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      // Admins are trusted readers: the upstream's (clipped) answer is what they need to fix it.
      throw new AdminError(422, 'upstream_invalid', `upstream check of ${upstream.issuer} failed: ${error.message}`, {
        field: 'upstream.issuer',
        reason: error.code,
      });
    }
  };
}
