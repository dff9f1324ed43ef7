export { KeyManager, type KeyManagerOptions, type KeySet } from './manager.ts';
export { SIGNING_ALGORITHMS, type AlgorithmView, type KeyState, type KeyView, type SigningAlgorithm, type StoredKey } from './types.ts';
export { BrokerClientKeys, CLIENT_KEY_COLLECTION } from './client-keys.ts';
export { SamlSpKeys, SAML_KEY_COLLECTION, type SamlSpKey } from './saml-keys.ts';
export { publicJwk } from './public-jwk.ts';
