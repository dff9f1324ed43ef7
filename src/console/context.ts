import type { Context } from 'koa';
import type { AdminOperations, AuditLog, ConfigSync } from '../admin/index.ts';
import type { AdminToken } from '../admin/index.ts';
import type { ConcordSettings } from '../config/index.ts';
import type { Actor, DomainProof } from '../domain-proof/index.ts';
import type { TestLogins } from '../interactions/index.ts';
import type { KeyManager } from '../keys/index.ts';
import type { Logger } from '../observability/index.ts';
import type { Registry } from '../participants/index.ts';
import type { AccountStore } from '../provider/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { SecretBox } from '../secrets/index.ts';
import type { Store } from '../store/index.ts';
import type { InstanceView, LoginTally } from './activity.ts';
import type { ConsoleAdmin, ConsoleSession, ConsoleSessions } from './sessions.ts';

/** What the console needs; built once in app.ts. Changes go through `ops`, the admin API's own code. */
export interface ConsoleDeps {
  settings: ConcordSettings;
  store: Store;
  registry: Registry;
  ops: AdminOperations;
  audit: AuditLog;
  sync: Pick<ConfigSync, 'version'>;
  domains: DomainProof;
  keys: KeyManager;
  accounts: AccountStore;
  sessions: Sessions;
  logins: LoginTally;
  instances: () => Promise<InstanceView[]>;
  testLogins: TestLogins;
  /** Seals what the wizard keeps of a client secret between its steps (the session is in the store). */
  secrets: SecretBox;
  /** The admin API's bearer tokens: the break-glass sign-in. */
  adminTokens: AdminToken[];
  /** The console's origin (console.url, or the admin listener's address once bound). */
  origin: () => string;
  log: Logger;
}

/** The request's console state, once the session is loaded. */
export interface ConsoleState {
  id: string;
  session: ConsoleSession;
  sessions: ConsoleSessions;
}

export const stateOf = (ctx: Context): ConsoleState => ctx.state.console as ConsoleState;
export const adminOf = (ctx: Context): ConsoleAdmin => stateOf(ctx).session.admin!;

/** The actor of a console change: the admin's `sub` (or `admin-token`), with this request's id. */
export function consoleActor(ctx: Context): Actor {
  return { actor: adminOf(ctx).actor, ...(typeof ctx.state.requestId === 'string' ? { requestId: ctx.state.requestId } : {}) };
}
