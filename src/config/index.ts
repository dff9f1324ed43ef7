export * from './schema.ts';
export { ConfigError, type ConfigIssue } from './errors.ts';
export { loadConfig, crossChecks, issuesOf, type LoadedConfig } from './load.ts';
export { jsonSchemas } from './json-schema.ts';
export { Duration } from './duration.ts';
export { clientRedirectProblems, redirectUriProblem, isSafeRedirect, isLoopbackHost, type ApplicationType } from './redirect-uris.ts';
