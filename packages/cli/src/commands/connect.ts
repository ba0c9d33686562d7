/** `pa connect <name>`: a local listener that tunnels to a connection. */
import { isRetryableGrantError, type GrantView } from '../api/grant-client';
import type { CommandSpec } from '../args/parser';
import type { CommandContext } from '../command-context';
import { CliError, EXIT, GrpcCallError, describeFailure } from '../errors';
import { formatDuration, formatTime } from '../output/format';
import { startConnectSession, type SessionEnd } from '../tunnel/connect-session';
import { checkLoopbackAddress, DEFAULT_ADDRESS, type ListenerEvent } from '../tunnel/local-listener';
import { openGrant } from './grant';

/** How often `pa connect` asks a node whether its grant still stands (`--check-every`). */
const DEFAULT_CHECK_SECONDS = 15;

/** The line to paste for a protocol. */
export const pasteLine = (protocol: string, address: string, port: number, database: string | null | undefined, username: string): string => {
  const host = address.includes(':') ? `[${address}]` : address;
  switch (protocol) {
    case 'postgres': {
      const parts = [`host=${address}`, `port=${port}`, ...(database ? [`dbname=${database}`] : []), ...(username ? [`user=${username}`] : []), 'sslmode=disable'];
      return `psql "${parts.join(' ')}"`;
    }
    case 'http':
      return `curl http://${host}:${port}/`;
    default:
      return `nc ${address} ${port}`;
  }
};

/** What to tell the user when a session ends on its own. */
const sessionEndError = (end: Exclude<SessionEnd<GrantView>, { kind: 'stopped' }>, name: string): CliError => {
  switch (end.kind) {
    case 'revoked': {
      const err = end.error;
      if (err instanceof GrpcCallError && err.code === 'GRANT_EXPIRED') {
        return new CliError(`the session for ${name} ended: ${err.detail}`, EXIT.ERROR, { cause: err });
      }
      if (err instanceof GrpcCallError) return new CliError(`access to ${name} was revoked: ${err.detail} (${err.code})`, EXIT.PERMISSION_DENIED, { cause: err });
      const { message, exitCode } = describeFailure(err);
      return new CliError(`access to ${name} ended: ${message}`, exitCode, { cause: err });
    }
    case 'expired':
      return new CliError(`the grant for ${name} expired and could not be renewed (${describeFailure(end.error).message}); the tunnels are closed`, EXIT.UNREACHABLE, { cause: end.error });
    case 'session-ended':
      return new CliError(`the session for ${name} reached its end${end.grant.sessionEndsAt ? ` (${formatTime(end.grant.sessionEndsAt)})` : ''}: run \`pa connect ${name}\` to start a new one`, EXIT.ERROR);
  }
};

const describeEvent = (e: ListenerEvent): string => {
  switch (e.type) {
    case 'opened':
      return `#${e.id} opened from ${e.peer} via ${e.url}`;
    case 'closed':
      return `#${e.id} closed (${e.bytesSent} bytes sent, ${e.bytesReceived} received)`;
    case 'refused':
      return `#${e.id} refused by the data plane: ${e.error.detail} (${e.error.code})`;
    case 'failed':
      return `#${e.id} could not open a tunnel: ${e.errors.map((f) => (f.url ? `${f.url}: ${f.message}` : f.message)).join('; ') || 'no data-plane node is available'}`;
  }
};

export const connectCommand: CommandSpec<CommandContext> = {
  name: 'connect',
  summary: 'Open a local port that tunnels to a connection',
  description:
    'Ask the control plane for a short-lived grant to a connection and listen on 127.0.0.1 (never another interface). Every local connection opens its own tunnel to a data-plane node. The grant is renewed before it expires; if access is revoked, every tunnel is closed and pa exits with code 3. Ctrl-C closes everything.',
  args: [{ name: 'name', description: 'Connection name (see `pa list`)', required: true }],
  flags: [
    { name: 'port', short: 'p', type: 'number', valueName: 'N', description: 'Local port (default: a free one)' },
    { name: 'ttl', type: 'number', valueName: 'SECONDS', description: 'Requested grant lifetime (the server caps it; renewed anyway)' },
    { name: 'address', type: 'string', valueName: 'ADDR', description: 'Loopback address to listen on (default 127.0.0.1; other interfaces are refused)' },
    { name: 'check-every', type: 'number', valueName: 'SECONDS', description: 'Ask the data plane this often whether access still stands, so a revocation ends an idle session too (default 15; 0: only when a tunnel closes or opens)' },
  ],
  examples: ['pa connect reports-db', 'pa connect reports-db --port 5433', 'pa connect internal-api -p 8081'],
  run: async (ctx, input) => {
    const name = input.requiredArg(0);
    const address = checkLoopbackAddress(input.string('address') ?? DEFAULT_ADDRESS);
    const port = input.number('port') ?? 0;
    if (port < 0 || port > 65_535) throw input.usageError('--port must be between 1 and 65535');
    const ttl = input.number('ttl') ?? 0;
    if (ttl < 0) throw input.usageError('--ttl must be a number of seconds');
    const checkEvery = input.number('check-every') ?? DEFAULT_CHECK_SECONDS;
    if (!(checkEvery >= 0)) throw input.usageError('--check-every must be a number of seconds (0 turns the periodic check off)');

    const session = ctx.session();
    const { target, grants, grant } = await openGrant(ctx, name, ttl);
    try {
      const stamp = (): string => formatTime(ctx.now()).slice(11);
      const connect = await startConnectSession<GrantView>({
        grant,
        renew: (current) => grants.renew(current.id, ttl),
        isRetryable: isRetryableGrantError,
        address,
        port,
        ...(session.trust.ca ? { ca: session.trust.ca } : {}),
        signal: ctx.shutdown,
        onListenerEvent: (e) => ctx.note(`[${stamp()}] ${describeEvent(e)}`),
        onRenewed: (g) => ctx.note(`[${stamp()}] grant renewed (${g.id}), valid until ${formatTime(g.expiresAt)}`),
        onRetry: (err, delay) => ctx.note(`[${stamp()}] could not renew the grant (${describeFailure(err).message}); retrying in ${formatDuration(delay)}`),
        now: ctx.now,
        watchIntervalMs: checkEvery * 1000,
      });
      const { listener } = connect;
      ctx.registry.record({
        pid: ctx.pid,
        connection: name,
        protocol: grant.protocol,
        address: listener.address,
        port: listener.port,
        context: session.contextName,
        startedAt: new Date(ctx.now()).toISOString(),
        grantExpiresAt: grant.expiresAt.toISOString(),
      });
      try {
        const lines = [
          `Connected to ${name} (${grant.protocol}) on ${listener.address}:${listener.port}.`,
          `  ${pasteLine(grant.protocol, listener.address, listener.port, target.database, session.username)}`,
          ...(grant.protocol === 'postgres' ? ['  (no password needed: your grant authenticates you)'] : []),
          `Grant ${grant.id} is renewed automatically. Press Ctrl-C to disconnect.`,
        ];
        ctx.out(`${lines.join('\n')}\n`);
        const end = await connect.ended;
        if (end.kind !== 'stopped') throw sessionEndError(end, name);
        ctx.note(`Disconnected from ${name}.`);
      } finally {
        ctx.registry.remove(ctx.pid);
      }
    } finally {
      grants.close();
    }
  },
};
