export { interactionRoutes, upstreamLogoutReturn, type InteractionDeps } from './routes.ts';
export { showError, ERROR_PAGES, type ErrorPage } from './pages.ts';
export { renderPage, render, escapeHtml, Trusted, stylesheet } from './views.ts';
export type { LoginEvent, LoginObserver, LoginOutcome } from './login-events.ts';
export type { UpstreamLogoutOutcome } from './backchannel-logout.ts';
