/**
 * Every page Concord shows to a person (sign-in, consent, logout, errors, 404), localised from the
 * message catalogues and branded from pages.* of the configuration. The interaction routes, the
 * provider's logout and error pages and the HTTP middleware all render through here.
 */
export { Pages, loadPages, pagesOf, renderPage, type ParticipantShown } from './pages.ts';
export { showError, errorText, ERROR_PAGES, type ErrorPage, type ErrorDetails, type WayBack } from './errors.ts';
export { escapeHtml, Trusted, inlineScript, type TemplateVars } from './render.ts';
export { negotiateLocale, catalogueIssues, placeholdersOf, loadCatalogues, shippedCatalogue, SHIPPED_LOCALES, REFERENCE_LOCALE, Messages, type CatalogueIssue } from './messages.ts';
export { contrastRatio, parseHexColor, AA_TEXT_CONTRAST } from '../config/index.ts';
export { MAX_LOGO_BYTES } from './assets.ts';
