// The demo backends of `docker compose up`, standalone (node:http, node:net and
// the global fetch only): the same two services `pnpm start` runs in process
// (embedded/src/demo-backends.ts), listening on every interface of their
// container and reachable only through data-plane tunnels.
//   HTTP API   DEMO_HTTP_PORT (8081): /api/hello, /api/items (allowed by the demo
//              policy), /admin/… (not allowed), /healthz (container health)
//   TCP echo   DEMO_TCP_PORT (9000): greets, then echoes every byte back
//
// With PA_API_URL and PA_ADMIN_PASSWORD set it also registers them with the
// control plane, once and idempotently, as the embedded runner does: the
// connections demo-api and demo-echo (host DEMO_ADVERTISE_HOST), the role
// developer, and the policies demo-api-read and demo-echo. DEMO_SEED=false
// turns that off.
/* global fetch, AbortSignal */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { hostname } from 'node:os';

const env = process.env;
const HOST = env.DEMO_HOST || '0.0.0.0';
const HTTP_PORT = Number(env.DEMO_HTTP_PORT || 8081);
const TCP_PORT = Number(env.DEMO_TCP_PORT || 9000);
const log = (message, extra = {}) => process.stdout.write(`${JSON.stringify({ level: 'info', service: 'demo-backends', message, ...extra })}\n`);
const warn = (message, extra = {}) => process.stderr.write(`${JSON.stringify({ level: 'warn', service: 'demo-backends', message, ...extra })}\n`);

const items = [
  { id: 1, name: 'keyboard' },
  { id: 2, name: 'monitor' },
];

const http = createHttpServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://demo');
  const send = (status, body) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
  };
  if (url.pathname === '/healthz') return send(200, { status: 'ok' });
  if (url.pathname === '/api/hello') {
    return send(200, { message: 'hello through Port Authorizing', method: req.method, path: url.pathname, token: req.headers['x-demo-token'] ? 'present' : 'absent' });
  }
  if (url.pathname === '/api/items') return send(200, { items });
  if (url.pathname.startsWith('/admin')) return send(200, { message: 'admin area: the demo policy keeps users out of here' });
  return send(404, { error: 'not found', path: url.pathname });
});

const sockets = new Set();
const tcp = createTcpServer((s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
  s.on('error', () => undefined);
  s.write('demo echo service: type a line\n');
  s.pipe(s);
});

const listen = (server, port) =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => resolve(server.address().port));
  });

// --- optional registration with the control plane --------------------------

class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
  }
}

const seed = async (ports) => {
  const base = `${env.PA_API_URL.replace(/\/+$/, '')}/api/v1`;
  const host = env.DEMO_ADVERTISE_HOST || hostname();
  let token = '';
  const call = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    if (!res.ok) throw new HttpError(res.status, parsed);
    return parsed;
  };
  const exists = async (path) => {
    try {
      return await call('GET', path);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return null;
      throw err;
    }
  };

  const login = await call('POST', '/auth/login', { username: env.PA_ADMIN_USERNAME || 'admin', password: env.PA_ADMIN_PASSWORD });
  token = login.accessToken;

  const connections = [
    {
      name: 'demo-api',
      protocol: 'http',
      host,
      port: ports.http,
      description: 'Demo HTTP API (GET /api/** is allowed; /admin is not)',
      tags: { env: 'demo', kind: 'api' },
      credential: { kind: 'header', headerName: 'X-Demo-Token', value: randomBytes(16).toString('base64url') },
    },
    { name: 'demo-echo', protocol: 'tcp', host, port: ports.tcp, description: 'Demo TCP echo service', tags: { env: 'demo', kind: 'tcp' } },
  ];
  for (const c of connections) {
    const existing = await exists(`/connections/${c.name}`);
    if (existing) {
      if (existing.host !== c.host || existing.port !== c.port) await call('PATCH', `/connections/${existing.id}`, { host: c.host, port: c.port });
    } else {
      await call('POST', '/connections', c);
    }
  }
  if (!(await exists('/roles/developer'))) {
    await call('POST', '/roles', { name: 'developer', description: 'Demo role: reaches the demo connections under the demo policies', permissions: [] });
  }
  const policies = [
    {
      name: 'demo-api-read',
      description: 'GET anything under /api on the demo API',
      enabled: true,
      roles: ['developer', 'admin'],
      selector: { match: 'all', tags: { env: 'demo', kind: 'api' }, connections: [] },
      rules: [{ id: 'get-api', name: 'GET /api/**', effect: 'allow', type: 'http', methods: ['GET', 'HEAD'], paths: ['/api/**'] }],
    },
    {
      name: 'demo-echo',
      description: 'Raw TCP to the echo service',
      enabled: true,
      roles: ['developer', 'admin'],
      selector: { match: 'all', tags: { env: 'demo', kind: 'tcp' }, connections: [] },
      rules: [{ id: 'all', name: 'any bytes', effect: 'allow', type: 'all' }],
    },
  ];
  for (const p of policies) {
    if (!(await exists(`/policies/${p.name}`))) await call('POST', '/policies', p);
  }
  return connections.map((c) => c.name);
};

/** Retries while the control plane is unreachable or not ready; never retries a refused login (the throttle would lock admin out). */
const seedWithRetry = async (ports) => {
  const deadline = Date.now() + Number(env.DEMO_SEED_TIMEOUT_SECONDS || 180) * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const names = await seed(ports);
      log('Demo connections registered with the control plane.', { connections: names, api: env.PA_API_URL });
      return;
    } catch (err) {
      const retryable = !(err instanceof HttpError) || err.status >= 500 || err.status === 429;
      if (!retryable || Date.now() > deadline) {
        warn('Demo connections not registered; the backends keep running.', { error: err.message });
        return;
      }
      await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 5000)));
    }
  }
};

const main = async () => {
  const ports = { http: await listen(http, HTTP_PORT), tcp: await listen(tcp, TCP_PORT) };
  log('Demo backends listening.', { host: HOST, httpPort: ports.http, tcpPort: ports.tcp });
  const seedOn = !['false', '0', 'no'].includes(String(env.DEMO_SEED ?? '').toLowerCase());
  if (seedOn && env.PA_API_URL && env.PA_ADMIN_PASSWORD) void seedWithRetry(ports);
};

const stop = () => {
  for (const s of sockets) s.destroy();
  http.closeAllConnections();
  let open = 2;
  const done = () => --open === 0 && process.exit(0);
  http.close(done);
  tcp.close(done);
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

main().catch((err) => {
  process.stderr.write(`demo-backends: failed to start: ${err.message}\n`);
  process.exit(1);
});
