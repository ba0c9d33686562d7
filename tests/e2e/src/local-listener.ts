import { openTunnel } from '@pa/tunnel';
import { startLoopbackServer, type LoopbackServer } from './loopback-server';

/** What `pa connect` does, in a few lines: a loopback listener that opens one tunnel per connection. */
export const localListener = (tunnelUrl: string, grant: string): Promise<LoopbackServer> =>
  startLoopbackServer((local, track) => {
    local.on('error', () => undefined);
    local.pause();
    openTunnel({ url: tunnelUrl, grant }).then(
      ({ socket }) => {
        track(socket);
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
