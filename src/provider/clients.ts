import type { Adapter, ClientMetadata } from 'oidc-provider';
import type { ClientConfig } from '../config/index.ts';
import type { Registry } from '../participants/index.ts';

/** Client metadata Concord adds to OIDC's; oidc-provider must be told their names. */
export const EXTRA_CLIENT_METADATA = ['skip_consent', 'participants', 'access_token_claims', 'default_resource', 'logo'] as const;

// The registry replaces a client's object when it changes, so the object is the cache key.
const metadataOf = new WeakMap<ClientConfig, ClientMetadata>();

/** The client as oidc-provider wants it: the registry's entry without undefined fields. */
export function toClientMetadata(client: ClientConfig): ClientMetadata {
  let metadata = metadataOf.get(client);
  if (!metadata) {
    metadata = buildMetadata(client);
    metadataOf.set(client, metadata);
  }
  return metadata;
}

function buildMetadata(client: ClientConfig): ClientMetadata {
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(client)) if (value !== undefined) metadata[key] = value;
  if (!client.grant_types.includes('authorization_code')) {
    // A machine client has no browser leg: no response types, and no redirect URIs to check.
    metadata.response_types = [];
    if (client.redirect_uris.length === 0) delete metadata.redirect_uris;
    if (client.post_logout_redirect_uris.length === 0) delete metadata.post_logout_redirect_uris;
  }
  return metadata as ClientMetadata;
}

/**
 * oidc-provider reads clients through the `Client` model's adapter; answering from the registry
 * means a client added or changed at runtime is served on the next request, without a restart.
 */
export function clientAdapter(registry: Registry): Adapter {
  const readOnly = async () => {
    throw new Error('clients are managed through the admin API, not by oidc-provider');
  };
  return {
    async find(id: string) {
      const client = registry.client(id);
      return client ? toClientMetadata(client) : undefined;
    },
    upsert: readOnly,
    findByUid: async () => undefined,
    findByUserCode: async () => undefined,
    consume: readOnly,
    destroy: readOnly,
    revokeByGrantId: async () => undefined,
  };
}
