import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { startLoopbackServer, type LoopbackServer } from './loopback-server';

/** A TCP echo service on 127.0.0.1 for the tunnels to reach; `close` also drops its live connections. */
export const startEchoServer = (): Promise<LoopbackServer> =>
  startLoopbackServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });

/** Writes `text` on an echoing connection and reads as many bytes back. */
export const exchange = async (socket: Socket, text: string): Promise<string> => {
  socket.write(text);
  let got = '';
  while (got.length < text.length) got += String((await once(socket, 'data'))[0]);
  return got;
};

/** Sends `text` through a fresh connection to 127.0.0.1:`port` and returns what came back. */
export const roundTrip = async (port: number, text: string): Promise<string> => {
  const s = connect({ port, host: '127.0.0.1' });
  await once(s, 'connect');
  try {
    return await exchange(s, text);
  } finally {
    s.destroy();
  }
};
