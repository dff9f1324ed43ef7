import { createConcord } from './app.ts';
import { ConfigError, loadConfig } from './config/index.ts';
import { createLogger } from './observability/index.ts';
import { adminApiOff, issuerMismatch, localIdpsNotRunning, type StartupNotice } from './startup/index.ts';

/** Wires config, store, provider and listeners; nothing else. */
async function main(): Promise<void> {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // A person fixes this: the files, fields and reasons, not a stack trace.
      process.stderr.write(`concord: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const log = createLogger({ level: config.settings.logLevel });
  const concord = await createConcord({ config, logger: log });
  const { publicUrl, adminUrl } = await concord.listen();
  log.info(
    { issuer: config.settings.issuer, public: publicUrl, admin: adminUrl, store: concord.store.kind, participants: concord.registry.participants().length, clients: concord.registry.clients().length },
    'concord started',
  );
  // What would leave a person wondering why nothing works, said once: settings now, the partners'
  // IdPs once the first health checks are in.
  const warn = (notice: StartupNotice | undefined) => notice && log.warn({ notice: notice.code, ...notice.detail }, notice.message);
  warn(issuerMismatch(config.settings.issuer, Number(new URL(publicUrl).port)));
  warn(adminApiOff(config.settings, adminUrl));
  void concord.upstreamWatch.settled().then(() => {
    const participants = concord.registry.participants().filter((p) => p.config.enabled).map((p) => p.config);
    warn(localIdpsNotRunning(participants, (id) => concord.upstreamHealth.statusOf(id)?.up === false));
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: readiness off, finishing requests in flight');
    const force = setTimeout(() => process.exit(1), config.settings.shutdown.drainDelayMs + 25_000);
    force.unref();
    await concord.shutdown();
    log.info('stopped');
    // pino writes stdout asynchronously, and process.exit() now could put 'stopped' before the line
    // still being written: let the event loop end once the writes are out, or exit after a second.
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  const e = error as { message?: string; error_description?: string };
  process.stderr.write(`concord: failed to start: ${e?.error_description ?? e?.message ?? String(error)}\n`);
  process.exit(1);
});
