export * from './schema.ts';
export { ConfigError, type ConfigIssue } from './errors.ts';
export { loadConfig, crossChecks, issuesOf, sourceName, type LoadedConfig, type ParticipantIdentity, type ClientIdentity } from './load.ts';
export { parseDocumentText, readDocumentFile, describeSyntaxProblem, type ParsedDocument, type SyntaxProblem } from './documents.ts';
export { jsonSchemas } from './json-schema.ts';
export { Duration } from './duration.ts';
export { clientRedirectProblems, redirectUriProblem, isSafeRedirect, isLoopbackHost, type ApplicationType } from './redirect-uris.ts';
export { contrastRatio, parseHexColor, AA_TEXT_CONTRAST } from './contrast.ts';
