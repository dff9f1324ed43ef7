import type { ConcordSettings, Participant } from '../config/index.ts';
import type { Logger } from '../observability/index.ts';
import { createOidcConnector, type ClientKeySource, type Connector } from '../upstream/index.ts';
import type { ActiveParticipant } from './registry.ts';

export interface ConnectorDeps {
  settings: ConcordSettings;
  /** Concord's own client keys, for participants that use private_key_jwt. */
  clientKeys?: ClientKeySource | undefined;
  /** Where clientSecretEnv is read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger | undefined;
}

/**
 * The connector a participant's configuration describes: one place that turns `upstream.*` into
 * connector options, for logins (ConnectorPool) and the admin API's registration check alike.
 */
export function createConnector(participant: Participant, deps: ConnectorDeps): Connector {
  const { id, upstream } = participant;
  const env = deps.env ?? process.env;
  const clientSecret = upstream.clientSecret ?? (upstream.clientSecretEnv ? env[upstream.clientSecretEnv] : undefined);
  return createOidcConnector({
    participantId: id,
    issuer: upstream.issuer,
    clientId: upstream.clientId,
    ...(clientSecret ? { clientSecret } : {}),
    ...(upstream.tokenEndpointAuthMethod ? { tokenEndpointAuthMethod: upstream.tokenEndpointAuthMethod } : {}),
    ...(deps.clientKeys ? { clientKeys: deps.clientKeys } : {}),
    scopes: upstream.scopes,
    ...(upstream.fetchUserinfo !== undefined ? { fetchUserinfo: upstream.fetchUserinfo } : {}),
    responseMode: upstream.responseMode,
    timeoutMs: deps.settings.upstream.timeoutMs,
    discoveryTtlSeconds: deps.settings.upstream.discoveryTtl,
    ...(upstream.allowedAlgorithms ? { allowedAlgorithms: upstream.allowedAlgorithms } : {}),
    allowInsecureHttp: upstream.allowInsecureHttp,
    allowPrivateNetwork: upstream.allowPrivateNetwork,
    ...(deps.log ? { logger: deps.log.child({ participant: id }) } : {}),
  });
}

/**
 * One connector per participant version: a changed upstream configuration gets a fresh connector
 * (and a fresh discovery cache), an unchanged one keeps its warm cache. `wrap` puts each behind
 * whatever guards it (the participant's circuit breaker: upstream/health.ts).
 */
export class ConnectorPool {
  readonly #deps: ConnectorDeps;
  readonly #wrap: (connector: Connector) => Connector;
  readonly #connectors = new Map<string, { signature: string; connector: Connector }>();

  constructor(deps: ConnectorDeps & { wrap?: (connector: Connector) => Connector }) {
    this.#deps = deps;
    this.#wrap = deps.wrap ?? ((c) => c);
  }

  redirectUri(participantId: string): string {
    return `${this.#deps.settings.issuer}/broker/${participantId}/callback`;
  }

  get(participant: ActiveParticipant): Connector {
    const { id, upstream } = participant.config;
    const signature = JSON.stringify(upstream);
    const cached = this.#connectors.get(id);
    if (cached?.signature === signature) return cached.connector;
    const connector = this.#wrap(createConnector(participant.config, this.#deps));
    this.#connectors.set(id, { signature, connector });
    return connector;
  }

  forget(participantId: string): void {
    this.#connectors.delete(participantId);
  }
}
