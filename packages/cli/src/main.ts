/**
 * The `pa` executable: reads the environment (config.ts), turns SIGINT/SIGTERM
 * into a clean shutdown, runs the CLI on the process's streams, and exits with
 * its code. Run it with `bin/pa` (or `tsx src/main.ts`).
 */
import { getEventListeners } from 'node:events';
import { runCli } from './cli';
import { loadConfig, type Config } from './config';
import { describeFailure, EXIT } from './errors';

const main = async (): Promise<void> => {
  let config: Readonly<Config>;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`pa: ${describeFailure(err).message}\n`);
    process.exitCode = EXIT.ERROR;
    return;
  }
  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = signal === 'SIGINT' ? 130 : 143;
    // A command that listens (pa connect) closes its tunnels and returns; any
    // other command, or a second signal, ends the process at once.
    if (shutdown.signal.aborted || getEventListeners(shutdown.signal, 'abort').length === 0) process.exit(code);
    shutdown.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await runCli(process.argv.slice(2), {
    config,
    io: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
    shutdown: shutdown.signal,
  });
  process.exitCode = code;
  // Whatever is still open (a gRPC channel winding down) must not keep pa alive.
  setTimeout(() => process.exit(code), 1000).unref();
};

void main();
