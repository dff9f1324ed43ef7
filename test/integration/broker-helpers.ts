import assert from 'node:assert/strict';
import { ERROR_PAGES, errorText, type ErrorPage } from '../../src/pages/index.ts';
import { RP, type Federation } from '../support/federation.ts';
import type { Browser, BrowserResponse } from '../support/http-client.ts';

/** Shared checks of the broker integration tests (not a test file itself). */

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export const atRp = (u: URL) => u.href.startsWith(RP.redirect_uris[0]!);

/** Every URL this browser requested or was sent to that reached the RP's redirect URI carrying a code. */
export function codesAtRp(browser: Browser): URL[] {
  const urls = browser.history.flatMap((hop) => [hop.url, ...(hop.location ? [hop.location] : [])]);
  return urls.filter((u) => atRp(u) && u.searchParams.has('code'));
}

/** The browser never got near the RP with an authorization code, in any hop of any request it made. */
export function assertNoCodeAtRp(browser: Browser): void {
  assert.deepEqual(codesAtRp(browser).map((u) => u.href), [], 'an authorization code reached the RP');
}

/**
 * The page is Concord's error page `page`: its status and heading, and a reference the user can
 * read out that is also in Concord's log (on the line that says why). Returns the reference.
 */
export function assertErrorPage(fed: Federation, res: BrowserResponse, page: ErrorPage): string {
  const spec = { ...ERROR_PAGES[page], ...errorText(page) };
  assert.equal(res.url.origin, fed.concord.issuer, `ended at ${res.url.href}, not on Concord`);
  assert.equal(res.status, spec.status, `expected the ${page} page (${spec.status}), got ${res.status}: ${res.body.slice(0, 400)}`);
  assert.ok(res.body.includes(spec.heading), `heading of ${page} missing: ${res.body.slice(0, 600)}`);
  const reference = /Reference: <code>([^<]+)<\/code>/.exec(res.body)?.[1];
  assert.ok(reference, 'the error page shows no reference');
  const logged = fed.concord.logs.filter((line) => line.reference === reference);
  assert.ok(logged.length > 0, `reference ${reference} is not in the logs`);
  assert.ok(
    logged.some((line) => line.page === page),
    `the log line of ${reference} names another page: ${JSON.stringify(logged)}`,
  );
  return reference;
}

/** Calls the admin API of the federation's Concord. */
export async function admin(fed: Federation, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${fed.concord.adminUrl}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Sets a participant's `enabled` through the admin API, and waits until this instance serves it. */
export async function setEnabled(fed: Federation, participantId: string, enabled: boolean): Promise<void> {
  const res = await admin(fed, 'POST', `/participants/${participantId}/${enabled ? 'enable' : 'disable'}`);
  assert.equal(res.status, 200, await res.text());
  const deadline = Date.now() + 3000;
  while (fed.concord.concord.registry.participant(participantId)?.config.enabled !== enabled) {
    assert.ok(Date.now() < deadline, `participant ${participantId} not ${enabled ? 'enabled' : 'disabled'} in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The first hop of the browser's history whose URL path starts with `prefix`. */
export function hopTo(browser: Browser, prefix: string): URL | undefined {
  return browser.history.find((hop) => hop.url.pathname.startsWith(prefix))?.url;
}
