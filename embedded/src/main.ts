import { createLogger, isAppError, stopOnSignals } from '@pa/kit';
import { loadEmbeddedSettings, processEnv } from './config';
import { startEmbedded } from './embedded';

/** `pnpm start`: the whole system on its embedded default, with the demo. */
const main = async (): Promise<void> => {
  const env = processEnv();
  const settings = loadEmbeddedSettings(env);
  const logger = createLogger({ service: 'embedded', level: env.PA_LOG_LEVEL ?? 'warn' });
  const running = await startEmbedded({ env, logger, demo: settings.demo });
  const cp = running.controlPlane;
  const lines = [
    '',
    'Port Authorizing is running (embedded default).',
    `  Control plane   ${cp.url}/api/v1   (API docs: ${cp.url}/api/v1/docs/, gRPC ${cp.grpcAddress})`,
    `  Data plane      ${running.node.tunnelUrl}   (health and metrics: ${running.node.adminUrl}/readyz, /metrics)`,
    `  Database        ${cp.embedded ? 'embedded PostgreSQL under the data directory' : 'DATABASE_URL'}`,
  ];
  if (cp.bootstrap) {
    lines.push(`  Admin           user "${cp.bootstrap.username}"`);
    if (cp.bootstrap.generatedPassword) lines.push(`  Password        ${cp.bootstrap.generatedPassword}   (shown once)`);
  }
  if (running.demo) lines.push(`  Demo            ${running.demo.connections.join(', ')} (policies for roles admin and developer)`);
  lines.push('', `Next: pnpm pa login --server ${cp.url}   then   pnpm pa list   and   pnpm pa connect demo-api`, '');
  process.stdout.write(`${lines.join('\n')}\n`);
  stopOnSignals(() => running.stop(), logger);
};

main().catch((err: unknown) => {
  process.stderr.write(`pnpm start: failed: ${isAppError(err) ? err.message : err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
