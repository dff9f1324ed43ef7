import type { ConcordSettings } from '../config/index.ts';
import type { Logger } from '../observability/index.ts';
import { createOidcConnector, type Connector } from '../upstream/index.ts';
import type { ActiveParticipant } from './registry.ts';

/**
 * One connector per participant version: a changed upstream configuration gets a fresh connector
 * (and a fresh discovery cache), an unchanged one keeps its warm cache.
 */
export class ConnectorPool {
  readonly #settings: ConcordSettings;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  readonly #connectors = new Map<string, { signature: string; connector: Connector }>();

  constructor(settings: ConcordSettings, log: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.#settings = settings;
    this.#log = log;
    this.#env = env;
  }

  redirectUri(participantId: string): string {
    return `${this.#settings.issuer}/broker/${participantId}/callback`;
  }

  get(participant: ActiveParticipant): Connector {
    const { id, upstream } = participant.config;
    const signature = JSON.stringify(upstream);
    const cached = this.#connectors.get(id);
    if (cached?.signature === signature) return cached.connector;
    const clientSecret = upstream.clientSecret ?? (upstream.clientSecretEnv ? this.#env[upstream.clientSecretEnv] : undefined);
    const connector = createOidcConnector({
      participantId: id,
      issuer: upstream.issuer,
      clientId: upstream.clientId,
      ...(clientSecret ? { clientSecret } : {}),
      scopes: upstream.scopes,
      fetchUserinfo: upstream.fetchUserinfo,
      timeoutMs: this.#settings.upstream.timeoutMs,
      discoveryTtlSeconds: this.#settings.upstream.discoveryTtl,
      ...(upstream.allowedAlgorithms ? { allowedAlgorithms: upstream.allowedAlgorithms } : {}),
      allowInsecureHttp: upstream.allowInsecureHttp,
      allowPrivateNetwork: upstream.allowPrivateNetwork,
      logger: this.#log.child({ participant: id }),
    });
    this.#connectors.set(id, { signature, connector });
    return connector;
  }

  forget(participantId: string): void {
    this.#connectors.delete(participantId);
  }
}
