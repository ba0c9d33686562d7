import { createLogger, isAppError, stopOnSignals } from '@pa/kit';
import { loadConfig } from './config';
import { startNode } from './node';

/** Entry point of a data-plane node: load config, start, drain on SIGTERM/SIGINT. */
const main = async (): Promise<void> => {
  const config = loadConfig();
  const logger = createLogger({ service: 'data-plane', level: config.logLevel });
  const node = await startNode(config, logger);
  stopOnSignals(() => node.stop(), logger);
};

main().catch((err: unknown) => {
  process.stderr.write(`data-plane: failed to start: ${isAppError(err) ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
