import { Writable } from 'node:stream';
import { createConcord, type Concord } from '../../src/app.ts';
import { ClientSchema, ConcordSettingsSchema, ParticipantSchema, type LoadedConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import type { Store } from '../../src/store/index.ts';
import { freePort } from './ports.ts';

export interface TestConcord {
  concord: Concord;
  issuer: string;
  adminUrl: string;
  /** Every log line written so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Every log line as written, to check nothing secret leaks. */
  rawLogs: () => string;
  close(): Promise<void>;
}

export interface TestConcordOptions {
  settings?: Record<string, unknown>;
  participants?: unknown[];
  clients?: unknown[];
  store?: Store;
  port?: number;
  logLevel?: string;
  /** The clock (Unix ms) of domain proof (its grace period) and of sessions (their ages): a fake one. */
  now?: () => number;
  /** The configuration directory (messages/, logos/ of the pages); none by default. */
  dir?: string;
}

export const TEST_SECRETS_KEY = Buffer.alloc(32, 11).toString('base64');

/** An in-process Concord on loopback ports, its logs captured. */
export async function startConcord(options: TestConcordOptions = {}): Promise<TestConcord> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const settings = ConcordSettingsSchema.parse({
    issuer,
    port,
    host: '127.0.0.1',
    admin: { port: 0, host: '127.0.0.1', token: 'test-admin-token-0123456789' },
    logLevel: options.logLevel ?? 'debug',
    // Required with a Redis store; the same for every instance a test starts, as in a deployment.
    secretsKey: TEST_SECRETS_KEY,
    ...options.settings,
  });
  const config: LoadedConfig = {
    dir: options.dir ?? '(test)',
    settings,
    participants: (options.participants ?? []).map((p) => ParticipantSchema.parse(p)),
    clients: (options.clients ?? []).map((c) => ClientSchema.parse(c)),
  };
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level: settings.logLevel, destination });
  const concord = await createConcord({ config, logger, ...(options.store ? { store: options.store } : {}), ...(options.now ? { now: options.now } : {}) });
  const { adminUrl } = await concord.listen();
  return {
    concord,
    issuer,
    adminUrl,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    rawLogs: () => lines.join('\n'),
    close: () => concord.close(),
  };
}

export const CONFIDENTIAL_CLIENT = {
  client_id: 'service-a',
  client_name: 'Service A',
  client_secret: 'service-a-secret-0123456789',
  redirect_uris: ['http://127.0.0.1:9999/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1:9999/logged-out'],
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  skip_consent: true,
};
