export { interactionRoutes, upstreamLogoutReturn, pendingKey, type InteractionDeps } from './routes.ts';
export { testLogins, TEST_LOGIN_TTL_S, type TestLogins, type TestLoginResult } from './test-login.ts';
export type { UpstreamLogoutOutcome } from './backchannel-logout.ts';
export type { LoginEvent, LoginObserver, LoginOutcome } from './login-events.ts';
export { trailingInteractions } from './trail.ts';
