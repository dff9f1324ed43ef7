export type { Store, Adapter, AdapterPayload, LogEntry } from './types.ts';
export { StoreFullError, StoreUnavailableError } from './errors.ts';
export { MEMORY_STORE_DEFAULTS, MemoryStore, type MemoryStoreOptions } from './memory.ts';
export { createStore } from './factory.ts';
export { deferWrite, destroyedHere, noteSessionId, requestLocal, settleDeferredWrites, withRequestReads, type RequestLocal } from './request-reads.ts';
