export { Registry, DomainConflictError, type ActiveParticipant, type RegistryEvent } from './registry.ts';
export { ConnectorPool } from './connectors.ts';
export { createConnector, samlEndpoints, type ConnectorDeps } from './connectors.ts';
export { UpstreamWatch, type UpstreamWatchOptions } from './upstream-watch.ts';
