import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A connected pair of real TCP sockets on loopback: `client` is what a user's
 * program holds, `server` is what a handler receives (as after a tunnel's 101).
 */
export const socketPair = async (): Promise<{ client: Socket; server: Socket; close(): void }> => {
  const srv = createServer({ allowHalfOpen: true });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const accepted = once(srv, 'connection') as Promise<[Socket]>;
  const client = connect({ port: (srv.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [server] = await accepted;
  await once(client, 'connect').catch(() => undefined);
  srv.close();
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
};

/** A TCP server on 127.0.0.1:0 that runs `onConnection` for each socket; `close()` destroys them all. */
export const tcpServer = async (onConnection: (s: Socket) => void): Promise<{ port: number; server: Server; close(): Promise<void> }> => {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
};

/** Reads from `s` until `n` bytes arrived (or it ends), without sleeping. */
export const readBytes = async (s: Socket, n: number): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  let got = 0;
  while (got < n) {
    const chunk = s.read() as Buffer | null;
    if (chunk) {
      chunks.push(chunk);
      got += chunk.length;
      continue;
    }
    if (s.readableEnded || s.destroyed) break;
    await Promise.race([once(s, 'readable'), once(s, 'end'), once(s, 'close')]);
  }
  return Buffer.concat(chunks);
};
