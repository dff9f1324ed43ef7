// The admin API's own view types (erased at compile): the CLI shows what the API answers.
import type { EndedSessionView, SessionView } from '../admin/index.ts';
import { canonicalDomain } from '../domains/index.ts';
import type { AdminClient } from './api.ts';
import { CliError, usage } from './errors.ts';
import { readDocument } from './files.ts';
import { emit, table, yaml, type Output } from './output.ts';
import { describeIssue, validateConfig } from './validate.ts';

export interface CommandOptions {
  file?: string | undefined;
  participant?: string | undefined;
  claims?: string | undefined;
  mapping?: string | undefined;
  limit?: string | undefined;
  before?: string | undefined;
  state?: string | undefined;
  email?: string | undefined;
}

export interface CommandContext {
  io: Output;
  /** Built on first use: `validate` needs no API, token or URL. */
  api(): AdminClient;
  env: NodeJS.ProcessEnv;
  options: CommandOptions;
}

type Command = (ctx: CommandContext, args: string[]) => Promise<void>;

const needFile = (ctx: CommandContext, what: string) => {
  if (!ctx.options.file) throw usage(`${what} needs -f FILE (YAML or JSON)`);
  return readDocument(ctx.options.file);
};

const needArg = (args: string[], what: string) => {
  const value = args[0];
  if (!value) throw usage(`missing ${what}`);
  return encodeURIComponent(value);
};

const idOf = (doc: unknown, key: string) => (typeof doc === 'object' && doc !== null && typeof (doc as Record<string, unknown>)[key] === 'string' ? ((doc as Record<string, unknown>)[key] as string) : undefined);

const revokedText = (r: { accounts: number; sessions: number; grants: number }) => `${r.grants} grant(s) and ${r.sessions} session(s) of ${r.accounts} account(s) revoked`;

interface ParticipantView {
  id: string;
  displayName: string;
  domains: string[];
  enabled: boolean;
  upstream: { type: 'oidc' | 'saml'; issuer?: string; idpMetadataUrl?: string; clientSecretSet?: boolean };
  /** What the last check of its upstream found (GET only): ok, unknown, unreachable, misconfigured, disabled. */
  status?: { state: string; code?: string };
}

const participantRow = (p: ParticipantView) => [
  p.id,
  p.displayName,
  p.domains.join(','),
  p.enabled ? 'yes' : 'no',
  p.status ? `${p.status.state}${p.status.code ? ` (${p.status.code})` : ''}` : '',
  p.upstream.type === 'saml' ? `saml ${p.upstream.idpMetadataUrl ?? '(inline metadata)'}` : (p.upstream.issuer ?? ''),
];
const PARTICIPANT_HEADERS = ['ID', 'NAME', 'DOMAINS', 'ENABLED', 'STATUS', 'UPSTREAM'];

const participants: Record<string, Command> = {
  async list(ctx) {
    const body = await ctx.api().get<{ participants: ParticipantView[] }>('/participants');
    emit(ctx.io, body, () => table(PARTICIPANT_HEADERS, body.participants.map(participantRow)));
  },
  async show(ctx, args) {
    const body = await ctx.api().get(`/participants/${needArg(args, 'participant id')}`);
    emit(ctx.io, body, () => yaml(body));
  },
  async add(ctx) {
    const body = await ctx.api().post<ParticipantView>('/participants', await needFile(ctx, 'participants add'));
    emit(ctx.io, body, () => `participant ${body.id} added (upstream checked, ${body.domains.join(', ')}); concord domains list -p ${body.id} shows what each domain must publish`);
  },
  async update(ctx, args) {
    const doc = await needFile(ctx, 'participants update');
    const id = args[0] ?? idOf(doc, 'id');
    if (!id) throw usage('participants update needs an id: as an argument or in the file');
    const body = await ctx.api().put<ParticipantView>(`/participants/${encodeURIComponent(id)}`, doc);
    emit(ctx.io, body, () => `participant ${body.id} updated`);
  },
  async disable(ctx, args) {
    const body = await ctx.api().post<ParticipantView>(`/participants/${needArg(args, 'participant id')}/disable`);
    emit(ctx.io, body, () => `participant ${body.id} disabled: no new logins through it, and its users' sessions ended`);
  },
  async enable(ctx, args) {
    const body = await ctx.api().post<ParticipantView>(`/participants/${needArg(args, 'participant id')}/enable`);
    emit(ctx.io, body, () => `participant ${body.id} enabled`);
  },
  async remove(ctx, args) {
    const body = await ctx.api().del<{ deleted: string; revoked: { accounts: number; sessions: number; grants: number } }>(`/participants/${needArg(args, 'participant id')}`);
    emit(ctx.io, body, () => `participant ${body.deleted} removed; ${revokedText(body.revoked)}`);
  },
  async 'revoke-sessions'(ctx, args) {
    const body = await ctx.api().post<{ participant: string; revoked: { accounts: number; sessions: number; grants: number } }>(`/participants/${needArg(args, 'participant id')}/revoke-sessions`);
    emit(ctx.io, body, () => `participant ${body.participant}: ${revokedText(body.revoked)}`);
  },
};

interface ClientView {
  client_id: string;
  client_name?: string;
  token_endpoint_auth_method: string;
  grant_types: string[];
  participants?: string[];
}

const clients: Record<string, Command> = {
  async list(ctx) {
    const body = await ctx.api().get<{ clients: ClientView[] }>('/clients');
    emit(ctx.io, body, () =>
      table(
        ['CLIENT_ID', 'NAME', 'AUTH', 'GRANTS', 'PARTICIPANTS'],
        body.clients.map((c) => [c.client_id, c.client_name, c.token_endpoint_auth_method, c.grant_types.join(','), c.participants?.join(',') ?? 'all']),
      ),
    );
  },
  async show(ctx, args) {
    const body = await ctx.api().get(`/clients/${needArg(args, 'client id')}`);
    emit(ctx.io, body, () => yaml(body));
  },
  async add(ctx) {
    const body = await ctx.api().post<ClientView>('/clients', await needFile(ctx, 'clients add'));
    emit(ctx.io, body, () => `client ${body.client_id} added`);
  },
  async update(ctx, args) {
    const doc = await needFile(ctx, 'clients update');
    const id = args[0] ?? idOf(doc, 'client_id');
    if (!id) throw usage('clients update needs a client id: as an argument or in the file');
    const body = await ctx.api().put<ClientView>(`/clients/${encodeURIComponent(id)}`, doc);
    emit(ctx.io, body, () => `client ${body.client_id} updated`);
  },
  async remove(ctx, args) {
    const body = await ctx.api().del<{ deleted: string }>(`/clients/${needArg(args, 'client id')}`);
    emit(ctx.io, body, () => `client ${body.deleted} removed`);
  },
};

interface DomainView {
  domain: string;
  participant: string;
  state: string;
  proofRequired: boolean;
  challenge: string;
  proof: { dns: { name: string; value: string }; https: { url: string } };
  verifiedBy: string | null;
  proofMissingSince: string | null;
  suspendsAt: string | null;
  lastCheck: { at: string; found: boolean; dns: { outcome: string; detail: string }; https: { outcome: string; detail: string } } | null;
}

/** The participant of a domain, from -p or from the list (domains are unique across participants). */
async function domainPath(ctx: CommandContext, args: string[]): Promise<string> {
  const domain = args[0];
  if (!domain) throw usage('missing domain');
  let participant = ctx.options.participant;
  if (!participant) {
    const body = await ctx.api().get<{ domains: DomainView[] }>('/domains');
    const canonical = canonicalDomain(domain.trim());
    participant = body.domains.find((d) => d.domain === canonical)?.participant;
    if (!participant) throw new CliError(`not_found: no participant claims the domain ${domain}`);
  }
  return `/participants/${encodeURIComponent(participant)}/domains/${encodeURIComponent(domain)}`;
}

/** What a person needs to read about one domain: its state, what to publish, what the last check saw. */
function domainText(d: DomainView): string {
  const lines = [`${d.domain} (participant ${d.participant}): ${d.state}${d.proofMissingSince ? `, proof missing since ${d.proofMissingSince}` : ''}${d.verifiedBy && d.state === 'verified' ? `, verified by ${d.verifiedBy}` : ''}`];
  if (d.suspendsAt) lines.push(`  suspended at ${d.suspendsAt} unless the proof comes back`);
  if (!d.proofRequired) lines.push('  proof not required for it (domainProof.mode)');
  lines.push(`  publish either:  TXT ${d.proof.dns.name} "${d.proof.dns.value}"`, `              or:  ${d.proof.https.url} answering ${d.challenge}`);
  if (d.lastCheck) lines.push(`  last check ${d.lastCheck.at}: dns ${d.lastCheck.dns.outcome} (${d.lastCheck.dns.detail}); https ${d.lastCheck.https.outcome} (${d.lastCheck.https.detail})`);
  return lines.join('\n');
}

const domains: Record<string, Command> = {
  async list(ctx) {
    const query = new URLSearchParams();
    if (ctx.options.participant) query.set('participant', ctx.options.participant);
    if (ctx.options.state) query.set('state', ctx.options.state);
    const body = await ctx.api().get<{ domains: DomainView[] }>(`/domains${query.size ? `?${query}` : ''}`);
    emit(ctx.io, body, () =>
      table(
        ['DOMAIN', 'PARTICIPANT', 'STATE', 'PROOF MISSING SINCE', 'LAST CHECK', 'TXT VALUE'],
        body.domains.map((d) => [d.domain, d.participant, d.state, d.proofMissingSince ?? '-', d.lastCheck ? `${d.lastCheck.at} ${d.lastCheck.found ? 'found' : 'not found'}` : '-', d.challenge]),
      ),
    );
  },
  async show(ctx, args) {
    const body = await ctx.api().get<DomainView>(await domainPath(ctx, args));
    emit(ctx.io, body, () => domainText(body));
  },
  async check(ctx, args) {
    const body = await ctx.api().post<DomainView>(`${await domainPath(ctx, args)}/check`);
    emit(ctx.io, body, () => domainText(body));
    // Scripts can tell "checked, not proven" from "the command failed".
    if (body.state !== 'verified' || body.proofMissingSince) throw new CliError(`${body.domain} is not proven (${body.state})`, 4);
  },
};

type DryRun = { outcome: 'released'; claims: Record<string, unknown> } | { outcome: 'rejected'; rule: { index: number; requirement: string; message?: string; error?: string } };

const mapping: Record<string, Command> = {
  async 'dry-run'(ctx) {
    const { participant, claims, mapping: mappingFile } = ctx.options;
    if (!participant || !claims) throw usage('mapping dry-run needs --participant ID and --claims FILE');
    const request = { claims: await readDocument(claims), ...(mappingFile ? { mapping: await readDocument(mappingFile) } : {}) };
    const body = await ctx.api().post<DryRun>(`/participants/${encodeURIComponent(participant)}/mapping/dry-run`, request);
    emit(ctx.io, body, () => (body.outcome === 'released' ? `released:\n${yaml(body.claims)}` : `rejected by rules[${body.rule.index}] (${body.rule.requirement})${body.rule.message ? `: ${body.rule.message}` : ''}${body.rule.error ? ` [${body.rule.error}]` : ''}`));
    // Scripts can tell "the rules refuse these claims" from "the command failed".
    if (body.outcome === 'rejected') throw new CliError(`the mapping rejects these claims at rules[${body.rule.index}]`, 3);
  },
};

const SESSION_HEADERS = ['ID', 'USER', 'PARTICIPANT', 'CLIENTS', 'STARTED', 'REFRESHED', 'CONFIRMED'];
const sessionRow = (s: SessionView) => [s.id, s.user, s.participant, s.clients.map((c) => c.clientId).join(',') || '-', s.startedAt, s.lastRefreshedAt ?? '', s.lastConfirmedAt];
const endedText = (e: EndedSessionView) => `session ${e.id} of ${e.user} ended (${e.grants} grant(s) revoked; logout sent to ${e.clients.join(', ') || 'no service'})`;

const sessions: Record<string, Command> = {
  /** A user's sessions: by user id (`{participant}:{upstream sub}`), or by --email (every user with it). */
  async list(ctx, args) {
    const users = args[0] ? [args[0]] : ctx.options.email ? (await ctx.api().get<{ users: Array<{ id: string }> }>(`/users?email=${encodeURIComponent(ctx.options.email)}`)).users.map((u) => u.id) : undefined;
    if (!users) throw usage('sessions list needs a user id (participant:sub) or --email EMAIL');
    const found: SessionView[] = [];
    for (const user of users) found.push(...(await ctx.api().get<{ sessions: SessionView[] }>(`/users/${encodeURIComponent(user)}/sessions`)).sessions);
    emit(ctx.io, { sessions: found }, () => table(SESSION_HEADERS, found.map(sessionRow)));
  },
  async show(ctx, args) {
    const body = await ctx.api().get(`/sessions/${needArg(args, 'session id')}`);
    emit(ctx.io, body, () => yaml(body));
  },
  /** Ends one session: its refresh tokens are revoked and its services sent logout tokens. */
  async end(ctx, args) {
    const body = await ctx.api().del<{ ended: EndedSessionView }>(`/sessions/${needArg(args, 'session id')}`);
    emit(ctx.io, body, () => endedText(body.ended));
  },
  /** Ends every session of a user. */
  async revoke(ctx, args) {
    const body = await ctx.api().post<{ user: string; ended: EndedSessionView[] }>(`/users/${needArg(args, 'user id (participant:sub)')}/revoke-sessions`);
    emit(ctx.io, body, () => (body.ended.length ? body.ended.map(endedText).join('\n') : `${body.user} had no session`));
  },
};

interface KeyView {
  kid: string;
  alg: string;
  state: string;
  createdAt: string;
  activatesAt: string;
  removeAt?: string;
}

/** The keys of each algorithm together, in the order the deployment offers them (keys.algorithms). */
const byAlgorithm = (keys: KeyView[], order: string[]) => [...keys].sort((a, b) => order.indexOf(a.alg) - order.indexOf(b.alg) || a.activatesAt.localeCompare(b.activatesAt));

const keys: Record<string, Command> = {
  async list(ctx) {
    const body = await ctx.api().get<{ keys: KeyView[]; algorithms?: Array<{ alg: string; offered: boolean }>; accessTokenAlgorithm?: string }>('/keys');
    emit(ctx.io, body, () => {
      const order = (body.algorithms ?? []).map((a) => a.alg);
      const uses = (alg: string) => [alg === body.accessTokenAlgorithm ? 'access tokens' : '', body.algorithms?.find((a) => a.alg === alg)?.offered === false ? 'no longer offered' : ''].filter(Boolean).join(', ');
      return table(['ALG', 'KID', 'STATE', 'ACTIVATES', 'REMOVED', 'NOTE'], byAlgorithm(body.keys, order).map((k) => [k.alg, k.kid, k.state, k.activatesAt, k.removeAt, uses(k.alg)]));
    });
  },
  async rotate(ctx) {
    const body = await ctx.api().post<{ keys?: KeyView[]; key: KeyView }>('/keys/rotate');
    emit(ctx.io, body, () => (body.keys ?? [body.key]).map((k) => `new ${k.alg} key ${k.kid} published; it signs from ${k.activatesAt}`).join('\n'));
  },
};

interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  object: { type: string; id: string };
  diff?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

async function audit(ctx: CommandContext): Promise<void> {
  const query = new URLSearchParams();
  if (ctx.options.limit) query.set('limit', ctx.options.limit);
  if (ctx.options.before) query.set('before', ctx.options.before);
  const body = await ctx.api().get<{ entries: AuditEntry[]; next: number | null }>(`/audit${query.size ? `?${query}` : ''}`);
  emit(ctx.io, body, () => {
    const rows = body.entries.map((e) => [e.seq, e.at, e.actor, e.action, `${e.object.type}/${e.object.id}`, Object.keys(e.diff ?? {}).join(',')]);
    const more = body.next === null ? '' : `\n(older: concord audit --before ${body.next})`;
    return table(['SEQ', 'AT', 'ACTOR', 'ACTION', 'OBJECT', 'CHANGED'], rows) + more;
  });
}

async function validate(ctx: CommandContext, args: string[]): Promise<void> {
  const dir = args[0] ?? ctx.env.CONCORD_CONFIG_DIR ?? './config';
  const report = await validateConfig(dir, ctx.env);
  if (ctx.io.json) ctx.io.out(JSON.stringify({ valid: report.issues.length === 0, ...report }, null, 2));
  if (report.issues.length > 0) {
    if (!ctx.io.json) for (const issue of report.issues) ctx.io.err(describeIssue(issue));
    throw new CliError(`${dir}: ${report.issues.length} problem(s) found`);
  }
  if (!ctx.io.json) ctx.io.out(`${dir} is valid: ${report.participants} participant(s), ${report.clients} client(s)`);
}

/** group -> action -> command; a group that is itself a command has the action '' */
export const COMMANDS: Record<string, Record<string, Command>> = {
  participants,
  domains,
  clients,
  mapping,
  keys,
  sessions,
  audit: { '': audit },
  validate: { '': validate },
};
