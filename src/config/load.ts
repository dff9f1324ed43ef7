import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { clientRedirectProblems } from './redirect-uris.ts';
import {
  ClientSchema,
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
  ['CONCORD_STORE', ['store']],
  ['CONCORD_STORE_PREFIX', ['storePrefix']],
  ['CONCORD_SECRETS_KEY', ['secretsKey']],
  ['LOG_LEVEL', ['logLevel']],
];

export function issuesOf(error: z.ZodError, source: string): ConfigIssue[] {
  return error.issues.map((issue) => ({ source, field: issue.path.join('.'), message: issue.message }));
}

async function readDocument(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
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

/**
 * Parses one file with a schema and records every issue against the file's name.
 * A file that is not YAML/JSON at all is one issue, not a stack trace.
 */
async function parseFile<S extends z.ZodType>(file: string, schema: S, issues: ConfigIssue[], relative: string): Promise<z.output<S> | undefined> {
  let document: unknown;
  try {
    document = await readDocument(file);
  } catch (error) {
    issues.push({ source: relative, field: '', message: `cannot be read: ${(error as Error).message.split('\n')[0]}` });
    return undefined;
  }
  const result = schema.safeParse(document ?? {});
  if (!result.success) {
    issues.push(...issuesOf(result.error, relative));
    return undefined;
  }
  return result.data;
}

/**
 * Reads `concord.yaml`, `participants/*.yaml` and `clients/*.yaml` from the configuration directory,
 * applies CONCORD_* overrides and validates everything. Throws one ConfigError naming every bad field.
 */
export async function loadConfig(options: { dir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const dir = path.resolve(options.dir ?? env.CONCORD_CONFIG_DIR ?? './config');
  const issues: ConfigIssue[] = [];
  const rel = (file: string) => path.relative(process.cwd(), file) || file;

  const mainFile = path.join(dir, 'concord.yaml');
  let raw: Record<string, unknown> = {};
  try {
    const document = await readDocument(mainFile);
    if (document !== null && typeof document === 'object' && !Array.isArray(document)) raw = document as Record<string, unknown>;
    else if (document != null) issues.push({ source: rel(mainFile), field: '', message: 'must be a mapping of settings' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      issues.push({ source: rel(mainFile), field: '', message: `cannot be read: ${(error as Error).message.split('\n')[0]}` });
    }
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

  const participants: Participant[] = [];
  for (const file of await filesIn(path.join(dir, 'participants'))) {
    const participant = await parseFile(file, ParticipantSchema, issues, rel(file));
    if (participant) participants.push(participant);
  }
  const clients: ClientConfig[] = [];
  for (const file of await filesIn(path.join(dir, 'clients'))) {
    const client = await parseFile(file, ClientSchema, issues, rel(file));
    if (client) clients.push(client);
  }

  issues.push(...crossChecks(participants, clients, dir));
  if (settingsResult.success) issues.push(...redirectPolicyIssues(clients, settingsResult.data, dir));
  if (issues.length > 0 || !settingsResult.success) throw new ConfigError(issues);
  return { dir, settings: settingsResult.data, participants, clients };
}

/** The deployment's rule on http redirect URIs (settings `clients.allowHttpRedirectUris`), for the client files. */
export function redirectPolicyIssues(clients: ClientConfig[], settings: ConcordSettings, dir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const c of clients) {
    for (const { field, message } of clientRedirectProblems(c, settings.clients.allowHttpRedirectUris)) {
      issues.push({ source: path.join(path.relative(process.cwd(), dir) || '.', 'clients', `${c.client_id}.yaml`), field, message });
    }
  }
  return issues;
}

/** Rules that span files: unique ids, each domain owned by one participant, clients naming real participants. */
export function crossChecks(participants: Participant[], clients: ClientConfig[], dir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const source = (kind: string, id: string) => path.join(path.relative(process.cwd(), dir) || '.', kind, `${id}.yaml`);
  const ids = new Set<string>();
  const owners = new Map<string, string>();
  const upstreams = new Map<string, string>();
  for (const p of participants) {
    // One upstream (issuer + client) serves one participant: otherwise idp_hint would pick the identity.
    const upstream = upstreamIdentity(p);
    const sharing = upstreams.get(upstream);
    if (sharing) issues.push({ source: source('participants', p.id), ...sharedUpstream(p, sharing) });
    upstreams.set(upstream, p.id);
    if (ids.has(p.id)) issues.push({ source: source('participants', p.id), field: 'id', message: `participant "${p.id}" is defined twice` });
    ids.add(p.id);
    for (const domain of p.domains) {
      const owner = owners.get(domain);
      if (owner && owner !== p.id) {
        issues.push({ source: source('participants', p.id), field: 'domains', message: `domain ${domain} is already owned by participant "${owner}"` });
      }
      owners.set(domain, p.id);
    }
  }
  const clientIds = new Set<string>();
  for (const c of clients) {
    if (clientIds.has(c.client_id)) issues.push({ source: source('clients', c.client_id), field: 'client_id', message: `client "${c.client_id}" is defined twice` });
    clientIds.add(c.client_id);
    for (const pid of c.participants ?? []) {
      if (!ids.has(pid)) issues.push({ source: source('clients', c.client_id), field: 'participants', message: `no participant "${pid}"` });
    }
  }
  return issues;
}
