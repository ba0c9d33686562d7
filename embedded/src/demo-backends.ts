import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';

/**
 * Two small backends the walkthrough reaches through tunnels: an HTTP API
 * (`/api/…` allowed by the demo policy, `/admin/…` not) that echoes what it
 * received, and a TCP echo service. Both listen on loopback only.
 */
export interface DemoBackends {
  httpPort: number;
  tcpPort: number;
  close(): Promise<void>;
}

export const startDemoBackends = async (): Promise<DemoBackends> => {
  const items = [
    { id: 1, name: 'keyboard' },
    { id: 2, name: 'monitor' },
  ];
  const http: HttpServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://demo');
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
    };
    if (url.pathname === '/api/hello') return send(200, { message: 'hello through Port Authorizing', method: req.method, path: url.pathname, token: req.headers['x-demo-token'] ? 'present' : 'absent' });
    if (url.pathname === '/api/items') return send(200, { items });
    if (url.pathname.startsWith('/admin')) return send(200, { message: 'admin area: the demo policy keeps users out of here' });
    return send(404, { error: 'not found', path: url.pathname });
  });
  const sockets = new Set<Socket>();
  const tcp: TcpServer = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.write('demo echo service: type a line\n');
    s.pipe(s);
  });
  http.listen(0, '127.0.0.1');
  tcp.listen(0, '127.0.0.1');
  await Promise.all([once(http, 'listening'), once(tcp, 'listening')]);
  return {
    httpPort: (http.address() as AddressInfo).port,
    tcpPort: (tcp.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      http.closeAllConnections();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => tcp.close(r))]);
    },
  };
};
