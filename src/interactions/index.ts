export { interactionRoutes, upstreamLogoutReturn, pendingKey, type InteractionDeps } from './routes.ts';
export { testLogins, TEST_LOGIN_TTL_S, type TestLogins, type TestLoginResult } from './test-login.ts';
export { showError, ERROR_PAGES, type ErrorPage } from './pages.ts';
export { renderPage, render, escapeHtml, Trusted, stylesheet } from './views.ts';
export type { LoginEvent, LoginObserver, LoginOutcome } from './login-events.ts';
export type { UpstreamLogoutOutcome } from './backchannel-logout.ts';
