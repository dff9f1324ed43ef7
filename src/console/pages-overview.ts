import type Router from '@koa/router';
import type { Context } from 'koa';
import { stateOf, type ConsoleDeps } from './context.ts';
import { badge, html, page, when, type Html, type PageChrome } from './html.ts';

/** The header of a signed-in page (name, sign-out form with the CSRF token). */
export function chrome(ctx: Context, title: string, section?: PageChrome['section'], notice?: string): PageChrome {
  const { session } = stateOf(ctx);
  return { title, admin: { name: session.admin!.name, csrf: session.csrf }, ...(section ? { section } : {}), ...(notice ? { notice } : {}) };
}

export function render(ctx: Context, chromeOf: PageChrome, body: Html): void {
  ctx.type = 'html';
  ctx.body = page(chromeOf, body);
}

/** A one-line notice carried over a redirect after a change (`?done=`), from a fixed list: never free text from the URL. */
export const NOTICES: Record<string, string> = {
  enabled: 'Enabled: its verified domains route logins now.',
  disabled: 'Disabled: no new logins, and its users’ sessions were ended.',
  revoked: 'Sessions revoked: every session through this participant ended, and its services were told.',
  saved: 'Saved.',
  created: 'Created (disabled): prove its domains, check the mapping, run a test login, then enable it.',
  checked: 'Domain checked.',
  rotated: 'A new signing key was added for every algorithm (keys.algorithms).',
  deleted: 'Deleted.',
  ended: 'Session ended.',
};
export const noticeOf = (ctx: Context): string | undefined => (typeof ctx.query.done === 'string' ? NOTICES[ctx.query.done] : undefined);

const outcomes = (counts: Record<string, number>) => {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return html`<span class="muted">none</span>`;
  return html`<ul class="plain">${entries.map(([outcome, n]) => html`<li>${outcome}: ${n}</li>`)}</ul>`;
};

export function overviewPage(router: Router, deps: ConsoleDeps): void {
  router.get('/', async (ctx) => {
    const participants = deps.ops.listParticipants();
    const records = await deps.domains.list();
    const keys = await deps.ops.listKeys();
    const nextRotation = deps.keys.ages().secondsToNextRotation;
    const instances = await deps.instances();
    const version = deps.sync.version;

    const rows = participants.map((p) => {
      const domains = p.domains.map((d) => {
        const record = records.find((r) => r.domain === d && r.participant === p.id);
        return html`<li>${d} ${badge(record?.state ?? 'unknown')}</li>`;
      });
      const last = deps.logins.lastError(p.id);
      return html`<tr>
        <th scope="row"><a href="/console/participants/${p.id}">${p.displayName}</a><br><code>${p.id}</code></th>
        <td>${badge(p.enabled ? 'enabled' : 'disabled')}</td>
        <td><ul class="plain">${domains}</ul></td>
        <td>${badge(p.status.state)}${p.status.circuit ? html`<br>circuit ${badge(p.status.circuit)}` : ''}${p.status.checkedAt ? html`<br><span class="muted">checked ${when(p.status.checkedAt)}</span>` : ''}</td>
        <td>${outcomes(deps.logins.lastHour(p.id))}</td>
        <td>${p.status.code ? html`<code>${p.status.code}</code>: ${p.status.reason ?? ''}<br>` : ''}${last ? html`login ${last.outcome} at ${when(last.at)}${last.reference ? html`<br>reference <code>${last.reference}</code>` : ''}` : p.status.code ? '' : html`<span class="muted">none</span>`}</td>
      </tr>`;
    });

    render(
      ctx,
      chrome(ctx, 'Overview', 'overview', deps.settings.console.allow === undefined ? 'console.allow is not set: only the admin token signs in to the console.' : undefined),
      html`<h2 id="participants">Participants</h2>
      <p><a href="/console/onboard">Onboard a new partner</a></p>
      <table aria-labelledby="participants">
        <thead><tr><th scope="col">Participant</th><th scope="col">State</th><th scope="col">Domains (proof)</th><th scope="col">Upstream</th><th scope="col">Logins, last hour (this instance)</th><th scope="col">Last error</th></tr></thead>
        <tbody>${rows.length ? rows : html`<tr><td colspan="6">No participants yet.</td></tr>`}</tbody>
      </table>
      <div class="grid">
        <section class="panel" aria-labelledby="keys-h"><h2 id="keys-h">Signing keys</h2>
          <ul class="plain">${keys.map((k) => html`<li>${badge(k.state)} <code>${k.kid}</code> ${k.alg}${k.state === 'next' ? html`, signs from ${when(k.activatesAt)}` : ''}${k.removeAt ? html`, leaves the JWKS ${when(k.removeAt)}` : ''}</li>`)}</ul>
          <p>Next rotation: ${nextRotation === undefined ? html`<span class="muted">not scheduled (keys.rotateEvery is off)</span>` : when(new Date(Date.now() + nextRotation * 1000).toISOString())}</p>
          <p><a href="/console/keys">Keys</a></p>
        </section>
        <section class="panel" aria-labelledby="config-h"><h2 id="config-h">Configuration</h2>
          <p>This instance serves version <strong>${version}</strong>.</p>
          <table><caption>Instances (heartbeat every 10 s)</caption><thead><tr><th scope="col">Host</th><th scope="col">Version</th><th scope="col">Seen</th></tr></thead>
          <tbody>${instances.map((i) => html`<tr><td>${i.host} <span class="muted">${i.id.slice(0, 8)}</span></td><td>${i.version}${i.version === version ? '' : html` ${badge('behind')}`}</td><td>${when(i.seenAt)}</td></tr>`)}</tbody></table>
        </section>
      </div>`,
    );
  });
}
