import { createLogger, isAppError } from '@pa/kit';
import { loadConfig } from './config';
import { startEmbeddedDatabase } from './db/embedded';
import { migrate } from './db/migrate';

/** `pnpm migrate`: applies pending migrations to DATABASE_URL (or the embedded database) and exits. */
const main = async (): Promise<void> => {
  const config = loadConfig();
  const logger = createLogger({ service: 'control-plane', level: config.logLevel });
  const embedded = config.database.url ? null : await startEmbeddedDatabase(config.dataDir, logger);
  try {
    const result = await migrate(config.database.url ?? (embedded?.url as string), logger);
    process.stdout.write(`migrations: ${result.applied.length ? `applied ${result.applied.join(', ')}` : 'none pending'}; schema version ${result.current}\n`);
  } finally {
    await embedded?.stop();
  }
};

main().catch((err: unknown) => {
  process.stderr.write(`migrate: ${isAppError(err) ? err.message : String(err)}\n`);
  process.exit(1);
});
