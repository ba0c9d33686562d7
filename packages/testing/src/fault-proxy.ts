import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of a server (Redis, PostgreSQL…) that a test controls: `freeze`
 * holds every byte in both directions (Redis "hangs": connected, silent),
 * `freezeReplies` holds only what the server sends back (requests still
 * arrive and are acted on, their answers wait: a reply lost on the way),
 * `thaw` delivers what was held, `cut` drops every connection and stops
 * listening (Redis "down": connection refused), `restore` listens again on the
 * same port. Supports only what these tests need; buffers are small by nature.
 */
export interface FaultProxy {
  readonly port: number;
  readonly url: string;
  freeze(): void;
  freezeReplies(): void;
  thaw(): void;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
  held: Array<{ to: Socket; data: Buffer }>;
}

/** Starts a relay on 127.0.0.1 (port 0) to the Redis at `targetUrl`. */
export const startFaultProxy = async (targetUrl: string): Promise<FaultProxy> => {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 6379);
  const pipes = new Set<Pipe>();
  let isFrozen = false;
  let repliesFrozen = false;

  const onConnection = (client: Socket): void => {
    const upstream = connect({ host: target.hostname, port: targetPort });
    const pipe: Pipe = { client, upstream, held: [] };
    pipes.add(pipe);
    const forward = (to: Socket) => (data: Buffer) => {
      if (isFrozen || (repliesFrozen && to === client)) pipe.held.push({ to, data });
      else to.write(data);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pipes.delete(pipe);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  };

  let server: Server | null = null;
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        const addr = s.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  const stop = async (): Promise<void> => {
    for (const pipe of pipes) {
      pipe.client.destroy();
      pipe.upstream.destroy();
    }
    pipes.clear();
    const s = server;
    server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  const port = await listen(0);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    freeze: () => {
      isFrozen = true;
    },
    freezeReplies: () => {
      repliesFrozen = true;
    },
    thaw: () => {
      isFrozen = false;
      repliesFrozen = false;
      for (const pipe of pipes) for (const { to, data } of pipe.held.splice(0)) to.write(data);
    },
    cut: stop,
    restore: async () => {
      await listen(port);
    },
    close: stop,
  };
};
