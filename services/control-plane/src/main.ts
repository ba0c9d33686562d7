import { createLogger, isAppError, stopOnSignals } from '@pa/kit';
import { loadConfig } from './config';
import { startControlPlane } from './server';

/** Entry point: load config, start, print how to log in, stop cleanly on SIGTERM/SIGINT. */
const main = async (): Promise<void> => {
  const config = loadConfig();
  const logger = createLogger({ service: 'control-plane', level: config.logLevel });
  const running = await startControlPlane(config, logger);
  const lines = [
    '',
    'Port Authorizing control plane is running.',
    `  REST API   ${running.url}/api/v1   (docs: ${running.url}/api/v1/docs/)`,
    `  Database   ${running.embedded ? `embedded PostgreSQL under ${config.dataDir}` : 'DATABASE_URL'}`,
  ];
  if (running.bootstrap) {
    lines.push(`  Admin      user "${running.bootstrap.username}"`);
    if (running.bootstrap.generatedPassword) {
      lines.push(`  Password   ${running.bootstrap.generatedPassword}   (shown once: change it with POST /api/v1/auth/password)`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
  stopOnSignals(() => running.stop(), logger);
};

main().catch((err: unknown) => {
  const message = isAppError(err) ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
  process.stderr.write(`control-plane: failed to start: ${message}\n`);
  process.exit(1);
});
