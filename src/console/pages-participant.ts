import type Router from '@koa/router';
import type { Context } from 'koa';
import { AdminError, type DryRunResult, type ParticipantStatusView } from '../admin/index.ts';
import { upstreamName } from '../config/index.ts';
import type { DomainView } from '../domain-proof/index.ts';
import { MappingError } from '../mapping/index.ts';
import type { TestLoginResult } from '../interactions/index.ts';
import { consoleActor, stateOf, type ConsoleDeps } from './context.ts';
import { errorPanel, parseDocument, toYaml } from './forms.ts';
import { badge, csrfField, html, json, postForm, when, type Html } from './html.ts';
import { chrome, noticeOf, render } from './pages-overview.ts';

/** What a re-rendered participant page keeps from the form that was posted. */
interface FormState {
  mappingText?: string;
  claimsText?: string;
  mappingPanel?: Html;
  editText?: string;
  editPanel?: Html;
}

/** The document an edit starts from: the participant as the API shows it, without the read-only parts. */
function editable(view: ParticipantStatusView): Record<string, unknown> {
  const { status: _s, registration: _r, ...doc } = view;
  const { clientSecretSet: _c, ...upstream } = doc.upstream as Record<string, unknown>;
  return { ...doc, upstream };
}

function dryRunPanel(result: DryRunResult): Html {
  if (result.outcome === 'released') {
    return html`<div class="ok" role="status"><p><strong>Released.</strong> A login with these claims would get:</p><pre tabindex="0">${json(result.claims)}</pre></div>`;
  }
  const rule = result.rule.index === null ? 'the mapping' : `rule ${result.rule.index + 1}`;
  return html`<div class="error" role="status"><p><strong>Rejected by ${rule}</strong> (<code>${result.code}</code>)${result.rule.requirement ? html`: <code>${result.rule.requirement}</code>` : ''}.</p>
    ${result.rule.message ? html`<p>The user would read: “${result.rule.message}”</p>` : ''}${result.rule.error ? html`<p>${result.rule.error}</p>` : ''}</div>`;
}

function testLoginPanel(result: TestLoginResult | undefined): Html {
  if (!result) return html`<p class="muted">No test login yet in this console session.</p>`;
  if (result.state === 'started') return html`<p role="status">A test login started ${when(new Date(result.startedAt).toISOString())} has not come back yet. Finish it in its tab, then <a href="">reload this page</a>.</p>`;
  if (result.state === 'failed') return html`<div class="error"><p><strong>The test login failed</strong> (<code>${result.error?.code ?? ''}</code>): ${result.error?.message ?? ''}. Reference <code>${result.error?.reference ?? ''}</code>.</p></div>`;
  const mapped = result.mapped!;
  return html`<div class="grid">
    <div><h4>Upstream claims</h4><p>Issuer <code>${result.upstream!.issuer}</code>, subject <code>${result.upstream!.subject}</code></p><pre tabindex="0">${json(result.upstream!.claims)}</pre></div>
    <div><h4>Mapped result</h4>${mapped.outcome === 'released'
      ? html`<p>${badge('released')}</p><pre tabindex="0">${json(mapped.claims)}</pre>`
      : html`<p>${badge('rejected')} by ${mapped.rule === null ? 'the mapping' : `rule ${mapped.rule + 1}`} (<code>${mapped.code}</code>)${mapped.message ? html`: “${mapped.message}”` : ''}</p>`}</div>
  </div>`;
}

function domainRow(id: string, d: DomainView, csrf: string): Html {
  const found = d.lastCheck ? (d.lastCheck.found ? `found by ${d.lastCheck.method}` : 'not found') : 'not checked yet';
  return html`<tr>
    <th scope="row">${d.domain}</th>
    <td>${badge(d.state)}${d.proofRequired ? '' : html`<br><span class="muted">proof not required (${d.origin})</span>`}${d.suspendsAt ? html`<br>proof missing: suspended at ${when(d.suspendsAt)}` : ''}</td>
    <td><p>DNS: a TXT record at <code>${d.proof.dns.name}</code> with the value <code>${d.proof.dns.value}</code></p>
        <p>or HTTPS: <code>${d.proof.https.url}</code> answering <code>${d.proof.https.body}</code></p></td>
    <td>${found}${d.lastCheck ? html`<br>${when(d.lastCheck.at)}` : ''}${d.lastCheck && !d.lastCheck.found ? html`<br><span class="muted">DNS: ${d.lastCheck.dns.detail ?? d.lastCheck.dns.outcome}; HTTPS: ${d.lastCheck.https.detail ?? d.lastCheck.https.outcome}</span>` : ''}</td>
    <td>${postForm(`/console/participants/${id}/domains/${d.domain}/check`, csrf, `Check ${d.domain} now`)}</td>
  </tr>`;
}

export function participantPages(router: Router, deps: ConsoleDeps): void {
  const { ops } = deps;

  async function lastTestLogin(ctx: Context, id: string): Promise<TestLoginResult | undefined> {
    const refs = stateOf(ctx).session.testLogins ?? [];
    for (const ref of [...refs].reverse()) {
      const result = await deps.testLogins.result(ref);
      if (result?.participant === id) return result;
    }
    return undefined;
  }

  async function show(ctx: Context, id: string, form: FormState = {}, status = 200): Promise<void> {
    const view = ops.participant(id);
    const { csrf } = stateOf(ctx).session;
    const domains = await ops.domainsOf(id);
    const test = await lastTestLogin(ctx, id);
    const sample = test?.upstream?.claims ?? { sub: 'sample-user', email: `someone@${view.domains[0] ?? 'example.com'}`, email_verified: true, name: 'Sample User', groups: ['staff'] };
    const mappingText = form.mappingText ?? toYaml(view.mapping ?? { rules: [] });
    const claimsText = form.claimsText ?? JSON.stringify(sample, null, 2);
    const unproven = domains.filter((d) => d.state !== 'verified' && d.proofRequired);
    const upstreamLabel = upstreamName(view.upstream as never);

    const checklist = !view.enabled
      ? html`<section class="panel" aria-labelledby="steps-h"><h2 id="steps-h">Onboarding</h2><ol>
          <li>Domains proven: ${unproven.length === 0 ? badge('verified') : html`${unproven.length} of ${domains.length} still ${badge('pending')} (see <a href="#domains-h">Domains</a>)`}</li>
          <li>Mapping checked with the dry-run (see <a href="#mapping-h">Mapping</a>)</li>
          <li>Test login: ${test?.state === 'finished' ? badge(test.mapped?.outcome ?? 'unknown') : html`<span class="muted">not yet</span>`} (see <a href="#test-h">Test login</a>)</li>
          <li>Enable: ${postForm(`/console/participants/${id}/enable`, csrf, 'Enable this participant')}</li>
        </ol></section>`
      : '';

    render(
      ctx,
      chrome(ctx, `Participant ${view.displayName}`, 'overview', noticeOf(ctx)),
      html`${checklist}
      <dl class="facts">
        <dt>Id</dt><dd><code>${view.id}</code></dd>
        <dt>State</dt><dd>${badge(view.enabled ? 'enabled' : 'disabled')}</dd>
        <dt>Upstream</dt><dd>${view.upstream.type.toUpperCase()} <code>${upstreamLabel}</code></dd>
        <dt>Upstream health</dt><dd>${badge(view.status.state)}${view.status.circuit ? html` circuit ${badge(view.status.circuit)}` : ''}${view.status.code ? html` <code>${view.status.code}</code>: ${view.status.reason ?? ''}` : ''}</dd>
        <dt>Register at the partner</dt><dd>redirect URI <code>${view.registration.redirectUri}</code><br>post-logout redirect URI <code>${view.registration.postLogoutRedirectUri}</code><br>back-channel logout URI <code>${view.registration.backchannelLogoutUri}</code></dd>
      </dl>
      <div class="actions">
        ${view.enabled ? postForm(`/console/participants/${id}/disable`, csrf, 'Disable', { danger: true, describe: 'disable-help' }) : ''}
        ${postForm(`/console/participants/${id}/revoke-sessions`, csrf, 'Revoke all sessions', { danger: true, describe: 'revoke-help' })}
      </div>
      <p class="muted" id="revoke-help">Revoking ends every session through this participant; each service with a back-channel logout URI is sent a logout token.</p>
      ${view.enabled ? html`<p class="muted" id="disable-help">Disabling stops its logins and ends its users’ sessions.</p>` : ''}

      <h2 id="domains-h">Domains</h2>
      <p>A domain routes logins once proven: publish one of the two values below, then check.</p>
      <table aria-labelledby="domains-h"><thead><tr><th scope="col">Domain</th><th scope="col">State</th><th scope="col">Proof to publish</th><th scope="col">Last check</th><th scope="col">Action</th></tr></thead>
      <tbody>${domains.map((d) => domainRow(id, d, csrf))}</tbody></table>

      <h2 id="mapping-h">Mapping</h2>
      <p>Rules in YAML (or JSON): <code>rules:</code> with <code>claim</code> / <code>require</code> entries; see docs/mapping.md. The dry-run runs the same compiled mapping a login runs, on the sample claims${test?.upstream ? ' (the claims of your last test login)' : ''}.</p>
      ${form.mappingPanel ?? ''}
      <form method="post" action="/console/participants/${id}/mapping" class="stack">${csrfField(csrf)}
        <label for="mapping">Mapping rules</label>
        <textarea id="mapping" name="mapping" rows="14" spellcheck="false">${mappingText}</textarea>
        <label for="claims">Sample upstream claims <span class="hint">(JSON or YAML)</span></label>
        <textarea id="claims" name="claims" rows="8" spellcheck="false">${claimsText}</textarea>
        <div class="actions"><button type="submit" name="action" value="dry-run">Dry-run</button><button type="submit" name="action" value="save" class="primary">Save mapping</button></div>
      </form>

      <h2 id="test-h">Test login</h2>
      <p>Signs you in at ${view.displayName}’s sign-in service in a new tab, as a test: it works while the participant is disabled or its domains are unproven, and no service receives anything. The upstream claims and the mapped result show here afterwards.</p>
      ${postForm(`/console/participants/${id}/test-login`, csrf, 'Run a test login (new tab)', { target: '_blank' })}
      ${testLoginPanel(test)}

      <h2 id="edit-h">All settings</h2>
      <p>The whole participant document, as the admin API takes it. The client secret is never shown: leave it out to keep it, or add <code>clientSecret</code> under <code>upstream</code> to replace it. Saving runs the same checks as the API, the upstream check included.</p>
      ${form.editPanel ?? ''}
      <form method="post" action="/console/participants/${id}/edit" class="stack">${csrfField(csrf)}
        <label for="document">Participant document</label>
        <textarea id="document" name="document" rows="20" spellcheck="false">${form.editText ?? toYaml(editable(view))}</textarea>
        <div><button type="submit" class="primary">Save settings</button></div>
      </form>`,
    );
    ctx.status = status;
  }

  const done = (ctx: Context, id: string, what: string, anchor = '') => {
    ctx.status = 303;
    ctx.redirect(`/console/participants/${encodeURIComponent(id)}?done=${what}${anchor}`);
  };

  router.get('/participants/:id', (ctx) => show(ctx, ctx.params.id!));

  router.post('/participants/:id/enable', async (ctx) => {
    await ops.setEnabled(ctx.params.id!, true, consoleActor(ctx));
    done(ctx, ctx.params.id!, 'enabled');
  });
  router.post('/participants/:id/disable', async (ctx) => {
    await ops.setEnabled(ctx.params.id!, false, consoleActor(ctx));
    done(ctx, ctx.params.id!, 'disabled');
  });
  router.post('/participants/:id/revoke-sessions', async (ctx) => {
    await ops.revokeParticipantSessions(ctx.params.id!, consoleActor(ctx));
    done(ctx, ctx.params.id!, 'revoked');
  });
  router.post('/participants/:id/domains/:domain/check', async (ctx) => {
    await ops.checkDomain(ctx.params.id!, ctx.params.domain!, consoleActor(ctx));
    done(ctx, ctx.params.id!, 'checked', '#domains-h');
  });

  router.post('/participants/:id/mapping', async (ctx) => {
    const id = ctx.params.id!;
    const form = ctx.state.form as URLSearchParams;
    const mappingText = form.get('mapping') ?? '';
    const claimsText = form.get('claims') ?? '';
    try {
      const mapping = parseDocument(mappingText, 'mapping') ?? { rules: [] };
      if (form.get('action') === 'save') {
        const current = ops.participant(id);
        await ops.updateParticipant(id, { ...editable(current), mapping }, consoleActor(ctx));
        return done(ctx, id, 'saved', '#mapping-h');
      }
      const claims = parseDocument(claimsText, 'claims');
      const result = ops.dryRun(id, { claims, mapping });
      return show(ctx, id, { mappingText, claimsText, mappingPanel: dryRunPanel(result) });
    } catch (error) {
      if (!(error instanceof AdminError || error instanceof MappingError)) throw error;
      return show(ctx, id, { mappingText, claimsText, mappingPanel: errorPanel(error) }, 422);
    }
  });

  router.post('/participants/:id/edit', async (ctx) => {
    const id = ctx.params.id!;
    const editText = (ctx.state.form as URLSearchParams).get('document') ?? '';
    try {
      await ops.updateParticipant(id, parseDocument(editText, 'document'), consoleActor(ctx));
    } catch (error) {
      if (!(error instanceof AdminError || error instanceof MappingError)) throw error;
      return show(ctx, id, { editText, editPanel: errorPanel(error) }, 422);
    }
    done(ctx, id, 'saved');
  });

  router.post('/participants/:id/test-login', async (ctx) => {
    const id = ctx.params.id!;
    const active = deps.registry.participant(id);
    if (!active) throw new AdminError(404, 'not_found', `no participant "${id}"`);
    const state = stateOf(ctx);
    const { url, ref } = await deps.testLogins.begin(active, state.session.admin!.actor);
    state.session.testLogins = [...(state.session.testLogins ?? []).slice(-9), ref];
    await ops.record(consoleActor(ctx), 'participant.test_login', { type: 'participant', id }, undefined, { reference: ref });
    render(
      ctx,
      chrome(ctx, `Test login: ${active.config.displayName}`),
      html`<p>You are about to sign in at <strong>${active.config.displayName}</strong>’s sign-in service (<code>${upstreamName(active.config.upstream)}</code>) as a test. Nothing is issued to any service; the claims it sends come back to the participant’s console page.</p>
      <p><a class="button" id="continue" href="${url}" rel="noreferrer">Continue to ${active.config.displayName}</a></p>
      <p><a href="/console/participants/${id}#test-h">Back to the participant</a></p>`,
    );
  });
}
