import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { describeSyntaxProblem, readDocumentFile } from './documents.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { clientRedirectProblems } from './redirect-uris.ts';
import {
  ClientSchema,
  clientAlgorithmProblems,
  ConcordSettingsSchema,
  ParticipantSchema,
  sharedUpstream,
  upstreamIdentity,
  type ClientConfig,
  type ConcordSettings,
  type Participant,
} from './schema.ts';

export interface LoadedConfig {
  dir: string;
  settings: ConcordSettings;
  participants: Participant[];
  clients: ClientConfig[];
}

/** Which environment variable overrides which setting (the environment wins over concord.yaml). */
const ENV_OVERRIDES: Array<[variable: string, path: string[], parse?: (raw: string) => unknown]> = [
  ['CONCORD_ISSUER', ['issuer']],
  ['CONCORD_PORT', ['port']],
  ['CONCORD_HOST', ['host']],
  ['CONCORD_TRUST_PROXY', ['trustProxy'], (raw) => raw === 'true' || raw === '1'],
  ['CONCORD_ADMIN_PORT', ['admin', 'port']],
  ['CONCORD_ADMIN_HOST', ['admin', 'host']],
  ['CONCORD_ADMIN_TOKEN', ['admin', 'token']],
  ['CONCORD_CONSOLE_URL', ['console', 'url']],
  ['CONCORD_CONSOLE_ALLOW', ['console', 'allow']],
  ['CONCORD_STORE', ['store']],
  ['CONCORD_STORE_PREFIX', ['storePrefix']],
  ['CONCORD_SECRETS_KEY', ['secretsKey']],
  ['LOG_LEVEL', ['logLevel']],
];

export function issuesOf(error: z.ZodError, source: string): ConfigIssue[] {
  return error.issues.map((issue) => ({ source, field: issue.path.join('.'), message: issue.message }));
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    const names = await readdir(dir);
    return names.filter((n) => /\.(ya?ml|json)$/.test(n)).sort().map((n) => path.join(dir, n));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown) {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

/** One file of a kind (participant or client): what parsed, and what cross-file checks can still read when it did not. */
interface FileEntry<T> {
  source: string;
  /** The whole document, when it passed its schema. */
  value: T | undefined;
  /** The document as written (undefined when it is not YAML/JSON), for the identity of a refused file. */
  raw: unknown;
}

/** A file's syntax problems as issues, each with its line and column. */
async function readFileIssues(file: string, source: string, issues: ConfigIssue[]): Promise<{ ok: boolean; value?: unknown; missing?: boolean }> {
  let parsed;
  try {
    parsed = await readDocumentFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, missing: true };
    issues.push({ source, field: '', message: `cannot be read: ${code ?? (error as Error).message.split('\n')[0]}` });
    return { ok: false };
  }
  if (parsed.ok) return { ok: true, value: parsed.value };
  for (const problem of parsed.problems) issues.push({ source, field: '', message: `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${describeSyntaxProblem(problem)}` });
  return { ok: false };
}

/**
 * Parses one file with a schema and records every issue against the file's name.
 * A file that is not YAML/JSON at all is one issue per syntax error, not a stack trace.
 */
async function parseFile<S extends z.ZodType>(file: string, schema: S, issues: ConfigIssue[], source: string): Promise<FileEntry<z.output<S>>> {
  const read = await readFileIssues(file, source, issues);
  if (!read.ok) return { source, value: undefined, raw: undefined };
  const result = schema.safeParse(read.value ?? {});
  if (!result.success) {
    issues.push(...issuesOf(result.error, source));
    return { source, value: undefined, raw: read.value };
  }
  return { source, value: result.data, raw: read.value };
}

/** How a file is named in issues: relative to the working directory when inside it, else in full. */
export function sourceName(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/**
 * Reads `concord.yaml`, `participants/*.yaml` and `clients/*.yaml` from the configuration directory,
 * applies CONCORD_* overrides and validates everything. Throws one ConfigError naming every bad field.
 */
export async function loadConfig(options: { dir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const dir = path.resolve(options.dir ?? env.CONCORD_CONFIG_DIR ?? './config');
  const issues: ConfigIssue[] = [];
  const rel = sourceName;

  const mainFile = path.join(dir, 'concord.yaml');
  let raw: Record<string, unknown> = {};
  const main = await readFileIssues(mainFile, rel(mainFile), issues);
  if (main.ok) {
    const document = main.value;
    if (document !== null && typeof document === 'object' && !Array.isArray(document)) raw = document as Record<string, unknown>;
    else if (document != null) issues.push({ source: rel(mainFile), field: '', message: 'must be a mapping of settings' });
  }

  const envSources = new Map<string, string>();
  for (const [variable, keys, parse] of ENV_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    setPath(raw, keys, parse ? parse(value) : value);
    envSources.set(keys.join('.'), variable);
  }

  const settingsResult = ConcordSettingsSchema.safeParse(raw);
  if (!settingsResult.success) {
    for (const issue of issuesOf(settingsResult.error, rel(mainFile))) {
      const variable = envSources.get(issue.field);
      issues.push(variable ? { ...issue, source: `environment ${variable}` } : issue);
    }
  }

  const participantFiles: Array<FileEntry<Participant>> = [];
  for (const file of await filesIn(path.join(dir, 'participants'))) participantFiles.push(await parseFile(file, ParticipantSchema, issues, rel(file)));
  const clientFiles: Array<FileEntry<ClientConfig>> = [];
  for (const file of await filesIn(path.join(dir, 'clients'))) clientFiles.push(await parseFile(file, ClientSchema, issues, rel(file)));

  // Across files, also with the files refused above: what of them can be read still counts (its id,
  // its domains), so one run tells every problem, and no false one (a client naming a participant
  // whose file has a typo elsewhere).
  issues.push(...crossChecks(participantFiles.map(participantIdentity), clientFiles.map(clientIdentity)));
  if (settingsResult.success) issues.push(...redirectPolicyIssues(clientFiles, settingsResult.data));
  if (issues.length > 0 || !settingsResult.success) throw new ConfigError(issues);
  const participants = participantFiles.map((f) => f.value!);
  const clients = clientFiles.map((f) => f.value!);
  return { dir, settings: settingsResult.data, participants, clients };
}

/**
 * The deployment's rules on clients, for the client files: http redirect URIs (settings
 * `clients.allowHttpRedirectUris`) and the signing algorithms a client names (`keys.algorithms`).
 */
function redirectPolicyIssues(clients: Array<FileEntry<ClientConfig>>, settings: ConcordSettings): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const { source, value } of clients) {
    if (!value) continue;
    const problems = [...clientRedirectProblems(value, settings.clients.allowHttpRedirectUris), ...clientAlgorithmProblems(value, settings.keys.algorithms)];
    for (const { field, message } of problems) issues.push({ source, field, message });
  }
  return issues;
}

/** What cross-file checks read of a participant file: all of it when valid, else each part that is. */
export interface ParticipantIdentity {
  source: string;
  id: string | undefined;
  domains: string[];
  upstream: Participant['upstream'] | undefined;
}

/** What cross-file checks read of a client file. */
export interface ClientIdentity {
  source: string;
  client_id: string | undefined;
  participants: string[];
}

const field = (raw: unknown, name: string): unknown => (raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[name] : undefined);
const each = (raw: unknown): unknown[] => (Array.isArray(raw) ? raw : []);

function participantIdentity({ source, value, raw }: FileEntry<Participant>): ParticipantIdentity {
  if (value) return { source, id: value.id, domains: value.domains, upstream: value.upstream };
  const { shape } = ParticipantSchema;
  return {
    source,
    id: shape.id.safeParse(field(raw, 'id')).data,
    // One at a time: a bad domain does not hide the good ones' conflicts.
    domains: each(field(raw, 'domains')).flatMap((domain) => shape.domains.safeParse([domain]).data ?? []),
    upstream: shape.upstream.safeParse(field(raw, 'upstream')).data,
  };
}

function clientIdentity({ source, value, raw }: FileEntry<ClientConfig>): ClientIdentity {
  if (value) return { source, client_id: value.client_id, participants: value.participants ?? [] };
  const { shape } = ClientSchema;
  return {
    source,
    client_id: shape.client_id.safeParse(field(raw, 'client_id')).data,
    participants: each(field(raw, 'participants')).filter((id): id is string => typeof id === 'string'),
  };
}

/** Rules that span files: unique ids, each domain owned by one participant, one participant per upstream, clients naming real participants. */
export function crossChecks(participants: ParticipantIdentity[], clients: ClientIdentity[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const ids = new Map<string, string>();
  const owners = new Map<string, string>();
  const upstreams = new Map<string, string>();
  for (const p of participants) {
    if (p.id === undefined) continue;
    const { id, source } = p;
    const defined = ids.get(id);
    if (defined !== undefined) issues.push({ source, field: 'id', message: `participant "${id}" is defined twice (also in ${defined})` });
    else ids.set(id, source);
    if (p.upstream) {
      // One upstream (issuer + client) serves one participant: otherwise idp_hint would pick the identity.
      const upstream = upstreamIdentity({ id, upstream: p.upstream });
      const sharing = upstreams.get(upstream);
      if (sharing && sharing !== id) issues.push({ source, ...sharedUpstream({ upstream: p.upstream }, sharing) });
      upstreams.set(upstream, id);
    }
    p.domains.forEach((domain, index) => {
      const owner = owners.get(domain);
      if (owner && owner !== id) issues.push({ source, field: `domains.${index}`, message: `domain ${domain} is already owned by participant "${owner}"` });
      else owners.set(domain, id);
    });
  }
  const clientIds = new Map<string, string>();
  for (const c of clients) {
    if (c.client_id !== undefined) {
      const defined = clientIds.get(c.client_id);
      if (defined !== undefined) issues.push({ source: c.source, field: 'client_id', message: `client "${c.client_id}" is defined twice (also in ${defined})` });
      else clientIds.set(c.client_id, c.source);
    }
    c.participants.forEach((pid, index) => {
      if (!ids.has(pid)) issues.push({ source: c.source, field: `participants.${index}`, message: `no participant "${pid}"` });
    });
  }
  return issues;
}
