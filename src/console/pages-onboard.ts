import type Router from '@koa/router';
import type { Context } from 'koa';
import { AdminError } from '../admin/index.ts';
import { ConcordError } from '../errors.ts';
import { MappingError } from '../mapping/index.ts';
import { DomainConflictError } from '../participants/index.ts';
import { consoleActor, stateOf, type ConsoleDeps } from './context.ts';
import { errorPanel } from './forms.ts';
import { csrfField, html, type Html } from './html.ts';
import { chrome, render } from './pages-overview.ts';

/*
 * The onboarding wizard: 1. the upstream (an OIDC issuer, or SAML metadata), checked as the admin API
 * checks it; 2. Concord's client there (id, secret, authentication method), checked again with them;
 * 3. the participant's id, name and domains: created disabled, each domain pending with its challenge.
 * The rest (proofs, mapping with its dry-run, the test login, enabling) happens on the participant's
 * page, which shows them as the remaining steps. The answers so far live in the console session.
 */

const STEPS = ['Upstream', 'Client at the partner', 'Domains and create', 'Prove, map, test, enable'];

function steps(current: number): Html {
  return html`<ol class="steps" aria-label="Onboarding steps">${STEPS.map((label, i) => html`<li${i === current ? html` aria-current="step"` : ''}>${i + 1}. ${label}</li>`)}</ol>`;
}

const field = (id: string, label: string, value: string, options: { type?: string; hint?: string; required?: boolean } = {}) =>
  html`<label for="${id}">${label}${options.hint ? html` <span class="hint" id="${id}-hint">${options.hint}</span>` : ''}</label>
  <input id="${id}" name="${id}" type="${options.type ?? 'text'}" value="${value}"${options.required ? html` required` : ''}${options.hint ? html` aria-describedby="${id}-hint"` : ''}>`;

const checkbox = (id: string, label: string, checked: boolean) => html`<div><input id="${id}" name="${id}" type="checkbox" value="yes"${checked ? html` checked` : ''}> <label for="${id}">${label}</label></div>`;

/** The participant document the draft describes so far (placeholders where a later step fills in). */
function documentOf(draft: Record<string, string>, clientSecret: string | undefined): Record<string, unknown> {
  const saml = draft.kind === 'saml';
  const devHttp = draft.allowInsecureHttp === 'yes';
  const privateNet = draft.allowPrivateNetwork === 'yes';
  const upstream = saml
    ? {
        type: 'saml',
        ...(draft.metadata?.trim().startsWith('<') ? { idpMetadataXml: draft.metadata } : { idpMetadataUrl: draft.metadata?.trim() }),
        ...(devHttp ? { allowInsecureHttp: true } : {}),
        ...(privateNet ? { allowPrivateNetwork: true } : {}),
      }
    : {
        type: 'oidc',
        issuer: draft.issuer?.trim(),
        clientId: draft.clientId?.trim() || 'concord',
        ...(clientSecret ? { clientSecret } : {}),
        ...(draft.authMethod && draft.authMethod !== 'auto' ? { tokenEndpointAuthMethod: draft.authMethod } : {}),
        ...(devHttp ? { allowInsecureHttp: true } : {}),
        ...(privateNet ? { allowPrivateNetwork: true } : {}),
      };
  const domains = (draft.domains ?? '')
    .split(/[\s,]+/)
    .map((d) => d.trim())
    .filter(Boolean);
  return {
    id: draft.id || 'new-participant',
    displayName: draft.displayName || 'New participant',
    domains: domains.length ? domains : ['example.invalid'],
    upstream,
    enabled: false,
  };
}

const SECRET_CONTEXT = 'console:onboarding:clientSecret';

export function onboardingPages(router: Router, deps: ConsoleDeps): void {
  const draftOf = (ctx: Context) => (stateOf(ctx).session.draft ??= {});
  /** The draft as a participant document; the client secret is kept sealed in the session between steps. */
  const documentFor = (draft: Record<string, string>) => documentOf(draft, draft.sealedClientSecret ? deps.secrets.open(draft.sealedClientSecret, SECRET_CONTEXT) : undefined);
  const form = (ctx: Context) => ctx.state.form as URLSearchParams;

  function stepOne(ctx: Context, draft: Record<string, string>, panel?: Html, status = 200) {
    const { csrf } = stateOf(ctx).session;
    render(
      ctx,
      chrome(ctx, 'Onboard a partner', 'onboard'),
      html`${steps(0)}${panel ?? ''}
      <form method="post" action="/console/onboard/upstream" class="stack">${csrfField(csrf)}
        <fieldset><legend>The partner’s sign-in service</legend>
          <div><input type="radio" id="kind-oidc" name="kind" value="oidc"${draft.kind !== 'saml' ? html` checked` : ''}> <label for="kind-oidc">OpenID Connect</label></div>
          <div><input type="radio" id="kind-saml" name="kind" value="saml"${draft.kind === 'saml' ? html` checked` : ''}> <label for="kind-saml">SAML 2.0</label></div>
        </fieldset>
        ${field('issuer', 'OIDC issuer', draft.issuer ?? '', { type: 'url', hint: 'e.g. https://login.partner.example (its /.well-known/openid-configuration is fetched)' })}
        <label for="metadata">SAML metadata <span class="hint" id="metadata-hint">its URL, or the XML itself</span></label>
        <textarea id="metadata" name="metadata" rows="4" aria-describedby="metadata-hint">${draft.metadata ?? ''}</textarea>
        ${checkbox('allowInsecureHttp', 'Allow http (local development only)', draft.allowInsecureHttp === 'yes')}
        ${checkbox('allowPrivateNetwork', 'Allow a private-network address (an IdP inside your network)', draft.allowPrivateNetwork === 'yes')}
        <div><button type="submit" class="primary">Check this upstream</button></div>
      </form>`,
    );
    ctx.status = status;
  }

  function stepTwo(ctx: Context, draft: Record<string, string>, panel?: Html, status = 200) {
    const { csrf } = stateOf(ctx).session;
    const saml = draft.kind === 'saml';
    render(
      ctx,
      chrome(ctx, 'Onboard a partner', 'onboard'),
      html`${steps(1)}${panel ?? ''}
      <form method="post" action="/console/onboard/credentials" class="stack">${csrfField(csrf)}
        ${saml
          ? html`<p>A SAML upstream needs no client secret: Concord signs its requests with its own SP keys. Continue to the domains.</p>`
          : html`${field('clientId', 'Client id Concord has at the partner', draft.clientId ?? '', { required: true })}
            ${field('clientSecret', 'Client secret', '', { type: 'password', hint: draft.sealedClientSecret ? 'a secret is kept from before; leave empty to keep it' : 'leave empty for private_key_jwt' })}
            <label for="authMethod">Client authentication method</label>
            <select id="authMethod" name="authMethod">${['auto', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'].map((m) => html`<option value="${m}"${(draft.authMethod ?? 'auto') === m ? html` selected` : ''}>${m === 'auto' ? 'as the partner offers (default)' : m}</option>`)}</select>`}
        <div class="actions"><a href="/console/onboard">Back</a><button type="submit" class="primary">Check and continue</button></div>
      </form>`,
    );
    ctx.status = status;
  }

  function stepThree(ctx: Context, draft: Record<string, string>, panel?: Html, status = 200) {
    const { csrf } = stateOf(ctx).session;
    render(
      ctx,
      chrome(ctx, 'Onboard a partner', 'onboard'),
      html`${steps(2)}${panel ?? ''}
      <form method="post" action="/console/onboard/create" class="stack">${csrfField(csrf)}
        ${field('id', 'Participant id', draft.id ?? '', { required: true, hint: 'lowercase letters, digits and -; part of URLs and user ids, never changes' })}
        ${field('displayName', 'Display name', draft.displayName ?? '', { required: true })}
        <label for="domains">Email domains <span class="hint" id="domains-hint">one per line; each starts pending until proven (DNS TXT or HTTPS)</span></label>
        <textarea id="domains" name="domains" rows="3" aria-describedby="domains-hint" required>${draft.domains ?? ''}</textarea>
        <p>The participant is created <strong>disabled</strong>. Its page then shows each domain’s challenge, the mapping editor with its dry-run, the test login and the button to enable it.</p>
        <div class="actions"><a href="/console/onboard/credentials">Back</a><button type="submit" class="primary">Create the participant</button></div>
      </form>`,
    );
    ctx.status = status;
  }

  /** The upstream check in words: what was fetched and found, or what is wrong and where. */
  async function check(draft: Record<string, string>): Promise<Html> {
    const participant = await deps.ops.checkUpstream(documentFor(draft));
    const upstream = participant.upstream;
    return html`<div class="ok" role="status"><p><strong>The upstream check passed.</strong> ${upstream.type === 'oidc'
      ? html`Concord fetched the discovery document of <code>${upstream.issuer}</code> and its keys: the issuer matches exactly, the endpoints Concord needs are there, it signs ID tokens with an algorithm Concord accepts, and it supports ${upstream.tokenEndpointAuthMethod ? html`the authentication method <code>${upstream.tokenEndpointAuthMethod}</code>` : 'a client authentication method Concord can use'} and the response mode <code>${upstream.responseMode}</code>.`
      : html`Concord read the IdP metadata: one entity, a usable signing certificate, an HTTP-Redirect sign-in endpoint over https, not expired.`}</p></div>`;
  }

  const failed = (error: unknown) => {
    if (error instanceof AdminError || error instanceof MappingError || error instanceof DomainConflictError || (error instanceof ConcordError && error.expose)) return errorPanel(error);
    throw error;
  };

  type Step = (ctx: Context, draft: Record<string, string>, panel?: Html, status?: number) => void;
  /** Runs the upstream check on the draft: the next step with its result in words, or this step again with what is wrong. */
  async function checkThen(ctx: Context, draft: Record<string, string>, next: Step, same: Step): Promise<void> {
    let result: Html;
    try {
      result = await check(draft);
    } catch (error) {
      return same(ctx, draft, failed(error), 422);
    }
    return next(ctx, draft, result);
  }

  router.get('/onboard', (ctx) => stepOne(ctx, draftOf(ctx)));
  router.get('/onboard/credentials', (ctx) => stepTwo(ctx, draftOf(ctx)));
  router.get('/onboard/domains', (ctx) => stepThree(ctx, draftOf(ctx)));

  router.post('/onboard/upstream', async (ctx) => {
    const f = form(ctx);
    const draft = draftOf(ctx);
    Object.assign(draft, { kind: f.get('kind') === 'saml' ? 'saml' : 'oidc', issuer: f.get('issuer') ?? '', metadata: f.get('metadata') ?? '', allowInsecureHttp: f.get('allowInsecureHttp') ?? '', allowPrivateNetwork: f.get('allowPrivateNetwork') ?? '' });
    return checkThen(ctx, draft, stepTwo, stepOne);
  });

  router.post('/onboard/credentials', async (ctx) => {
    const f = form(ctx);
    const draft = draftOf(ctx);
    Object.assign(draft, { clientId: f.get('clientId') ?? draft.clientId ?? '', authMethod: f.get('authMethod') ?? 'auto' });
    if (f.get('clientSecret')) draft.sealedClientSecret = deps.secrets.seal(f.get('clientSecret')!, SECRET_CONTEXT);
    return checkThen(ctx, draft, stepThree, stepTwo);
  });

  router.post('/onboard/create', async (ctx) => {
    const f = form(ctx);
    const draft = draftOf(ctx);
    Object.assign(draft, { id: (f.get('id') ?? '').trim(), displayName: (f.get('displayName') ?? '').trim(), domains: f.get('domains') ?? '' });
    try {
      const participant = await deps.ops.createParticipant(documentFor(draft), consoleActor(ctx));
      stateOf(ctx).session.draft = {};
      ctx.status = 303;
      ctx.redirect(`/console/participants/${encodeURIComponent(participant.id)}?done=created`);
    } catch (error) {
      return stepThree(ctx, draft, failed(error), 422);
    }
  });
}
