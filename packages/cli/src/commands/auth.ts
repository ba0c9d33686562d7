/** `pa login`, `pa logout`, `pa status` / `pa whoami`. */
import { z } from 'zod';
import { applyTokenPair, forgetTokens, tokenPairSchema } from '../api/auth-session';
import { normalizeServer, RestClient } from '../api/rest-client';
import type { CommandSpec } from '../args/parser';
import type { CommandContext } from '../command-context';
import { ApiError, CliError, EXIT, SilentExit, describeFailure, type ExitCode } from '../errors';
import { formatJson, formatRelative, formatTable, formatTime } from '../output/format';
import { promptHidden, promptLine, readAllInput } from '../prompt';
import { contextNameSchema, type Context } from '../store/config-file';

const loginAnswerSchema = tokenPairSchema.extend({ user: z.object({ id: z.string(), username: z.string() }).passthrough() });

const hostOf = (server: string): string => new URL(server).host;

/** The context a login is stored in: the one named, one for the same server and user, or `user@host`. */
const chooseContextName = (contexts: Record<string, Context>, server: string, username: string, explicit: string | undefined): string => {
  if (explicit) return explicit;
  const same = Object.entries(contexts).find(([, c]) => c.server === server && c.user?.username === username);
  if (same) return same[0];
  const base = `${username}@${hostOf(server)}`;
  let name = base;
  for (let n = 2; contexts[name] && contexts[name]?.server !== server; n += 1) name = `${base}-${n}`;
  return name;
};

export const loginCommand: CommandSpec<CommandContext> = {
  name: 'login',
  summary: 'Log in to a control plane',
  description:
    'Log in to a control plane and store the tokens in a context (mode 0600). The password is asked without echo, or read from stdin with --password-stdin. Use --context NAME to keep several control planes side by side. With --ca-file FILE (a PEM CA bundle), pa also trusts that CA for this context from then on: for the REST API, the grant service and the tunnels of a deployment whose certificates a private CA signs.',
  flags: [
    { name: 'server', short: 's', type: 'string', valueName: 'URL', description: 'Control plane URL (default: the context\'s, else $PA_SERVER, else http://127.0.0.1:8080)' },
    { name: 'username', short: 'u', type: 'string', valueName: 'NAME', description: 'Username (asked when not given)' },
    { name: 'password-stdin', type: 'boolean', description: 'Read the password from stdin (for scripts)' },
  ],
  examples: ['pa login --server https://pa.example.com -u alice', 'pa login --server https://pa.internal -u alice --ca-file ~/corp-ca.pem', 'echo "$PASSWORD" | pa login -u ci-bot --password-stdin --context ci'],
  run: async (ctx, input) => {
    const file = ctx.store.read();
    const explicit = ctx.contextOverride;
    if (explicit) {
      const ok = contextNameSchema.safeParse(explicit);
      if (!ok.success) throw input.usageError(`--context: ${ok.error.issues[0]?.message ?? 'invalid name'}`);
    }
    const existing = (explicit ? file.contexts[explicit] : file.currentContext ? file.contexts[file.currentContext] : undefined) ?? undefined;
    const flagServer = input.string('server');
    const server = normalizeServer(flagServer ?? existing?.server ?? ctx.config.defaultServer);
    const sameServer = existing?.server === server ? existing : undefined;

    const { stdin, stderr } = ctx.io;
    let username = input.string('username');
    const passwordFromStdin = input.boolean('password-stdin');
    if (!username) {
      if (passwordFromStdin || !stdin.isTTY) {
        throw input.usageError(passwordFromStdin ? '--password-stdin needs --username' : 'the input is not a terminal: give --username and --password-stdin');
      }
      const suggested = sameServer?.user?.username;
      username = (await promptLine(suggested ? `Username [${suggested}]: ` : 'Username: ', stdin, stderr)) || suggested || '';
      if (!username) throw new CliError('no username given');
    }
    let password: string;
    if (passwordFromStdin) password = await readAllInput(stdin);
    else if (stdin.isTTY) password = await promptHidden('Password: ', stdin, stderr);
    else throw input.usageError('the input is not a terminal: pass the password with --password-stdin');
    if (!password) throw new CliError('no password given');

    // --ca-file (or PA_CA_FILE), else the CA file this context already keeps for the same server.
    const caFile = ctx.caFileFlag() ?? sameServer?.caFile;
    const trust = ctx.trust(sameServer?.caFile);
    const rest = new RestClient(server, { fetch: trust.fetch });
    let answer: z.infer<typeof loginAnswerSchema>;
    try {
      const res = await rest.request('POST', '/auth/login', { body: { username, password } });
      const parsed = loginAnswerSchema.safeParse(res.body);
      if (!parsed.success) throw new CliError(`${server} answered the login in an unexpected shape: is it a Port Authorizing control plane?`);
      answer = parsed.data;
    } catch (err) {
      if (err instanceof ApiError) {
        const code = err.status === 401 ? EXIT.NEEDS_LOGIN : describeFailure(err).exitCode;
        throw new CliError(`login failed: ${err.detail}`, code, { cause: err });
      }
      throw err;
    }
    const now = ctx.now();
    const name = await ctx.store.update((config) => {
      const chosen = chooseContextName(config.contexts, server, answer.user.username, explicit);
      const context: Context = { server, user: { id: answer.user.id, username: answer.user.username }, ...(caFile ? { caFile } : {}) };
      applyTokenPair(context, answer, now);
      config.contexts[chosen] = context;
      config.currentContext = chosen;
      return chosen;
    });
    ctx.out(`Logged in to ${server} as ${answer.user.username} (context "${name}").\n`);
    if (caFile) ctx.note(`TLS: trusting the CAs in ${caFile} for this context, besides the built-in ones.`);
  },
};

export const logoutCommand: CommandSpec<CommandContext> = {
  name: 'logout',
  summary: 'End the session on the control plane and forget the tokens',
  run: async (ctx) => {
    const { name, context } = ctx.requireContext();
    if (!context.accessToken && !context.refreshToken) {
      ctx.out(`Not logged in to ${context.server} (context "${name}").\n`);
      return;
    }
    let failure: CliError | null = null;
    try {
      await ctx.session().request('POST', '/auth/logout');
    } catch (err) {
      const { message, exitCode } = describeFailure(err);
      // An expired or revoked session is already over on the server.
      if (exitCode !== EXIT.NEEDS_LOGIN) failure = new CliError(`forgot the tokens here, but could not end the session on ${context.server}: ${message}`, exitCode, { cause: err });
    }
    await ctx.store.update((config) => {
      const c = config.contexts[name];
      if (c) forgetTokens(c);
    });
    if (failure) throw failure;
    ctx.out(`Logged out of ${context.server} (context "${name}").\n`);
  },
};

const meSchema = z.object({ id: z.string(), username: z.string(), roles: z.array(z.string()).default([]), displayName: z.string().optional() }).passthrough();

export const statusCommand: CommandSpec<CommandContext> = {
  name: 'status',
  aliases: ['whoami'],
  summary: 'Who you are, which control plane, token expiry, active tunnels',
  flags: [{ name: 'json', type: 'boolean', description: 'Print JSON' }],
  run: async (ctx, input) => {
    const now = ctx.now();
    const tunnels = ctx.registry.list();
    const name = ctx.contextName();
    const context = name ? ctx.store.read().contexts[name] : undefined;
    let me: z.infer<typeof meSchema> | null = null;
    let problem: { message: string; exitCode: ExitCode } | null = null;
    if (!name || !context) problem = { message: 'not logged in: run `pa login --server URL`', exitCode: EXIT.NEEDS_LOGIN };
    else if (!context.accessToken && !context.refreshToken) problem = { message: 'not logged in: run `pa login`', exitCode: EXIT.NEEDS_LOGIN };
    else {
      try {
        const res = await ctx.session().request('GET', '/auth/me');
        me = meSchema.parse(res.body);
      } catch (err) {
        problem = describeFailure(err);
      }
    }
    // Re-read: a refresh during /auth/me moved the expiry times.
    const fresh = name ? ctx.store.read().contexts[name] : undefined;
    if (input.boolean('json')) {
      ctx.out(
        formatJson({
          context: name,
          server: fresh?.server ?? null,
          user: me ? { id: me.id, username: me.username, roles: me.roles } : (fresh?.user ?? null),
          loggedIn: me !== null,
          accessTokenExpiresAt: fresh?.accessTokenExpiresAt ?? null,
          sessionExpiresAt: fresh?.refreshTokenExpiresAt ?? null,
          error: problem?.message ?? null,
          tunnels,
        }),
      );
    } else {
      const lines: [string, string][] = [];
      lines.push(['Context', name ?? '(none)']);
      if (fresh) lines.push(['Control plane', fresh.server]);
      if (me) {
        lines.push(['User', `${me.username} (${me.id})`]);
        lines.push(['Roles', me.roles.length ? me.roles.join(', ') : '(none)']);
      } else if (fresh?.user) lines.push(['User', `${fresh.user.username} (${fresh.user.id})`]);
      if (fresh?.accessTokenExpiresAt && me) lines.push(['Access token', `expires ${formatRelative(new Date(fresh.accessTokenExpiresAt), now)} (refreshed automatically)`]);
      if (fresh?.refreshTokenExpiresAt && me) lines.push(['Session', `until ${formatTime(fresh.refreshTokenExpiresAt)} (${formatRelative(new Date(fresh.refreshTokenExpiresAt), now)}), then \`pa login\``]);
      if (problem) lines.push(['Status', problem.message]);
      const width = Math.max(...lines.map(([k]) => k.length)) + 1;
      ctx.out(lines.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`).join('\n') + '\n');
      if (tunnels.length) {
        ctx.out('\nActive tunnels:\n');
        ctx.out(
          formatTable(tunnels, [
            { header: 'connection', value: (t) => t.connection },
            { header: 'protocol', value: (t) => t.protocol },
            { header: 'local address', value: (t) => `${t.address}:${t.port}` },
            { header: 'pid', value: (t) => String(t.pid) },
            { header: 'context', value: (t) => t.context },
            { header: 'since', value: (t) => formatTime(t.startedAt) },
          ]),
        );
      } else {
        ctx.out('\nNo active tunnels.\n');
      }
    }
    if (problem) throw new SilentExit(problem.exitCode);
  },
};

