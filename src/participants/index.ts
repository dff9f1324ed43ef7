export { Registry, DomainConflictError, type ActiveParticipant, type RegistryEvent } from './registry.ts';
export { ConnectorPool } from './connectors.ts';
export { domainOf } from './domains.ts';
