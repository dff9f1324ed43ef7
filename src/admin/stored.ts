import { ClientSchema, ParticipantSchema, type ClientConfig, type Participant } from '../config/index.ts';
import type { SecretBox } from '../secrets/index.ts';

/*
 * How participants and clients sit in the store, and what the API shows of them. Secrets are
 * write-only: sealed (AES-256-GCM) at rest, replaced by a `...Set` flag in every response.
 */

export const PARTICIPANTS = 'participants';
export const CLIENTS = 'clients';

export interface StoredParticipant {
  /** The participant without `upstream.clientSecret`. */
  config: Participant;
  sealedClientSecret?: string;
  updatedAt: string;
}

export interface StoredClient {
  /** The client without `client_secret`. */
  config: ClientConfig;
  sealedClientSecret?: string;
  updatedAt: string;
}

/** What a sealed secret is for (SecretBox context): a secret copied to another record does not open there. */
export const participantSecretContext = (id: string) => `participant:${id}:upstream.clientSecret`;
export const clientSecretContext = (clientId: string) => `client:${clientId}:client_secret`;

/** The upstream's write-only client secret (OIDC only; a SAML upstream has none) and the rest of it. */
function splitSecret(upstream: Participant['upstream']): { clientSecret: string | undefined; upstream: Participant['upstream'] } {
  if (upstream.type !== 'oidc') return { clientSecret: undefined, upstream };
  const { clientSecret, ...rest } = upstream;
  return { clientSecret, upstream: rest };
}

export function sealParticipant(participant: Participant, box: SecretBox): StoredParticipant {
  const { clientSecret, upstream } = splitSecret(participant.upstream);
  return {
    config: { ...participant, upstream: upstream as Participant['upstream'] },
    ...(clientSecret ? { sealedClientSecret: box.seal(clientSecret, participantSecretContext(participant.id)) } : {}),
    updatedAt: new Date().toISOString(),
  };
}

/**
 * Re-validates what the store holds: another instance may run a newer schema, or the record may
 * be damaged. Throws (zod or secret errors) and the caller keeps what it had.
 */
export function openParticipant(stored: StoredParticipant, box: SecretBox): Participant {
  const upstream = { ...stored.config.upstream, ...(stored.sealedClientSecret ? { clientSecret: box.open(stored.sealedClientSecret, participantSecretContext(stored.config.id)) } : {}) };
  return ParticipantSchema.parse({ ...stored.config, upstream });
}

export function sealClient(client: ClientConfig, box: SecretBox): StoredClient {
  const { client_secret, ...config } = client;
  return {
    config: config as ClientConfig,
    ...(client_secret ? { sealedClientSecret: box.seal(client_secret, clientSecretContext(client.client_id)) } : {}),
    updatedAt: new Date().toISOString(),
  };
}

export function openClient(stored: StoredClient, box: SecretBox): ClientConfig {
  return ClientSchema.parse({ ...stored.config, ...(stored.sealedClientSecret ? { client_secret: box.open(stored.sealedClientSecret, clientSecretContext(stored.config.client_id)) } : {}) });
}

export type ParticipantView = Omit<Participant, 'upstream'> & {
  upstream: (Omit<Extract<Participant['upstream'], { type: 'oidc' }>, 'clientSecret'> & { clientSecretSet: boolean }) | Extract<Participant['upstream'], { type: 'saml' }>;
};

export function participantView(participant: Participant): ParticipantView {
  const { clientSecret, upstream } = splitSecret(participant.upstream);
  return { ...participant, upstream: upstream.type === 'oidc' ? { ...upstream, clientSecretSet: Boolean(clientSecret) } : upstream };
}

export type ClientView = Omit<ClientConfig, 'client_secret'> & { client_secret_set: boolean };

export function clientView(client: ClientConfig): ClientView {
  const { client_secret, ...rest } = client;
  return { ...rest, client_secret_set: Boolean(client_secret) };
}

/** Paths of write-only fields, for the audit diff. */
export const SECRET_PATHS = new Set(['upstream.clientSecret', 'client_secret']);
