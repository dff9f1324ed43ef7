import { parseArgs } from 'node:util';
import { AdminClient, DEFAULT_ADMIN_URL, oneLine } from './api.ts';
import { COMMANDS, type CommandContext } from './commands.ts';
import { CliError, usage } from './errors.ts';
import type { Output } from './output.ts';

const HELP = `concord: manage a running Concord through its admin API

Usage: concord <command> [options]

  participants list | show ID | add -f FILE | update [ID] -f FILE
               disable ID | enable ID | remove ID | revoke-sessions ID
  domains      list [-p ID] [--state pending|verified|suspended]
               show DOMAIN | check DOMAIN      state, what to publish, last check; check now
  clients      list | show ID | add -f FILE | update [ID] -f FILE | remove ID
  mapping      dry-run --participant ID --claims FILE [--mapping FILE]
  keys         list | rotate
  sessions     list USER | list --email EMAIL | show ID | end ID | revoke USER
               (USER: participant:sub, as in tokens' sub; end and revoke tell the services;
                an ID that begins with "-" goes after "--": sessions end -- -K2x...)
  audit        [--limit N] [--before SEQ]
  validate     [DIR]        offline: check a configuration directory (default ./config)

Options:
  --url URL      admin API (env CONCORD_ADMIN_URL, default ${DEFAULT_ADMIN_URL})
  --token TOKEN  bearer token (env CONCORD_ADMIN_TOKEN; prefer the variable: arguments show in ps)
  -f, --file     a YAML or JSON document
  --json         print the API's JSON, for scripts
  -h, --help

Exit codes: 0 done, 1 failed (one line on stderr says why), 2 usage, 3 dry-run rejected,
4 domain check done but the domain is not proven.
`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
  file: { type: 'string', short: 'f' },
  participant: { type: 'string', short: 'p' },
  claims: { type: 'string' },
  mapping: { type: 'string' },
  limit: { type: 'string' },
  before: { type: 'string' },
  state: { type: 'string' },
  email: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** Runs one command; returns the exit code. Never calls process.exit, so tests can run it in-process. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw usage((error as Error).message);
    }
    const { values, positionals } = parsed;
    json = values.json;
    if (values.help || positionals.length === 0) {
      io.stdout(HELP.trimEnd());
      return values.help ? 0 : 2;
    }

    const [groupName = '', ...rest] = positionals;
    const group = COMMANDS[groupName];
    if (!group) throw usage(`unknown command "${groupName}" (concord --help lists them)`);
    const single = group[''];
    const actionName = single ? '' : (rest[0] ?? '');
    const command = single ?? group[actionName];
    if (!command) throw usage(`${groupName} ${actionName || '(nothing)'}: expected one of ${Object.keys(group).join(', ')}`);
    const args = single ? rest : rest.slice(1);

    const output: Output = { json, out: io.stdout, err: io.stderr };
    let client: AdminClient | undefined;
    const context: CommandContext = {
      io: output,
      env: io.env,
      options: values,
      api() {
        const token = values.token ?? io.env.CONCORD_ADMIN_TOKEN;
        if (!token) throw usage('no admin token: set CONCORD_ADMIN_TOKEN or pass --token');
        client ??= new AdminClient(values.url ?? io.env.CONCORD_ADMIN_URL ?? DEFAULT_ADMIN_URL, token);
        return client;
      },
    };
    await command(context, args);
    return 0;
  } catch (error) {
    if (!(error instanceof CliError)) {
      io.stderr(`concord: unexpected error: ${oneLine((error as Error)?.message ?? String(error))}`);
      return 1;
    }
    if (json && error.body !== undefined) io.stdout(JSON.stringify(error.body, null, 2));
    io.stderr(`concord: ${oneLine(error.message)}`);
    return error.exitCode;
  }
}

/** The `concord` binary. */
export async function run(): Promise<void> {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
  });
}
