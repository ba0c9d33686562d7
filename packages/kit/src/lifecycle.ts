import type { Logger } from './logger';

/**
 * Stops `stop` once on the first SIGTERM or SIGINT, then exits (0 when it
 * stopped cleanly, 1 otherwise). Shared by every service entry point.
 */
export const stopOnSignals = (stop: () => Promise<void>, logger: Logger): void => {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('Shutting down.', { signal });
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
};
