import type Router from '@koa/router';
import type { Context } from 'koa';
import { AdminError, sessionReads, type AuditRecord } from '../admin/index.ts';
import { consoleActor, stateOf, type ConsoleDeps } from './context.ts';
import { errorPanel, parseDocument, toYaml } from './forms.ts';
import { badge, csrfField, html, json, postForm, when, type Html } from './html.ts';
import { chrome, noticeOf, render } from './pages-overview.ts';

/** How far back the audit page's filters look: the newest entries, in pages of the store's log. */
const AUDIT_SCAN = 2000;
const AUDIT_SHOWN = 200;

const NEW_CLIENT = `client_id: my-service
client_name: My service
client_secret: change-me-to-a-long-random-secret
redirect_uris:
  - https://my-service.example/callback
`;

export function adminPages(router: Router, deps: ConsoleDeps): void {
  const { ops } = deps;
  const reads = sessionReads(deps);
  const form = (ctx: Context) => ctx.state.form as URLSearchParams;
  const back = (ctx: Context, path: string, what: string) => {
    ctx.status = 303;
    ctx.redirect(`${path}?done=${what}`);
  };

  // ---- clients ---------------------------------------------------------------------------------

  function clientsPage(ctx: Context, panel?: Html, text?: string, status = 200) {
    const { csrf } = stateOf(ctx).session;
    const clients = ops.listClients();
    render(
      ctx,
      chrome(ctx, 'Clients', 'clients', noticeOf(ctx)),
      html`<p>The services that sign their users in through Concord. Secrets are write-only: shown as set or not.</p>
      <table><caption>Registered clients</caption><thead><tr><th scope="col">Client</th><th scope="col">Redirect URIs</th><th scope="col">Authentication</th><th scope="col">Participants</th><th scope="col">Actions</th></tr></thead>
      <tbody>${clients.map(
        (c) => html`<tr><th scope="row"><a href="/console/clients/${encodeURIComponent(c.client_id)}">${c.client_name ?? c.client_id}</a><br><code>${c.client_id}</code></th>
        <td><ul class="plain">${c.redirect_uris.map((u) => html`<li><code>${u}</code></li>`)}</ul></td>
        <td>${c.token_endpoint_auth_method}${c.client_secret_set ? ' (secret set)' : ''}</td>
        <td>${c.participants ? c.participants.join(', ') : html`<span class="muted">all</span>`}</td>
        <td>${postForm(`/console/clients/${encodeURIComponent(c.client_id)}/delete`, csrf, `Delete ${c.client_id}`, { danger: true })}</td></tr>`,
      )}</tbody></table>
      <h2 id="new-client">Register a client</h2>
      ${panel ?? ''}
      <form method="post" action="/console/clients" class="stack">${csrfField(csrf)}
        <label for="client">Client document <span class="hint">(YAML or JSON, as the admin API takes it)</span></label>
        <textarea id="client" name="document" rows="10" spellcheck="false">${text ?? NEW_CLIENT}</textarea>
        <div><button type="submit" class="primary">Register</button></div>
      </form>`,
    );
    ctx.status = status;
  }

  router.get('/clients', (ctx) => clientsPage(ctx));
  router.post('/clients', async (ctx) => {
    const text = form(ctx).get('document') ?? '';
    try {
      await ops.createClient(parseDocument(text, 'document'), consoleActor(ctx));
    } catch (error) {
      if (!(error instanceof AdminError)) throw error;
      return clientsPage(ctx, errorPanel(error), text, 422);
    }
    back(ctx, '/console/clients', 'saved');
  });

  function clientPage(ctx: Context, id: string, panel?: Html, text?: string, status = 200) {
    const client = ops.listClients().find((c) => c.client_id === id);
    if (!client) throw new AdminError(404, 'not_found', `no client "${id}"`);
    const { client_secret_set: _s, ...doc } = client;
    const { csrf } = stateOf(ctx).session;
    render(
      ctx,
      chrome(ctx, `Client ${client.client_name ?? id}`, 'clients', noticeOf(ctx)),
      html`<p>Leave <code>client_secret</code> out to keep the current one${client.client_secret_set ? ' (set)' : ''}.</p>${panel ?? ''}
      <form method="post" action="/console/clients/${encodeURIComponent(id)}" class="stack">${csrfField(csrf)}
        <label for="client">Client document</label>
        <textarea id="client" name="document" rows="18" spellcheck="false">${text ?? toYaml(doc)}</textarea>
        <div><button type="submit" class="primary">Save</button></div>
      </form>`,
    );
    ctx.status = status;
  }
  router.get('/clients/:id', (ctx) => clientPage(ctx, ctx.params.id!));
  router.post('/clients/:id', async (ctx) => {
    const id = ctx.params.id!;
    const text = form(ctx).get('document') ?? '';
    try {
      await ops.updateClient(id, parseDocument(text, 'document'), consoleActor(ctx));
    } catch (error) {
      if (!(error instanceof AdminError) || error.status === 404) throw error;
      return clientPage(ctx, id, errorPanel(error), text, 422);
    }
    back(ctx, `/console/clients/${encodeURIComponent(id)}`, 'saved');
  });
  router.post('/clients/:id/delete', async (ctx) => {
    await ops.deleteClient(ctx.params.id!, consoleActor(ctx));
    back(ctx, '/console/clients', 'deleted');
  });

  // ---- keys ------------------------------------------------------------------------------------

  router.get('/keys', async (ctx) => {
    // Each algorithm's keys together, in the order the deployment offers them (keys.algorithms).
    const listed = await ops.listKeys();
    const { algorithms, accessTokenAlgorithm } = ops.keyAlgorithms();
    const order = algorithms.map((a) => a.alg);
    const keys = [...listed].sort((a, b) => order.indexOf(a.alg) - order.indexOf(b.alg));
    const use = (alg: string) =>
      [alg === accessTokenAlgorithm ? 'access tokens' : '', alg === 'RS256' ? 'ID tokens of clients naming no algorithm' : '', algorithms.find((a) => a.alg === alg)?.offered === false ? 'no longer offered: verifies only' : '']
        .filter(Boolean)
        .join('; ');
    const { activationDelay, retireGrace, rotateEvery } = deps.settings.keys;
    const next = deps.keys.ages().secondsToNextRotation;
    render(
      ctx,
      chrome(ctx, 'Signing keys', 'keys', noticeOf(ctx)),
      html`<table><caption>Keys of Concord’s tokens (public views; private keys never leave the key manager)</caption>
      <thead><tr><th scope="col">Key id</th><th scope="col">Algorithm</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Signs from</th><th scope="col">Leaves the JWKS</th><th scope="col">Signs</th></tr></thead>
      <tbody>${keys.map((k) => html`<tr><th scope="row"><code>${k.kid}</code></th><td>${k.alg}</td><td>${badge(k.state)}</td><td>${when(k.createdAt)}</td><td>${when(k.activatesAt)}</td><td>${k.removeAt ? when(k.removeAt) : html`<span class="muted">—</span>`}</td><td>${use(k.alg) || html`<span class="muted">what clients registered it for</span>`}</td></tr>`)}</tbody></table>
      <p>Each algorithm offered (<code>keys.algorithms</code>: ${order.join(', ')}) has a current key of its own; a client’s ID tokens, signed userinfo and JARM responses use the algorithm it registered, access tokens <code>keys.accessTokenAlgorithm</code> (${accessTokenAlgorithm}).</p>
      <p>Next scheduled rotation: ${next === undefined ? 'none (keys.rotateEvery is off)' : when(new Date(Date.now() + next * 1000).toISOString())}${rotateEvery ? ` (every ${Math.round(rotateEvery / 86400)} days)` : ''}.</p>
      <h2 id="rotate-h">Rotate now</h2>
      <p id="rotate-help">Rotating adds a new key now for every algorithm. Each is published in the JWKS at once and starts signing after ${Math.round(activationDelay / 60)} minutes (<code>keys.activationDelay</code>), so services have time to fetch it; the key it replaces then retires and stays in the JWKS for ${Math.round(retireGrace / 60)} minutes (<code>keys.retireGrace</code>) plus the longest token lifetime, so tokens it signed keep verifying. Nothing is revoked; every instance follows within a second.</p>
      ${postForm('/console/keys/rotate', stateOf(ctx).session.csrf, 'Rotate the signing keys', { describe: 'rotate-help' })}`,
    );
  });
  router.post('/keys/rotate', async (ctx) => {
    await ops.rotateKeys(consoleActor(ctx));
    back(ctx, '/console/keys', 'rotated');
  });

  // ---- audit -------------------------------------------------------------------------------------

  router.get('/audit', async (ctx) => {
    const q = (name: string) => (typeof ctx.query[name] === 'string' ? (ctx.query[name] as string).trim() : '');
    const actor = q('actor');
    const target = q('target');
    const from = q('from');
    const to = q('to');
    const fromMs = from ? Date.parse(from.length === 16 ? `${from}:00Z` : from) : NaN;
    const toMs = to ? Date.parse(to.length === 16 ? `${to}:00Z` : to) : NaN;
    const matches = (e: AuditRecord) => {
      if (actor && e.actor !== actor) return false;
      if (target && !`${e.object.type}:${e.object.id}`.includes(target) && e.object.id !== target) return false;
      const at = Date.parse(e.at);
      if (!Number.isNaN(fromMs) && at < fromMs) return false;
      if (!Number.isNaN(toMs) && at > toMs) return false;
      return true;
    };
    const shown: Array<AuditRecord & { seq: number }> = [];
    let before: number | undefined;
    let scanned = 0;
    while (scanned < AUDIT_SCAN && shown.length < AUDIT_SHOWN) {
      const batch = await deps.audit.page({ ...(before === undefined ? {} : { before }), limit: 200 });
      if (batch.length === 0) break;
      scanned += batch.length;
      for (const e of batch) if (matches(e) && shown.length < AUDIT_SHOWN) shown.push(e);
      before = batch.at(-1)!.seq;
      if (before <= 1) break;
    }
    render(
      ctx,
      chrome(ctx, 'Audit log', 'audit'),
      html`<form method="get" action="/console/audit" class="stack" role="search" aria-label="Filter the audit log">
        <div class="grid">
          <div><label for="actor">Actor <span class="hint">(a sub, admin-token, admin, domain-proof)</span></label><input id="actor" name="actor" type="search" value="${actor}"></div>
          <div><label for="target">Target <span class="hint">(an id, or type:id)</span></label><input id="target" name="target" type="search" value="${target}"></div>
          <div><label for="from">From <span class="hint">(UTC)</span></label><input id="from" name="from" type="datetime-local" value="${from}"></div>
          <div><label for="to">To <span class="hint">(UTC)</span></label><input id="to" name="to" type="datetime-local" value="${to}"></div>
        </div>
        <div><button type="submit">Filter</button></div>
      </form>
      <p>${shown.length} entries shown (of the newest ${scanned} looked at). Secrets are never recorded: changed write-only fields read <code>[redacted]</code>.</p>
      <table><caption>Changes, newest first</caption><thead><tr><th scope="col">When</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead>
      <tbody>${shown.map(
        (e) => html`<tr><td>${when(e.at)}</td><td><code>${e.actor}</code></td><td>${e.action}</td><td>${e.object.type} <code>${e.object.id}</code></td>
        <td>${e.diff && Object.keys(e.diff).length ? html`<details><summary>${Object.keys(e.diff).length} changed fields</summary><pre tabindex="0">${json(e.diff)}</pre></details>` : ''}${e.result ? html`<pre tabindex="0">${json(e.result)}</pre>` : ''}${e.requestId ? html`<span class="muted">request ${e.requestId}</span>` : ''}</td></tr>`,
      )}</tbody></table>`,
    );
  });

  // ---- sessions ----------------------------------------------------------------------------------

  router.get('/sessions', async (ctx) => {
    const email = typeof ctx.query.email === 'string' ? ctx.query.email.trim() : '';
    const participant = typeof ctx.query.participant === 'string' ? ctx.query.participant.trim() : '';
    const { csrf } = stateOf(ctx).session;
    const users = email || participant ? await reads.users(email ? { email } : { participant }, 100) : [];
    const rows: Html[] = [];
    for (const user of users) {
      const own = await Promise.all((await deps.sessions.ofAccount(user.id)).map(reads.view));
      rows.push(html`<tr><th scope="row">${user.email ?? user.name ?? user.id}<br><code>${user.id}</code></th><td>${user.participant}</td>
        <td><ul class="plain">${own.map((s) => html`<li>started ${when(s.startedAt)} at ${s.clients.map((c) => c.name ?? c.clientId).join(', ') || 'no service yet'}; last refresh ${when(s.lastRefreshedAt)} ${postForm(`/console/sessions/${s.id}/end`, csrf, 'End this session', { extra: { back: ctx.querystring } })}</li>`)}</ul></td>
        <td>${own.length ? postForm(`/console/users/${encodeURIComponent(user.id)}/revoke-sessions`, csrf, 'End all their sessions', { danger: true, extra: { back: ctx.querystring } }) : ''}</td></tr>`);
    }
    render(
      ctx,
      chrome(ctx, 'Sessions', 'sessions', noticeOf(ctx)),
      html`<form method="get" action="/console/sessions" class="stack" role="search" aria-label="Find users">
        <div class="grid"><div><label for="email">Email</label><input id="email" name="email" type="search" value="${email}"></div>
        <div><label for="participant">or participant id</label><input id="participant" name="participant" type="search" value="${participant}"></div></div>
        <div><button type="submit">Find</button></div></form>
      ${email || participant ? html`<table><caption>Users found</caption><thead><tr><th scope="col">User</th><th scope="col">Participant</th><th scope="col">Sessions</th><th scope="col">Actions</th></tr></thead><tbody>${rows.length ? rows : html`<tr><td colspan="4">Nobody found.</td></tr>`}</tbody></table>` : html`<p>Find a user by email, or every user of a participant. Ending a session revokes its tokens and tells its services (back-channel logout).</p>`}`,
    );
  });
  const backTo = (ctx: Context) => {
    const query = new URLSearchParams(form(ctx).get('back') ?? '');
    const keep = new URLSearchParams();
    for (const name of ['email', 'participant']) if (query.get(name)) keep.set(name, query.get(name)!);
    keep.set('done', 'ended');
    ctx.status = 303;
    ctx.redirect(`/console/sessions?${keep}`);
  };
  router.post('/sessions/:id/end', async (ctx) => {
    const ended = await ops.endSession(ctx.params.id!, consoleActor(ctx));
    if (!ended) throw new AdminError(404, 'not_found', 'that session has ended already');
    backTo(ctx);
  });
  router.post('/users/:userId/revoke-sessions', async (ctx) => {
    await ops.revokeUserSessions(ctx.params.userId!, consoleActor(ctx));
    backTo(ctx);
  });
}
