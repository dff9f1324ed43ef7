export { KeyManager, type KeyManagerOptions, type KeySet } from './manager.ts';
export type { KeyState, KeyView, SigningAlgorithm, StoredKey } from './types.ts';
