/**
 * Requests/s through the HTTP handler against the same backend direct, both
 * with keep-alive: `npx tsx services/data-plane/src/protocols/http/http-bench.ts
 * [--connections 64] [--seconds 3] [--rounds 3] [--size 1024] [--audit spool|noop]`.
 *
 * Three processes, so no two roles share an event loop: the backend (node:http,
 * fixed body of `--size` bytes) and the load generator (raw keep-alive request
 * loops, one per connection, the cheapest client there is) are children; this
 * process runs the handler behind a small tunnel-like listener — each load
 * connection opens with an HTTP Upgrade answered `101`, then carries plain
 * HTTP/1.1, as a real tunnel does after its handshake. The session context is
 * the tests' fixture: a real signed grant, a policy compiled by the real engine
 * and, with `--audit spool` (the default), the real on-disk audit spool
 * (fsync'd group commits); `--audit noop` shows what the audit costs.
 *
 * Direct and proxied runs alternate for `--rounds` rounds and the medians are
 * reported, so a change in machine load between runs skews the ratio less.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { AppError, newId } from '@pa/kit';
import { MemoryRateLimits } from '@pa/state';
import type { SessionContext } from '../handler';
import { createSessionFixture } from '../../testing/session-fixture';
import { createHttpHandler } from './http-handler';

interface BenchArgs {
  role: 'main' | 'backend' | 'load';
  connections: number;
  seconds: number;
  rounds: number;
  size: number;
  port: number;
  upgrade: boolean;
  audit: 'spool' | 'noop';
}

const parseArgs = (argv: readonly string[]): BenchArgs => {
  const get = (name: string, fallback: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : fallback;
  };
  return {
    role: get('role', 'main') as BenchArgs['role'],
    connections: Number(get('connections', '64')),
    seconds: Number(get('seconds', '3')),
    rounds: Number(get('rounds', '3')),
    size: Number(get('size', '1024')),
    port: Number(get('port', '0')),
    upgrade: argv.includes('--upgrade'),
    audit: get('audit', 'spool') === 'noop' ? 'noop' : 'spool',
  };
};

const send = (msg: unknown): void => {
  process.send?.(msg);
};

/** Backend role: a keep-alive node:http server answering every request with `size` bytes. */
const runBackend = async (a: BenchArgs): Promise<void> => {
  const body = Buffer.alloc(a.size, 'x');
  const server = createHttpServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  process.on('message', () => send({ cpu: process.cpuUsage() }));
  send({ port: (server.address() as AddressInfo).port });
};

/** Load role: `connections` raw keep-alive loops (request, wait for the whole response, repeat). */
const runLoad = async (a: BenchArgs): Promise<void> => {
  const request = Buffer.from('GET /api/bench?n=1 HTTP/1.1\r\nHost: bench.local\r\nAccept: */*\r\n\r\n');
  const handshake = 'GET /v1/tunnel HTTP/1.1\r\nHost: bench.local\r\nConnection: Upgrade\r\nUpgrade: pa-tunnel/1\r\n\r\n';
  let counting = false;
  let done = 0;
  let all = 0;
  let errors = 0;
  let latencySum = 0;
  const sockets: Socket[] = [];
  const loop = (): Promise<void> =>
    new Promise((resolve) => {
      const s = connect({ port: a.port, host: '127.0.0.1' });
      s.setNoDelay(true);
      sockets.push(s);
      let buf: Buffer = Buffer.alloc(0);
      let upgraded = !a.upgrade;
      let sentAt = 0;
      const fire = (): void => {
        sentAt = performance.now();
        s.write(request);
      };
      s.on('connect', () => {
        if (a.upgrade) s.write(handshake);
        else fire();
        resolve();
      });
      s.on('data', (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          if (!upgraded) {
            upgraded = true;
            buf = buf.subarray(end + 4);
            fire();
            continue;
          }
          const head = buf.subarray(0, end).toString('latin1');
          const m = /content-length:\s*(\d+)/i.exec(head);
          const total = end + 4 + (m ? Number(m[1]) : 0);
          if (buf.length < total) return;
          if (!head.startsWith('HTTP/1.1 200')) errors += 1;
          buf = buf.subarray(total);
          all += 1;
          if (counting) {
            done += 1;
            latencySum += performance.now() - sentAt;
          }
          fire();
        }
      });
      s.on('error', () => {
        errors += 1;
      });
    });
  await Promise.all(Array.from({ length: a.connections }, loop));
  await new Promise((r) => setTimeout(r, 1_000)); // warm-up: JIT, pools, spool segments
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, a.seconds * 1_000));
  counting = false;
  const elapsed = (performance.now() - t0) / 1_000;
  for (const s of sockets) s.destroy();
  const cpu = process.cpuUsage();
  send({ rps: done / elapsed, requests: done, all, errors, meanLatencyMs: done > 0 ? latencySum / done : 0, cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, all) });
};

interface LoadResult {
  rps: number;
  requests: number;
  /** Responses including the warm-up. */
  all: number;
  /** The load generator's own CPU per response. */
  cpuUsPerRequest: number;
  errors: number;
  meanLatencyMs: number;
}

const child = async (args: string[]): Promise<{ proc: ChildProcess; first: unknown }> => {
  const proc = fork(__filename, args, { execArgv: process.execArgv, stdio: 'inherit' });
  const [first] = (await once(proc, 'message')) as [unknown];
  return { proc, first };
};

const measure = async (port: number, a: BenchArgs, upgrade: boolean): Promise<LoadResult> => {
  const { proc, first } = await child(['--role', 'load', '--port', String(port), '--connections', String(a.connections), '--seconds', String(a.seconds), ...(upgrade ? ['--upgrade'] : [])]);
  proc.kill();
  return first as LoadResult;
};

/** Main role: backend child, the handler here behind a tunnel-like listener, then direct vs proxied. */
const runMain = async (a: BenchArgs): Promise<void> => {
  const backend = await child(['--role', 'backend', '--size', String(a.size)]);
  const backendPort = (backend.first as { port: number }).port;
  const f = await createSessionFixture({
    protocol: 'http',
    host: '127.0.0.1',
    port: backendPort,
    credentials: { kind: 'header', headerName: 'Authorization', value: 'Bearer bench-backend-key' },
    policies: [
      {
        name: 'bench',
        rules: [
          { id: 'no-admin', effect: 'deny', type: 'http', paths: ['/admin/**'] },
          { id: 'api', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/api/**'] },
        ],
      },
    ],
  });
  // Rate limits as the node runs them (in-process fallback), with windows wide enough not to refuse the bench.
  const limits = new MemoryRateLimits({ windows: { requestPerUser: { points: 10_000_000, durationSeconds: 1 }, requestPerConnection: { points: 10_000_000, durationSeconds: 1 } } });
  const noopAudit: SessionContext['audit'] = { canAccept: () => true, decision: () => Promise.resolve(), outcome: () => Promise.resolve(true) };
  // The spool is shipped (acknowledged) as it fills, as a node's shipper does.
  const shipped = f.shipContinuously();
  const handler = createHttpHandler();
  const sessions = new Set<Promise<unknown>>();
  const listener = createHttpServer((_req, res) => res.writeHead(426).end());
  listener.on('upgrade', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: pa-tunnel/1\r\nConnection: Upgrade\r\n\r\n');
    socket.setNoDelay(true);
    if (head.length > 0) socket.unshift(head);
    const ctx: SessionContext = {
      ...f.ctx,
      tunnelId: newId('tun'),
      signal: new AbortController().signal,
      consumeRequest: () => limits.consumeRequest(f.grant.user.id, f.grant.connection.id),
      ...(a.audit === 'noop' ? { audit: noopAudit } : {}),
    };
    handler
      .setup(socket, ctx)
      .then((session) => {
        const p = session.run();
        sessions.add(p);
        void p.finally(() => sessions.delete(p));
      })
      .catch((err: unknown) => handler.sendError(socket, err instanceof AppError ? err : new AppError('INTERNAL')));
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const proxyPort = (listener.address() as AddressInfo).port;

  // Let the engine's start-up warm-up (parser pool) finish before anything is measured.
  await new Promise((r) => setTimeout(r, 2_000));
  const fmt = (n: number): string => n.toFixed(0).padStart(8);
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  process.stdout.write(
    `http-bench: ${a.connections} keep-alive connections, ${a.size}-byte responses, ${a.rounds} rounds of ${a.seconds}s each way after 1s warm-up, ${cpus().length} CPUs, node ${process.version}\n` +
      `audit: ${a.audit === 'spool' ? "on-disk spool (decision awaited, fsync'd per group; outcome fired)" : 'no-op'}\n`,
  );
  const directs: LoadResult[] = [];
  const proxyCpuUs: number[] = [];
  const backendCpuUs: number[] = [];
  const loadCpuUs: number[] = [];
  const backendCpu = async (): Promise<number> => {
    const reply = once(backend.proc, 'message') as Promise<[{ cpu: NodeJS.CpuUsage }]>;
    backend.proc.send('cpu');
    const [{ cpu }] = await reply;
    return cpu.user + cpu.system;
  };
  const proxieds: LoadResult[] = [];
  for (let round = 1; round <= a.rounds; round += 1) {
    const b0 = await backendCpu();
    const direct = await measure(backendPort, a, false);
    const b1 = await backendCpu();
    const cpu0 = process.cpuUsage();
    const proxied = await measure(proxyPort, a, true);
    const cpu = process.cpuUsage(cpu0);
    proxyCpuUs.push((cpu.user + cpu.system) / Math.max(1, proxied.all));
    backendCpuUs.push((b1 - b0) / Math.max(1, direct.all));
    loadCpuUs.push(direct.cpuUsPerRequest);
    directs.push(direct);
    proxieds.push(proxied);
    process.stdout.write(
      `round ${round}: direct ${fmt(direct.rps)} req/s (${direct.meanLatencyMs.toFixed(2)} ms, ${direct.errors} errors)   proxied ${fmt(proxied.rps)} req/s (${proxied.meanLatencyMs.toFixed(2)} ms, ${proxied.errors} errors)   ${((proxied.rps / direct.rps) * 100).toFixed(1)}%   handler CPU ${(proxyCpuUs[proxyCpuUs.length - 1] ?? 0).toFixed(0)} µs/req\n`,
    );
  }
  const events = a.audit === 'spool' ? shipped() + (await f.events()).length : 0;
  process.stdout.write(
    `median:  direct ${fmt(median(directs.map((r) => r.rps)))} req/s   proxied ${fmt(median(proxieds.map((r) => r.rps)))} req/s   ratio ${(median(directs.map((d, i) => (proxieds[i] as LoadResult).rps / d.rps)) * 100).toFixed(1)}% of direct` +
      `${a.audit === 'spool' ? `   (${events} audit events spooled and shipped)` : ''}\n` +
      `CPU per request (medians): handler ${median(proxyCpuUs).toFixed(0)} µs, backend ${median(backendCpuUs).toFixed(0)} µs, load generator ${median(loadCpuUs).toFixed(0)} µs\n`,
  );

  listener.close();
  await Promise.race([Promise.allSettled([...sessions]), new Promise((r) => setTimeout(r, 2_000))]);
  await handler.close();
  await f.close();
  backend.proc.kill();
};

const args = parseArgs(process.argv.slice(2));
const roles: Record<BenchArgs['role'], (a: BenchArgs) => Promise<void>> = { main: runMain, backend: runBackend, load: runLoad };
roles[args.role](args).catch((err: unknown) => {
  process.stderr.write(`http-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
