import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';

/** A running {@link startLoopbackServer}. */
export interface LoopbackServer {
  port: number;
  /** Stops listening and destroys every connection it tracks. */
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 (a free port) that tracks its connections, and
 * any other socket `onConnection` hands to `track`, so `close` drops them all.
 */
export const startLoopbackServer = async (onConnection: (socket: Socket, track: (s: Socket) => void) => void): Promise<LoopbackServer> => {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = createServer((s) => {
    track(s);
    onConnection(s, track);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
};
