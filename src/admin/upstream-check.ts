import { upstreamName, type ConcordSettings, type Participant } from '../config/index.ts';
import { createConnector } from '../participants/index.ts';
import type { Store } from '../store/index.ts';
import { UpstreamError, type ClientKeySource, type SamlKeySource } from '../upstream/index.ts';
import { AdminError } from './errors.ts';

/** Checks an upstream before a participant is registered or changed; throws AdminError 422 with the reason. */
export type UpstreamCheck = (participant: Participant) => Promise<void>;

/**
 * SAML: fetches (through the public-address guard) and reads the IdP metadata: one entity, a usable
 * signing certificate, an HTTP-Redirect SSO endpoint, https endpoints, not expired.
 * OIDC: fetches the discovery document and the JWKS with the connector a login would use: the issuer
 * must match exactly (the answer names both issuers, with a hint for multi-tenant templates), the
 * endpoints Concord needs must be there, an ID token algorithm we accept must be offered with a key
 * for it, and the upstream must list the client authentication method and response mode chosen. A
 * throwaway connector: nothing is cached from a check of a configuration that may yet be refused.
 */
export function upstreamCheck(deps: { settings: ConcordSettings; clientKeys?: ClientKeySource | undefined; samlKeys?: SamlKeySource | undefined; store?: Pick<Store, 'claimTemp'> | undefined; env?: NodeJS.ProcessEnv }): UpstreamCheck {
  return async (participant) => {
    const connector = createConnector(participant, deps);
    try {
      await connector.probe();
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      // Admins are trusted readers: the upstream's (clipped) answer is what they need to fix it.
      throw new AdminError(422, 'upstream_invalid', `upstream check of ${upstreamName(participant.upstream)} failed: ${error.message}`, {
        field: error.setting ?? (participant.upstream.type === 'oidc' ? 'upstream.issuer' : 'upstream.idpMetadataUrl'),
        reason: error.code,
      });
    }
  };
}
