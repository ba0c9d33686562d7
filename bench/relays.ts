/**
 * Two relays of the benchmarks, each run in its own process:
 *
 * - pipeRelay: a plain Node.js TCP relay (`client.pipe(upstream).pipe(client)`),
 *   the reference for what one hop costs in Node.js with nothing else done.
 * - connectListener: what `pa connect` does on a user's machine (see
 *   packages/cli/src/tunnel/local-listener.ts): a loopback listener that holds
 *   each accepted connection paused, opens a tunnel for it with the grant, then
 *   relays both ways with the same relaySockets the CLI uses. Programs that
 *   cannot speak the tunnel protocol (wrk, pgbench) reach the node through it.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { openTunnel, relaySockets } from '../packages/tunnel/src/index';
import type { Handler } from './child';

const listen = async (s: Server): Promise<number> => {
  s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
};

/** Pipes `a` and `b` both ways with half-close; when one goes away the other is closed. */
const splice = (a: Socket, b: Socket): void => {
  a.setNoDelay(true);
  b.setNoDelay(true);
  a.on('error', () => a.destroy());
  b.on('error', () => b.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
  a.pipe(b);
  b.pipe(a);
};

export const pipeRelay = (): Handler => {
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  let stopped = false;
  return async (cmd, arg) => {
    if (cmd === 'start') {
      const target = (arg as { targetPort: number }).targetPort;
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
        const upstream = connect({ port: target, host: '127.0.0.1', allowHalfOpen: true });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
        }
        splice(client, upstream);
        client.resume();
      });
      servers.push(server);
      return { port: await listen(server) };
    }
    if (cmd === 'stop') {
      if (stopped) return null;
      stopped = true;
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      return null;
    }
    throw new Error(`relay: unknown command ${cmd}`);
  };
};

export interface ConnectStats {
  opened: number;
  failed: number;
  lastError: string | null;
}

export const connectListener = (): Handler => {
  const sockets = new Set<Socket>();
  const servers = new Map<number, { server: Server; stats: ConnectStats }>();
  let stopped = false;
  return async (cmd, arg) => {
    if (cmd === 'start') {
      const { tunnelUrl, grant } = arg as { tunnelUrl: string; grant: string };
      const stats: ConnectStats = { opened: 0, failed: 0, lastError: null };
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (local) => {
        sockets.add(local);
        local.on('close', () => sockets.delete(local));
        local.on('error', () => local.destroy());
        openTunnel({ url: tunnelUrl, grant, clientLabel: 'bench' }).then(
          ({ socket }) => {
            stats.opened += 1;
            if (local.destroyed) {
              socket.destroy();
              return;
            }
            sockets.add(socket);
            socket.on('close', () => sockets.delete(socket));
            local.setNoDelay(true);
            const r = relaySockets(local, socket);
            r.a.on('error', () => r.a.destroy());
            r.b.on('error', () => r.b.destroy());
            r.a.on('close', () => r.b.destroy());
            r.b.on('close', () => r.a.destroy());
          },
          (err: unknown) => {
            stats.failed += 1;
            stats.lastError = err instanceof Error ? err.message : String(err);
            local.destroy();
          },
        );
      });
      const port = await listen(server);
      servers.set(port, { server, stats });
      return { port };
    }
    if (cmd === 'stats') {
      const port = (arg as { port: number }).port;
      return servers.get(port)?.stats ?? null;
    }
    if (cmd === 'stop') {
      if (stopped) return null;
      stopped = true;
      for (const s of sockets) s.destroy();
      await Promise.all([...servers.values()].map(({ server }) => new Promise((r) => server.close(r))));
      return null;
    }
    throw new Error(`connect: unknown command ${cmd}`);
  };
};
