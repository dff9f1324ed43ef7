export type { Store, Adapter, AdapterPayload, LogEntry } from './types.ts';
export { StoreUnavailableError } from './errors.ts';
export { MemoryStore } from './memory.ts';
export { createStore } from './factory.ts';
