export { KeyManager, type KeyManagerOptions, type KeySet } from './manager.ts';
export type { KeyState, KeyView, SigningAlgorithm, StoredKey } from './types.ts';
export { BrokerClientKeys, CLIENT_KEY_COLLECTION } from './client-keys.ts';
export { SamlSpKeys, SAML_KEY_COLLECTION, type SamlSpKey } from './saml-keys.ts';
