/**
 * Backends of the benchmarks, run in their own process (bench/child.ts servers):
 *
 *   sink    reads until the client ends, then answers the byte count (8 bytes, big-endian) and ends
 *   source  reads a 12-byte request (u64 max bytes, u32 max ms), streams that much, then ends
 *   echo    sends back what it reads
 *   http    node:http, keep-alive, a 1 KiB body for every request
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Handler } from './child';

export interface ServerPorts {
  sink: number;
  source: number;
  echo: number;
  http: number;
}

export const CHUNK = Buffer.alloc(256 * 1024, 0x61);
export const HTTP_BODY = Buffer.alloc(1024, 0x62);

const listen = async (s: Server | HttpServer): Promise<number> => {
  s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
};

/** Writes `CHUNK`s to `s` until `maxBytes` or `maxMs`, with backpressure, then ends it. */
export const stream = (s: Socket, maxBytes: number, maxMs: number): Promise<number> =>
  new Promise((resolve) => {
    const start = Date.now();
    let sent = 0;
    const pump = (): void => {
      while (sent < maxBytes && Date.now() - start < maxMs) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
      resolve(sent);
    };
    s.once('error', () => resolve(sent));
    pump();
  });

export const servers = (): Handler => {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.setNoDelay(true);
  };
  const sink = createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(n));
      s.end(b);
    });
  });
  const source = createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    let head = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      if (head.length < 12) return;
      s.off('data', onData);
      s.resume();
      void stream(s, Number(head.readBigUInt64BE(0)), head.readUInt32BE(8));
    };
    s.on('data', onData);
  });
  const echo = createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    s.pipe(s);
  });
  const http = createHttpServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': HTTP_BODY.length });
      res.end(HTTP_BODY);
    });
  });
  http.on('connection', (s: Socket) => track(s));
  let ports: ServerPorts | null = null;
  let stopped = false;
  return async (cmd) => {
    if (cmd === 'start') {
      ports ??= { sink: await listen(sink), source: await listen(source), echo: await listen(echo), http: await listen(http) };
      return ports;
    }
    if (cmd === 'connections') return sockets.size;
    if (cmd === 'stop') {
      if (stopped) return null;
      stopped = true;
      for (const s of sockets) s.destroy();
      await Promise.all([sink, source, echo, http].map((s) => new Promise((r) => s.close(r))));
      return null;
    }
    throw new Error(`servers: unknown command ${cmd}`);
  };
};
