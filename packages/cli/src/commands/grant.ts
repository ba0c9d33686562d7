/** `pa grant <name>`: a grant printed for a client that connects to a node directly. */
import { discoverGrpc, explainGrpcTls, GrantClient, grantIssueError, type GrantView } from '../api/grant-client';
import { closest, type CommandSpec } from '../args/parser';
import type { CommandContext } from '../command-context';
import { CliError, EXIT } from '../errors';
import { formatTime } from '../output/format';
import { fetchReachable } from './list';

/** A connection the user may reach, as `pa list` shows it. */
export type ReachableConnection = Awaited<ReturnType<typeof fetchReachable>>[number];

/**
 * The first steps of `pa connect` and `pa grant`: the connection among those
 * the user may reach (else an error that says what to do), the GrantService,
 * and a grant. The caller closes `grants`.
 */
export const openGrant = async (ctx: CommandContext, name: string, ttl: number): Promise<{ target: ReachableConnection; grants: GrantClient; grant: GrantView }> => {
  const session = ctx.session();
  const reachable = await fetchReachable(session);
  const target = reachable.find((c) => c.name === name);
  if (!target) {
    const guess = closest(name, reachable.map((c) => c.name));
    throw new CliError(`unknown connection "${name}"${guess ? ` (did you mean ${guess}?)` : ''}: run \`pa list\` to see what you may reach`, EXIT.NOT_FOUND);
  }
  const endpoint = await discoverGrpc(session.rest);
  const grants = new GrantClient(endpoint, session, { now: ctx.now, trust: session.trust });
  try {
    return { target, grants, grant: await grants.issue(name, ttl) };
  } catch (err) {
    grants.close();
    throw (await explainGrpcTls(err, endpoint, session.trust)) ?? grantIssueError(err, name, endpoint.address);
  }
};

export const grantCommand: CommandSpec<CommandContext> = {
  name: 'grant',
  summary: 'Print a short-lived grant, for a direct PostgreSQL connection to a node',
  description:
    'Ask the control plane for a grant to a connection and print it on stdout: the password of a direct PostgreSQL connection to a data-plane node that accepts them (sslmode=require; the node is configured with PA_PG_DIRECT_PORT). The grant is not renewed: connect before it expires (its expiry is printed on stderr). For everything else use `pa connect`.',
  args: [{ name: 'name', description: 'Connection name (see `pa list`)', required: true }],
  flags: [
    { name: 'ttl', type: 'number', valueName: 'SECONDS', description: 'Requested grant lifetime (the server caps it)' },
    { name: 'json', type: 'boolean', description: 'Print the grant, its id, expiry and connection as JSON' },
  ],
  examples: ['PGPASSWORD="$(pa grant reports-db)" psql "host=node.example.com port=5433 dbname=reports user=alice sslmode=require"', 'pa grant reports-db --json'],
  run: async (ctx, input) => {
    const name = input.requiredArg(0);
    const ttl = input.number('ttl') ?? 0;
    if (ttl < 0) throw input.usageError('--ttl must be a number of seconds');
    const { grants, grant } = await openGrant(ctx, name, ttl);
    try {
      if (input.boolean('json')) {
        ctx.out(`${JSON.stringify({ grant: grant.token, id: grant.id, expiresAt: grant.expiresAt.toISOString(), connection: name, protocol: grant.protocol })}\n`);
      } else {
        ctx.out(`${grant.token}\n`);
        ctx.note(`Grant ${grant.id} for ${name} (${grant.protocol}), valid until ${formatTime(grant.expiresAt)}. It is a password: keep it out of shell history and logs.`);
      }
    } finally {
      grants.close();
    }
  },
};
