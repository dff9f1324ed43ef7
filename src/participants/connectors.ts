import { samlSpEntityId, type ConcordSettings, type Participant } from '../config/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Store } from '../store/index.ts';
import { createOidcConnector, createSamlConnector, type ClientKeySource, type Connector, type SamlKeySource } from '../upstream/index.ts';
import type { ActiveParticipant } from './registry.ts';

export interface ConnectorDeps {
  settings: ConcordSettings;
  /** Concord's own client keys, for participants that use private_key_jwt. */
  clientKeys?: ClientKeySource | undefined;
  /** Concord's SAML SP keys, for SAML participants. */
  samlKeys?: SamlKeySource | undefined;
  /** Where SAML Assertion IDs are remembered until they expire (claimTemp); a SAML participant needs it. */
  store?: Pick<Store, 'claimTemp'> | undefined;
  /** Where clientSecretEnv is read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: Logger | undefined;
}

/** Concord's SAML endpoints for a participant (design.md: `{issuer}/saml/{participantId}/...`). */
export function samlEndpoints(issuer: string, participantId: string): { base: string; metadata: string; acs: string; slo: string } {
  const base = `${issuer.replace(/\/+$/, '')}/saml/${participantId}`;
  return { base, metadata: `${base}/metadata`, acs: `${base}/acs`, slo: `${base}/slo` };
}

/**
 * The connector a participant's configuration describes: one place that turns `upstream.*` into
 * connector options, for logins (ConnectorPool) and the admin API's registration check alike; the
 * one place that looks at `upstream.type`.
 */
export function createConnector(participant: Participant, deps: ConnectorDeps): Connector {
  const { id, upstream } = participant;
  const logger = deps.log ? { logger: deps.log.child({ participant: id }) } : {};
  if (upstream.type === 'saml') {
    const { samlKeys, store } = deps;
    if (!samlKeys || !store) throw new Error('a SAML participant needs Concord’s SAML SP keys and a store');
    const endpoints = samlEndpoints(deps.settings.issuer, id);
    return createSamlConnector({
      participantId: id,
      ...(upstream.idpMetadataUrl ? { metadataUrl: upstream.idpMetadataUrl } : {}),
      ...(upstream.idpMetadataXml ? { metadataXml: upstream.idpMetadataXml } : {}),
      spEntityId: samlSpEntityId(deps.settings.issuer, id, upstream),
      acsUrl: endpoints.acs,
      sloUrl: endpoints.slo,
      nameIdFormat: upstream.nameIdFormat,
      ...(upstream.subjectAttribute ? { subjectAttribute: upstream.subjectAttribute } : {}),
      wantAssertionsEncrypted: upstream.wantAssertionsEncrypted,
      allowSha1: upstream.allowSha1,
      allowIdpInitiated: upstream.allowIdpInitiated,
      attributeAliases: upstream.attributeAliases,
      keys: samlKeys,
      replay: { firstUse: (key, ttl) => store.claimTemp(`saml-assertion:${key}`, 1, ttl) },
      timeoutMs: deps.settings.upstream.timeoutMs,
      metadataTtlSeconds: deps.settings.upstream.discoveryTtl,
      allowInsecureHttp: upstream.allowInsecureHttp,
      allowPrivateNetwork: upstream.allowPrivateNetwork,
      ...logger,
    });
  }
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
    ...logger,
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
  /** Per participant: its connector, the upstream settings it was made for, and the registry entry it was last given for. */
  readonly #connectors = new Map<string, { signature: string; connector: Connector; participant: ActiveParticipant }>();

  constructor(deps: ConnectorDeps & { wrap?: (connector: Connector) => Connector }) {
    this.#deps = deps;
    this.#wrap = deps.wrap ?? ((c) => c);
  }

  /** Where the upstream answers a login: the broker callback (OIDC); a SAML connector posts to its own ACS instead. */
  redirectUri(participantId: string): string {
    return `${this.#deps.settings.issuer}/broker/${participantId}/callback`;
  }

  /**
   * The participant's connector, made again when its upstream settings change. The registry makes a
   * new entry whenever a participant is set, so the same entry as last time (every refresh, every
   * login step in between) is answered without comparing its settings again.
   */
  get(participant: ActiveParticipant): Connector {
    const { id, upstream } = participant.config;
    const cached = this.#connectors.get(id);
    if (cached?.participant === participant) return cached.connector;
    const signature = JSON.stringify(upstream);
    if (cached?.signature === signature) {
      cached.participant = participant;
      return cached.connector;
    }
    const connector = this.#wrap(createConnector(participant.config, this.#deps));
    this.#connectors.set(id, { signature, connector, participant });
    return connector;
  }

  forget(participantId: string): void {
    this.#connectors.delete(participantId);
  }
}
