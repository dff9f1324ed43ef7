/**
 * The broker's re-export of concord-verify (the npm workspace packages/verify), for code written
 * when the verifier lived here. New code imports `concord-verify` (services) or `#concord-verify`
 * (the broker's own sources).
 */
export * from '#concord-verify';
