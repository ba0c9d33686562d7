import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { openTunnel } from '@pa/tunnel';

/** What `pa connect` does, in a few lines: a loopback listener that opens one tunnel per connection. */
export const localListener = async (tunnelUrl: string, grant: string): Promise<{ port: number; close(): Promise<void> }> => {
  const sockets = new Set<Socket>();
  const server: Server = createServer((local) => {
    sockets.add(local);
    local.on('close', () => sockets.delete(local));
    local.on('error', () => undefined);
    local.pause();
    openTunnel({ url: tunnelUrl, grant }).then(
      ({ socket }) => {
        sockets.add(socket);
        socket.on('error', () => local.destroy());
        local.on('error', () => socket.destroy());
        socket.on('close', () => local.destroy());
        local.on('close', () => socket.destroy());
        local.pipe(socket);
        socket.pipe(local);
        local.resume();
      },
      () => local.destroy(),
    );
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
