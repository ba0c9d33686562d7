import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@pa/kit';
import type { SessionContext } from '../handler';
import { createSessionFixture, type SessionFixture, type SessionFixtureOptions } from '../../testing/session-fixture';
import { socketPair, tcpServer } from '../../testing/socket-pair';
import { createHttpHandler, type HttpProtocolHandler } from './http-handler';
import { openSession, startBackend, waitUntil, wireRequest, WireReader, type TestBackend } from './http-test-support';

const POLICIES: SessionFixtureOptions['policies'] = [
  {
    name: 'api',
    rules: [
      { id: 'no-admin', effect: 'deny', type: 'http', paths: ['/admin/**'] },
      { id: 'api', effect: 'allow', type: 'http', methods: ['GET', 'HEAD', 'POST', 'PUT'], paths: ['/api/**'] },
      { id: 'ws', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/ws'] },
    ],
  },
];

const SECRET = 'backend-api-key-7f3a9c';
const MiB = 1024 * 1024;

/** A backend that reads every request and never answers; `reached` resolves when the first one arrives. */
const startHangingBackend = async () => {
  let arrived: () => void = () => undefined;
  const reached = new Promise<void>((r) => (arrived = r));
  const backend = await startBackend((req) => {
    req.resume();
    arrived();
    return true;
  });
  return { ...backend, reached };
};

/** A backend that answers 413 to `/api/too-big` at once, before reading the request's body. */
const startEarlyAnsweringBackend = () =>
  startBackend((req, res) => {
    if (req.url !== '/api/too-big') return false;
    res.writeHead(413, { 'Content-Length': '0' }).end();
    return true;
  });

describe('http handler over real sockets', () => {
  let handler: HttpProtocolHandler;
  let backend: TestBackend;
  const fixtures: SessionFixture[] = [];
  const closers: Array<() => void> = [];

  const fixture = async (extra: Partial<SessionFixtureOptions> = {}, port = backend.port): Promise<SessionFixture> => {
    const f = await createSessionFixture({ protocol: 'http', host: '127.0.0.1', port, policies: POLICIES, ...extra });
    fixtures.push(f);
    return f;
  };
  const open = async (ctx: SessionContext, withReader = true) => {
    const s = await openSession(handler, ctx, withReader);
    closers.push(s.close);
    return s;
  };
  const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString()) as Record<string, unknown>;

  beforeAll(async () => {
    handler = createHttpHandler({ upstream: { headersTimeoutMs: 2_000 } });
    backend = await startBackend();
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) c();
    for (const f of fixtures.splice(0)) await f.close();
    backend.seen.length = 0;
  });
  afterAll(async () => {
    await handler.close();
    await backend.close();
  });

  it('forwards an allowed GET with the normalised target, and audits the decision and the outcome', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/./v1/%7Eu?q=a%20b&x=1'));
    const r = await s.reader.response();
    expect(r.status).toBe(200);
    expect(json(r.body)).toEqual({ method: 'GET', url: '/api/v1/~u?q=a%20b&x=1' });
    expect(backend.seen[0]?.url).toBe('/api/v1/~u?q=a%20b&x=1');
    s.client.end();
    const result = await s.done;
    expect(result).toMatchObject({ reason: 'client_closed', requests: 1 });
    expect(result.bytesFromClient).toBe(Buffer.byteLength(wireRequest('GET', '/api/./v1/%7Eu?q=a%20b&x=1')));
    expect(result.bytesToClient).toBe(Buffer.byteLength(r.head) + r.body.length);
    const events = await f.events();
    const decision = events.find((e) => e.action === 'http.request');
    expect(decision).toMatchObject({ outcome: 'allowed', protocol: 'http', details: { method: 'GET', target: '/api/v1/~u?q=a%20b&x=1', request: 1, rule: { ruleId: 'api', policyName: 'api' } } });
    const outcome = events.find((e) => e.action === 'http.response');
    expect(outcome).toMatchObject({ outcome: 'success', details: { status: 200, bytesIn: 0, bytesOut: r.body.length, target: '/api/v1/~u?q=a%20b&x=1' } });
    expect(typeof outcome?.details.durationMs).toBe('number');
    expect(events.indexOf(decision!)).toBeLessThan(events.indexOf(outcome!));
  });

  it('denies by policy with a 403 problem, never reaches the backend, and keeps the connection usable', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/admin/users'));
    const denied = await s.reader.response();
    expect(denied.status).toBe(403);
    expect(denied.headers['content-type']).toEqual(['application/problem+json']);
    expect(json(denied.body)).toMatchObject({ status: 403, code: 'POLICY_DENIED' });
    expect(String(json(denied.body).detail)).toContain('no-admin');
    expect(backend.seen).toHaveLength(0);
    s.client.write(wireRequest('GET', '/api/ok'));
    const ok = await s.reader.response();
    expect(ok.status).toBe(200);
    expect(backend.seen.map((x) => x.url)).toEqual(['/api/ok']);
    const events = await f.events();
    expect(events.filter((e) => e.action === 'http.request').map((e) => e.outcome)).toEqual(['denied', 'allowed']);
    expect(events[0]?.details).toMatchObject({ target: '/admin/users', rule: { ruleId: 'no-admin' } });
  });

  it('keeps the connection in step after a denied request with a body, and after a backend that answers before reading the body', async () => {
    const early = await startEarlyAnsweringBackend();
    try {
      const f = await fixture({}, early.port);
      const s = await open(f.ctx);
      // The body of a denied request must be read as body, never parsed as the next request.
      const smuggled = wireRequest('GET', '/admin/x');
      s.client.write(wireRequest('POST', '/admin/upload', [['Content-Length', String(smuggled.length)]], smuggled));
      expect((await s.reader.response()).status).toBe(403);
      s.client.write(wireRequest('GET', '/api/next'));
      expect((await s.reader.response()).status).toBe(200);
      const big = Buffer.alloc(512 * 1024, 'a');
      s.client.write(wireRequest('POST', '/api/too-big', [['Content-Length', String(big.length)]]));
      s.client.write(big);
      expect((await s.reader.response()).status).toBe(413);
      s.client.write(wireRequest('GET', '/api/after'));
      expect((await s.reader.response()).status).toBe(200);
      expect(early.seen.map((x) => x.url)).toEqual(['/api/next', '/api/too-big', '/api/after']);
      expect((await f.events()).filter((e) => e.action === 'http.request').map((e) => e.outcome)).toEqual(['denied', 'allowed', 'allowed', 'allowed']);
    } finally {
      await early.close();
    }
  });

  it('serves an HTTP/1.0 client and closes after its response', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write('GET /api/old HTTP/1.0\r\n\r\n');
    const r = await s.reader.response();
    expect(r.status).toBe(200);
    expect(json(r.body)).toEqual({ method: 'GET', url: '/api/old' });
    expect((await s.done).reason).toBe('client_closed');
  });

  it('judges the target after normalisation: /api/../admin is /admin (denied), a default-deny path too', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/../admin/users') + wireRequest('GET', '/api/%2e%2e/admin/x') + wireRequest('GET', '/other'));
    const a = await s.reader.response();
    const b = await s.reader.response();
    const c = await s.reader.response();
    expect([a.status, b.status, c.status]).toEqual([403, 403, 403]);
    expect(json(c.body).detail).toMatch(/no rule allows it/);
    expect(backend.seen).toHaveLength(0);
  });

  it('refuses an encoded slash, an absolute-form target, a duplicate Host and a header with "_" (400, audited)', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/a%2Fb'));
    s.client.write(wireRequest('GET', 'http://evil.example/api/x'));
    s.client.write(`GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`);
    s.client.write(wireRequest('GET', '/api/x', [['X_User', 'admin']]));
    s.client.write(wireRequest('GET', '/api/still-works'));
    const statuses: number[] = [];
    const details: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      const r = await s.reader.response();
      statuses.push(r.status);
      expect(json(r.body).code).toBe('HTTP_PROTOCOL_VIOLATION');
      details.push(String(json(r.body).detail));
    }
    expect(statuses).toEqual([400, 400, 400, 400]);
    expect(details[0]).toMatch(/encoded/i);
    expect(details[1]).toMatch(/origin-form/);
    expect(details[2]).toMatch(/duplicate Host/);
    expect(details[3]).toMatch(/_/);
    expect((await s.reader.response()).status).toBe(200);
    expect(backend.seen.map((x) => x.url)).toEqual(['/api/still-works']);
    const denied = (await f.events()).filter((e) => e.outcome === 'denied');
    expect(denied).toHaveLength(4);
    expect(denied[1]?.details).toMatchObject({ target: null, rawTarget: 'http://evil.example/api/x' });
  });

  it('refuses CONNECT with a problem and closes', async () => {
    const f = await fixture();
    const s = await open(f.ctx);
    s.client.write('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    const r = await s.reader.response();
    expect(r.status).toBe(400);
    expect(json(r.body).code).toBe('HTTP_PROTOCOL_VIOLATION');
    await s.done;
    expect(backend.seen).toHaveLength(0);
  });

  it('strips hop-by-hop, proxy-owned and credential headers sent by the client, then injects its own', async () => {
    const f = await fixture({ credentials: { kind: 'header', headerName: 'X-Api-Key', value: SECRET } });
    const s = await open(f.ctx);
    s.client.write(
      wireRequest('GET', '/api/h', [
        ['X-Api-Key', 'forged'],
        ['x-api-key', 'forged-again'],
        ['X-PA-User', 'admin'],
        ['X-Pa-Request-Id', 'mine'],
        ['Connection', 'keep-alive, X-Drop-Me'],
        ['X-Drop-Me', '1'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Authorization', 'Basic eA=='],
        ['Proxy-Connection', 'keep-alive'],
        ['TE', 'trailers'],
        ['Upgrade', 'h2c'],
        ['X-Forwarded-For', '6.6.6.6'],
        ['Forwarded', 'for=6.6.6.6'],
        ['X-Real-IP', '6.6.6.6'],
        ['Accept', 'application/json'],
        ['X-Custom', 'kept'],
      ]),
    );
    expect((await s.reader.response()).status).toBe(200);
    const seen = backend.seen[0]!;
    expect(seen.headers['x-api-key']).toBe(SECRET);
    expect(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-api-key')).toHaveLength(1);
    expect(seen.headers.host).toBe(`127.0.0.1:${backend.port}`);
    expect(seen.headers['x-pa-request-id']).toBe(`${f.ctx.tunnelId}.1`);
    for (const gone of ['x-pa-user', 'x-drop-me', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'upgrade', 'x-forwarded-for', 'forwarded', 'x-real-ip']) {
      expect(seen.headers[gone]).toBeUndefined();
    }
    expect(seen.headers.accept).toBe('application/json');
    expect(seen.headers['x-custom']).toBe('kept');
    // The credential is never written to the audit trail or the logs.
    s.client.end();
    await s.done;
    const events = await f.events();
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(events)).not.toContain(SECRET);
    expect(f.logs.join('\n')).not.toContain(SECRET);
  });

  it('judges header conditions on the headers that reach the backend', async () => {
    const f = await fixture({ policies: [{ name: 'hdr', rules: [{ id: 'json-only', effect: 'allow', type: 'http', paths: ['/api/**'], headers: { accept: '^application/json$' } }] }] });
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/x', [['Accept', 'application/json']]) + wireRequest('GET', '/api/x', [['Accept', 'text/html']]));
    expect((await s.reader.response()).status).toBe(200);
    expect((await s.reader.response()).status).toBe(403);
    // A header the client marks hop-by-hop does not reach the backend, so it cannot satisfy the condition.
    s.client.write(wireRequest('GET', '/api/x', [['Accept', 'application/json'], ['Connection', 'accept']]));
    expect((await s.reader.response()).status).toBe(403);
  });

  it('relays chunked request and response bodies, and HEAD and Expect: 100-continue', async () => {
    let firstChunk: (() => void) | null = null;
    const chunky = await startBackend((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Length': '42', 'X-Head': '1' }).end();
        return true;
      }
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => {
        parts.push(d);
        firstChunk?.();
      });
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Req-TE': String(req.headers['transfer-encoding']) });
        res.write('got:');
        res.write(Buffer.concat(parts));
        res.end(':done');
      });
      return true;
    });
    try {
      const f = await fixture({}, chunky.port);
      const s = await open(f.ctx);
      // The second chunk is sent only once the backend has the first: the body is streamed, not collected.
      const gotFirst = new Promise<void>((r) => (firstChunk = r));
      s.client.write('POST /api/upload?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      await gotFirst;
      firstChunk = null;
      s.client.write('6\r\n world\r\n0\r\n\r\n');
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(r.headers['transfer-encoding']).toEqual(['chunked']);
      expect(r.headers['x-req-te']).toEqual(['chunked']);
      expect(r.body.toString()).toBe('got:hello world:done');
      expect(chunky.seen[0]?.url).toBe('/api/upload?x=1');
      s.client.write(wireRequest('HEAD', '/api/h'));
      const h = await s.reader.response('HEAD');
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toEqual(['42']);
      s.client.write(wireRequest('POST', '/api/e', [['Expect', '100-continue'], ['Content-Length', '3']]));
      const cont = await s.reader.response();
      expect(cont.status).toBe(100);
      s.client.write('abc');
      const e = await s.reader.response();
      expect(e.body.toString()).toBe('got:abc:done');
      expect(chunky.seen[2]?.headers.expect).toBeUndefined();
      // A denied Expect request gets its answer without 100 Continue.
      s.client.write(wireRequest('POST', '/admin/e', [['Expect', '100-continue'], ['Content-Length', '3']]));
      expect((await s.reader.response()).status).toBe(403);
      const events = await f.events();
      expect(events.find((x) => x.action === 'http.response')?.details).toMatchObject({ bytesIn: 11, bytesOut: 'got:hello world:done'.length });
    } finally {
      await chunky.close();
    }
  });

  it('answers pipelined requests in order, one at a time', async () => {
    let active = 0;
    let maxActive = 0;
    const slow = await startBackend((req, res) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      const delay = req.url === '/api/1' ? 30 : 0;
      setTimeout(() => {
        active -= 1;
        res.writeHead(200, { 'Content-Length': String(Buffer.byteLength(req.url ?? '')) }).end(req.url);
      }, delay);
      return true;
    });
    try {
      const f = await fixture({}, slow.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/1') + wireRequest('GET', '/admin/2') + wireRequest('GET', '/api/3') + wireRequest('POST', '/api/4', [['Content-Length', '2']], 'hi') + wireRequest('GET', '/api/5'));
      const got: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const r = await s.reader.response();
        got.push(`${r.status}${r.status === 200 ? r.body.toString() : ''}`);
      }
      expect(got).toEqual(['200/api/1', '403', '200/api/3', '200/api/4', '200/api/5']);
      expect(maxActive).toBe(1);
      s.client.end();
      expect((await s.done).requests).toBe(5);
    } finally {
      await slow.close();
    }
  });

  it('streams a 10 MiB download with backpressure, buffering well under the body size', async () => {
    const size = 10 * MiB;
    const block = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    let stalled = false;
    const big = await startBackend((_req, res) => {
      res.writeHead(200, { 'Content-Length': String(size) });
      const pump = (): void => {
        while (sent < size) {
          sent += block.length;
          if (!res.write(block)) {
            stalled = true;
            res.once('drain', () => {
              stalled = false;
              pump();
            });
            return;
          }
        }
        res.end();
      };
      pump();
      return true;
    });
    try {
      const f = await fixture({}, big.port);
      const s = await open(f.ctx, false);
      s.client.pause();
      s.client.write(wireRequest('GET', '/api/big'));
      // The client reads nothing: wait until the backend is held back (sent stops moving).
      let last = -1;
      await waitUntil(() => {
        const still = stalled && sent === last;
        last = sent;
        return still || sent >= size;
      }, 20_000, 100);
      // What the handler holds for the client (Node's queue on the tunnel socket) stays near one socket buffer.
      expect(s.server.writableLength).toBeLessThan(1 * MiB);
      const reader = new WireReader(s.client);
      s.client.resume();
      const r = await reader.response();
      expect(r.body.length).toBe(size);
      expect(r.body.every((b) => b === 7)).toBe(true);
      expect(sent).toBe(size);
    } finally {
      await big.close();
    }
  });

  /**
   * A 10 MiB upload, framed by `head` and `tail`, to a backend that does not read it at first: the
   * handler must stop reading the tunnel long before the end (backpressure), then deliver every
   * byte once the backend reads. The caller closes the backend.
   */
  const uploadWithBackpressure = async (head: (size: number) => string, tail: string) => {
    const size = 10 * MiB;
    let release: (() => void) | null = null;
    const received = { bytes: 0, hash: '', trailers: [] as string[] };
    const up = await startBackend((req, res) => {
      req.pause();
      release = () => {
        const h = createHash('sha256');
        req.on('data', (d: Buffer) => {
          received.bytes += d.length;
          h.update(d);
        });
        req.on('end', () => {
          received.hash = h.digest('hex');
          received.trailers = req.rawTrailers;
          res.writeHead(200, { 'Content-Length': '2' }).end('ok');
        });
        req.resume();
      };
      return true;
    });
    try {
      const f = await fixture({}, up.port);
      const s = await open(f.ctx);
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4) body.writeUInt32LE(i, i);
      s.client.write(head(size));
      s.client.write(body);
      if (tail) s.client.write(tail);
      // The backend is not reading: the handler must stop reading the tunnel long before 10 MiB.
      await waitUntil(() => release !== null && s.server.isPaused(), 20_000);
      let lastRead = -1;
      await waitUntil(() => {
        const still = s.server.bytesRead === lastRead;
        lastRead = s.server.bytesRead;
        return still;
      }, 20_000, 100);
      expect(s.server.bytesRead).toBeLessThan(size - 2 * MiB);
      (release as unknown as () => void)();
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(received.bytes).toBe(size);
      expect(received.hash).toBe(createHash('sha256').update(body).digest('hex'));
      return { f, s, size, received, close: () => up.close() };
    } catch (err) {
      await up.close();
      throw err;
    }
  };

  it('streams a 10 MiB upload with backpressure, reading from the client only as the backend reads', async () => {
    const upload = await uploadWithBackpressure((size) => wireRequest('PUT', '/api/blob', [['Content-Length', String(size)]]), '');
    try {
      upload.s.client.end();
      await upload.s.done;
      const out = (await upload.f.events()).find((e) => e.action === 'http.response');
      expect(out?.details).toMatchObject({ bytesIn: upload.size, status: 200 });
    } finally {
      await upload.close();
    }
  });

  describe('WebSocket upgrades', () => {
    let ws: TestBackend;
    beforeAll(async () => {
      ws = await startBackend();
      ws.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
        const key = String(req.headers['sec-websocket-key']);
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Path: ${req.url}\r\n\r\n`);
        if (head.length > 0) socket.write(head.toString().toUpperCase());
        socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
        socket.on('end', () => socket.end());
      });
    });
    afterAll(() => ws.close());

    const upgrade = (target: string, extra = ''): string =>
      `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n${extra}`;

    it('relays an allowed upgrade both ways', async () => {
      const f = await fixture({}, ws.port);
      const s = await open(f.ctx);
      s.client.write(upgrade('/ws', 'early'));
      const head = await s.reader.readHead();
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      expect(head).toContain('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      expect(head).toContain('X-Path: /ws');
      expect((await s.reader.readExactly(5)).toString()).toBe('EARLY');
      s.client.write('hello');
      expect((await s.reader.readExactly(5)).toString()).toBe('HELLO');
      s.client.end();
      const result = await s.done;
      expect(result.requests).toBe(1);
      const events = await f.events();
      expect(events.find((e) => e.action === 'http.request')).toMatchObject({ outcome: 'allowed', details: { upgrade: 'websocket', target: '/ws' } });
      expect(events.find((e) => e.action === 'http.response')).toMatchObject({ outcome: 'success', details: { status: 101, bytesIn: 10, bytesOut: 10 } });
    });

    it('refuses an upgrade the policy denies, and the connection stays usable', async () => {
      const f = await fixture({}, ws.port);
      const s = await open(f.ctx);
      s.client.write(upgrade('/admin/ws') + wireRequest('GET', '/api/after'));
      const denied = await s.reader.response();
      expect(denied.status).toBe(403);
      expect(json(denied.body).code).toBe('POLICY_DENIED');
      const ok = await s.reader.response();
      expect(ok.status).toBe(200);
      expect(ws.seen.map((x) => x.url)).toEqual(['/api/after']);
    });
  });

  it('answers 502 when the backend is down, audited, and the session survives', async () => {
    const gone = await tcpServer(() => undefined);
    const port = gone.port;
    await gone.close();
    const f = await fixture({}, port);
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/x'));
    const r = await s.reader.response();
    expect(r.status).toBe(502);
    expect(json(r.body)).toMatchObject({ code: 'HTTP_BACKEND_UNAVAILABLE', status: 502 });
    s.client.write(wireRequest('GET', '/api/y'));
    expect((await s.reader.response()).status).toBe(502);
    s.client.end();
    await s.done;
    const outcomes = (await f.events()).filter((e) => e.action === 'http.response');
    expect(outcomes.map((e) => [e.outcome, e.details.status, e.details.errorCode])).toEqual([
      ['error', 502, 'HTTP_BACKEND_UNAVAILABLE'],
      ['error', 502, 'HTTP_BACKEND_UNAVAILABLE'],
    ]);
  });

  it('answers 502 when the backend resets before answering (no silent retry of a POST)', async () => {
    let hits = 0;
    const rude = await tcpServer((sock) => {
      sock.once('data', () => {
        hits += 1;
        sock.resetAndDestroy();
      });
    });
    try {
      const f = await fixture({}, rude.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('POST', '/api/x', [['Content-Length', '2']], 'hi'));
      const r = await s.reader.response();
      expect(r.status).toBe(502);
      expect(json(r.body).code).toBe('HTTP_BACKEND_CONNECTION_LOST');
      expect(hits).toBe(1);
    } finally {
      await rude.close();
    }
  });

  it('cuts the client connection when the backend resets mid-response, and audits an error', async () => {
    const cut = await startBackend((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' });
      res.write(Buffer.alloc(1000, 1), () => res.socket?.resetAndDestroy());
      return true;
    });
    try {
      const f = await fixture({}, cut.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/partial'));
      const head = await s.reader.readHead();
      expect(head).toMatch(/^HTTP\/1\.1 200/);
      await expect(s.reader.readExactly(100000)).rejects.toThrow(/closed/);
      await s.done;
      const out = (await f.events()).find((e) => e.action === 'http.response');
      expect(out).toMatchObject({ outcome: 'error', details: { status: 200, errorCode: 'HTTP_BACKEND_CONNECTION_LOST' } });
    } finally {
      await cut.close();
    }
  });

  it('answers 504 when the backend does not answer in time', async () => {
    const quick = createHttpHandler({ upstream: { headersTimeoutMs: 150 } });
    const silent = await startBackend(() => true);
    try {
      const f = await fixture({}, silent.port);
      const s = await openSession(quick, f.ctx);
      closers.push(s.close);
      s.client.write(wireRequest('GET', '/api/slow'));
      const r = await s.reader.response();
      expect(r.status).toBe(504);
      expect(json(r.body).code).toBe('HTTP_BACKEND_TIMEOUT');
    } finally {
      await quick.close();
      await silent.close();
    }
  });

  it('refuses with 503 and never forwards when the audit spool cannot take the decision', async () => {
    const full: SessionContext['audit'] = {
      canAccept: () => true,
      decision: () => Promise.reject(new AppError('AUDIT_SPOOL_FULL')),
      outcome: () => Promise.resolve(true),
    };
    const f = await fixture({ audit: full });
    const s = await open(f.ctx);
    s.client.write(wireRequest('GET', '/api/x'));
    const r = await s.reader.response();
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toEqual(['1']);
    expect(json(r.body).code).toBe('AUDIT_SPOOL_FULL');
    expect(backend.seen).toHaveLength(0);
    const closed: SessionContext['audit'] = { ...full, canAccept: () => false };
    const g = await fixture({ audit: closed });
    const t = await open(g.ctx);
    t.client.write(wireRequest('GET', '/api/x'));
    const r2 = await t.reader.response();
    expect(r2.status).toBe(503);
    expect(json(r2.body).code).toBe('AUDIT_UNAVAILABLE');
    expect(backend.seen).toHaveLength(0);
  });

  it('answers 429 with Retry-After when the request rate limit refuses', async () => {
    const f = await fixture();
    let calls = 0;
    const ctx: SessionContext = {
      ...f.ctx,
      consumeRequest: async () => {
        calls += 1;
        return calls <= 1 ? { allowed: true, source: 'local' } : { allowed: false, retryAfterMs: 1500, scope: 'user', source: 'local' };
      },
    };
    const s = await open(ctx);
    s.client.write(wireRequest('GET', '/api/a') + wireRequest('GET', '/api/b'));
    expect((await s.reader.response()).status).toBe(200);
    const limited = await s.reader.response();
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toEqual(['2']);
    expect(json(limited.body)).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 2 });
    expect(backend.seen).toHaveLength(1);
  });

  describe('session end', () => {
    it('closes an idle tunnel when the grant is revoked', async () => {
      const f = await fixture();
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/x'));
      expect((await s.reader.response()).status).toBe(200);
      f.abort.abort(new AppError('GRANT_REVOKED'));
      const result = await s.done;
      expect(result.reason).toBe('revoked');
      expect(await s.reader.waitClosed()).toBe(true);
    });

    it('answers a request in flight with the revocation, then closes', async () => {
      const hang = await startHangingBackend();
      try {
        const f = await fixture({}, hang.port);
        const s = await open(f.ctx);
        s.client.write(wireRequest('GET', '/api/hang'));
        await hang.reached;
        f.abort.abort(new AppError('GRANT_REVOKED'));
        const r = await s.reader.response();
        expect(r.status).toBe(401);
        expect(r.headers.connection).toEqual(['close']);
        expect(json(r.body).code).toBe('GRANT_REVOKED');
        expect((await s.done).reason).toBe('revoked');
        const out = (await f.events()).find((e) => e.action === 'http.response');
        expect(out).toMatchObject({ outcome: 'error', details: { errorCode: 'GRANT_REVOKED' } });
      } finally {
        await hang.close();
      }
    });

    it('lets the request in flight finish on drain, then closes', async () => {
      let respond: (() => void) | null = null;
      const later = await startBackend((_req, res) => {
        respond = () => res.writeHead(200, { 'Content-Length': '4' }).end('done');
        return true;
      });
      try {
        const f = await fixture({}, later.port);
        const s = await open(f.ctx);
        s.client.write(wireRequest('GET', '/api/drain'));
        await waitUntil(() => respond !== null);
        f.abort.abort(new AppError('NOT_READY'));
        (respond as unknown as () => void)();
        const r = await s.reader.response();
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe('done');
        expect(r.headers.connection).toEqual(['close']);
        expect((await s.done).reason).toBe('draining');
      } finally {
        await later.close();
      }
    });

    it('closes the tunnel after the idle timeout', async () => {
      const f = await fixture({ settings: { idleTimeoutMs: 200 } });
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/x'));
      expect((await s.reader.response()).status).toBe(200);
      const t0 = Date.now();
      const result = await s.done;
      expect(result.reason).toBe('idle_timeout');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    });

    it('takes the grant idle timeout when it is shorter than the node setting', async () => {
      const f = await fixture({ idleTimeoutSeconds: 1 });
      const s = await open(f.ctx);
      expect((await s.done).reason).toBe('idle_timeout');
    });

    it('answers a malformed request with 400 and closes (request smuggling shape)', async () => {
      const f = await fixture();
      const s = await open(f.ctx);
      s.client.write('POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
      const r = await s.reader.response();
      expect(r.status).toBe(400);
      expect(json(r.body).code).toBe('HTTP_PROTOCOL_VIOLATION');
      expect((await s.done).reason).toBe('protocol_error');
      expect(backend.seen).toHaveLength(0);
    });

    it('answers 431 to a request head over the limit', async () => {
      const f = await fixture({ settings: { maxHeaderBytes: 1024 } });
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/x', [['X-Big', 'a'.repeat(2000)]]));
      const r = await s.reader.response();
      expect(r.status).toBe(431);
      expect(json(r.body).code).toBe('HTTP_HEADERS_TOO_LARGE');
    });
  });

  describe('setup and sendError', () => {
    it('fails fast on credentials it cannot inject', async () => {
      const f = await fixture({ credentials: { kind: 'password', username: 'u', password: 'p' } });
      const pair = await socketPair();
      closers.push(pair.close);
      await expect(handler.setup(pair.server, f.ctx)).rejects.toMatchObject({ code: 'GRANT_CREDENTIALS_UNREADABLE' });
      const g = await fixture({ credentials: { kind: 'header', headerName: 'Host', value: 'x' } });
      await expect(handler.setup(pair.server, g.ctx)).rejects.toMatchObject({ code: 'GRANT_CREDENTIALS_UNREADABLE' });
    });

    it('does not dial the backend in setup', async () => {
      let connections = 0;
      const counting = await startBackend();
      counting.server.on('connection', () => (connections += 1));
      try {
        const f = await fixture({}, counting.port);
        const s = await open(f.ctx);
        f.abort.abort(new AppError('GRANT_EXPIRED'));
        expect((await s.done).reason).toBe('grant_expired');
        expect(connections).toBe(0);
      } finally {
        await counting.close();
      }
    });

    it('sendError writes a problem response with Connection: close and closes', async () => {
      const pair = await socketPair();
      closers.push(pair.close);
      const reader = new WireReader(pair.client);
      handler.sendError(pair.server, new AppError('RATE_LIMITED', { meta: { retryAfterSeconds: 3 } }));
      const r = await reader.response();
      expect(r.status).toBe(429);
      expect(r.headers.connection).toEqual(['close']);
      expect(r.headers['retry-after']).toEqual(['3']);
      expect(json(r.body)).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
      expect(await reader.waitClosed()).toBe(true);
    });
  });

  describe('TLS to the backend', () => {
    let dir: string;
    let tls: { port: number; close(): Promise<void> };
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pa-http-tls-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      const server = createHttpsServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (req, res) => {
        res.writeHead(200, { 'Content-Length': '3' }).end('tls');
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      tls = { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
    });
    afterAll(async () => {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('speaks TLS when the connection asks for it (require: encrypted, not verified)', async () => {
      const f = await fixture({ tlsMode: 'require' }, tls.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/x'));
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('tls');
    });

    it('speaks TLS for a chunked request too, and verifies as the pool does', async () => {
      const body = 'POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
      const f = await fixture({ tlsMode: 'require' }, tls.port);
      const s = await open(f.ctx);
      s.client.write(body);
      const r = await s.reader.response();
      expect([r.status, r.body.toString()]).toEqual([200, 'tls']);
      const g = await fixture({ tlsMode: 'verify-full' }, tls.port);
      const t = await open(g.ctx);
      t.client.write(body);
      const refused = await t.reader.response();
      expect(refused.status).toBe(502);
      expect(String(json(refused.body).detail)).toMatch(/secure connection/);
    });

    it('refuses an unverifiable backend certificate under verify-full (502)', async () => {
      const f = await fixture({ tlsMode: 'verify-full' }, tls.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/x'));
      const r = await s.reader.response();
      expect(r.status).toBe(502);
      expect(json(r.body)).toMatchObject({ code: 'HTTP_BACKEND_UNAVAILABLE' });
      expect(String(json(r.body).detail)).toMatch(/secure connection/);
    });
  });
  describe('trailers, interim (1xx) responses and Upgrade: h2c', () => {
    let rich: TestBackend;
    beforeAll(async () => {
      rich = await startBackend((req, res) => {
        const url = req.url ?? '';
        if (url.startsWith('/api/trailers')) {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum, Server-Timing' });
            res.write('part1;');
            res.addTrailers([
              ['X-Checksum', 'sha256=abc'],
              ['Server-Timing', 'db;dur=53'],
              ['Set-Cookie', 'sid=evil'],
              ['Keep-Alive', 'timeout=1'],
              ['Proxy-Authenticate', 'Basic'],
              ['Content-Type', 'text/html'],
              ['WWW-Authenticate', 'Basic'],
            ]);
            res.end('part2');
          });
          return true;
        }
        if (url.startsWith('/api/echo')) {
          const parts: Buffer[] = [];
          req.on('data', (d: Buffer) => parts.push(d));
          req.on('end', () => {
            const body = JSON.stringify({ body: Buffer.concat(parts).toString(), trailers: req.rawTrailers });
            res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
          });
          return true;
        }
        if (url.startsWith('/api/hints')) {
          res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style', 'x-hint': '1' });
          res.writeProcessing();
          req.resume();
          req.on('end', () => res.writeHead(200, { 'Content-Length': '2' }).end('ok'));
          return true;
        }
        return false;
      });
    });
    afterEach(() => {
      rich.seen.length = 0;
    });
    afterAll(() => rich.close());

    const chunked = (method: string, target: string, chunks: string[], trailers: ReadonlyArray<readonly [string, string]>, extra = ''): string =>
      `${method} ${target} HTTP/1.1\r\nHost: a\r\n${extra}Transfer-Encoding: chunked\r\n\r\n${chunks.map((c) => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`).join('')}0\r\n${trailers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

    it('passes response trailers on to the client, without hop-by-hop or forbidden fields, and keeps the connection in step', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/trailers'));
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(r.headers['transfer-encoding']).toEqual(['chunked']);
      expect(r.body.toString()).toBe('part1;part2');
      expect(r.trailers).toEqual({ 'x-checksum': ['sha256=abc'], 'server-timing': ['db;dur=53'] });
      s.client.write(wireRequest('GET', '/api/after'));
      const next = await s.reader.response();
      expect(next.status).toBe(200);
      expect(json(next.body)).toEqual({ method: 'GET', url: '/api/after' });
      s.client.end();
      await s.done;
      const out = (await f.events()).filter((e) => e.action === 'http.response');
      expect(out[0]).toMatchObject({ outcome: 'success', details: { status: 200, bytesOut: 'part1;part2'.length } });
    });

    it('drops response trailers for an HTTP/1.0 client (no chunked coding to carry them) and still sends the whole body', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      s.client.write('GET /api/trailers HTTP/1.0\r\n\r\n');
      const r = await s.reader.response();
      expect(r.body.toString()).toBe('part1;part2');
      expect(r.status).toBe(200);
      expect(r.headers['transfer-encoding']).toBeUndefined();
      expect(r.body.toString()).toBe('part1;part2');
      expect(r.trailers).toEqual({});
    });

    it('passes request trailers of a chunked body on to the backend, without hop-by-hop, proxy-owned, forbidden or credential fields', async () => {
      const f = await fixture({ credentials: { kind: 'header', headerName: 'X-Api-Key', value: SECRET } }, rich.port);
      const s = await open(f.ctx);
      s.client.write(
        chunked('POST', '/api/echo', ['hello ', 'world'], [
          ['X-Checksum', 'crc32=1234'],
          ['X-Api-Key', 'forged'],
          ['X-PA-Request-Id', 'forged'],
          ['X-Forwarded-For', '6.6.6.6'],
          ['Host', 'evil.example'],
          ['Authorization', 'Bearer forged'],
          ['Keep-Alive', 'timeout=1'],
          ['TE', 'trailers'],
          ['Cookie', 'sid=forged'],
          ['Server-Timing', 'client;dur=1'],
        ]),
      );
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(json(r.body)).toEqual({ body: 'hello world', trailers: ['X-Checksum', 'crc32=1234', 'Server-Timing', 'client;dur=1'] });
      expect(rich.seen[0]?.headers['x-api-key']).toBe(SECRET);
      // Without trailers, and with a body chunked in one piece, the framing stays intact for the next request.
      s.client.write(chunked('PUT', '/api/echo', ['x'], []));
      expect(json((await s.reader.response()).body)).toEqual({ body: 'x', trailers: [] });
      s.client.end();
      await s.done;
      const events = await f.events();
      expect(events.filter((e) => e.action === 'http.request').map((e) => e.outcome)).toEqual(['allowed', 'allowed']);
      expect(events.find((e) => e.action === 'http.response')).toMatchObject({ outcome: 'success', details: { bytesIn: 'hello world'.length, status: 200 } });
    });

    it('does not forward a request trailer that names a header the policy judges', async () => {
      const f = await fixture({ policies: [{ name: 'tenant', rules: [{ id: 't42', effect: 'allow', type: 'http', paths: ['/api/**'], headers: { 'x-tenant': '^42$' } }] }] }, rich.port);
      const s = await open(f.ctx);
      s.client.write(chunked('POST', '/api/echo', ['a'], [['X-Tenant', '99'], ['X-Other', '1']], 'X-Tenant: 42\r\n'));
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(json(r.body)).toEqual({ body: 'a', trailers: ['X-Other', '1'] });
      expect(rich.seen[0]?.headers['x-tenant']).toBe('42');
    });

    it('relays 103 Early Hints and other 1xx from the backend before the final response', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      s.client.write(wireRequest('GET', '/api/hints'));
      const hints = await s.reader.response();
      expect(hints.status).toBe(103);
      expect(hints.headers.link).toEqual(['</app.css>; rel=preload; as=style']);
      expect(hints.headers['x-hint']).toEqual(['1']);
      expect((await s.reader.response()).status).toBe(102);
      const final = await s.reader.response();
      expect(final.status).toBe(200);
      expect(final.body.toString()).toBe('ok');
      // The same for a request whose body is chunked.
      s.client.write(chunked('POST', '/api/hints', ['abc'], []));
      expect((await s.reader.response()).status).toBe(103);
      expect((await s.reader.response()).status).toBe(102);
      const second = await s.reader.response();
      expect([second.status, second.body.toString()]).toEqual([200, 'ok']);
      s.client.end();
      await s.done;
      expect((await f.events()).filter((e) => e.action === 'http.response').map((e) => e.details.status)).toEqual([200, 200]);
    });

    it('sends no 1xx to an HTTP/1.0 client', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      s.client.write('GET /api/hints HTTP/1.0\r\n\r\n');
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('ok');
      expect(await s.reader.waitClosed()).toBe(true);
    });

    it('serves a real client that sends Expect: 100-continue: 100 after the decision, then the body; a denial gets no 100 and no body reaches the backend', async () => {
      // Node's client without an agent closes its socket after one response: one tunnel per request.
      const f = await fixture({}, rich.port);
      const send = async (path: string, framing: 'content-length' | 'chunked' = 'content-length'): Promise<{ status: number; body: string; continued: boolean; informational: number[]; connection: string | undefined }> => {
        const s = await open(f.ctx, false);
        return new Promise((resolve, reject) => {
          let continued = false;
          const informational: number[] = [];
          const length = framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': '5' };
          const req = httpRequest({ createConnection: () => s.client, method: 'POST', path, headers: { host: 'a', expect: '100-continue', ...length } });
          req.on('information', (i: { statusCode: number }) => informational.push(i.statusCode));
          req.on('continue', () => {
            continued = true;
            req.end('hello');
          });
          req.on('response', (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), continued, informational, connection: res.headers.connection }));
          });
          req.on('error', reject);
          req.flushHeaders();
        });
      };
      const ok = await send('/api/echo');
      expect(ok).toMatchObject({ status: 200, continued: true, informational: [100] });
      expect(JSON.parse(ok.body)).toEqual({ body: 'hello', trailers: [] });
      const denied = await send('/admin/upload');
      expect(denied).toMatchObject({ status: 403, continued: false, informational: [], connection: 'close' });
      const chunkedBody = await send('/api/echo?chunked', 'chunked');
      expect(chunkedBody).toMatchObject({ status: 200, continued: true, informational: [100] });
      expect(JSON.parse(chunkedBody.body)).toEqual({ body: 'hello', trailers: [] });
      expect(rich.seen.map((x) => x.url)).toEqual(['/api/echo', '/api/echo?chunked']);
      expect((await f.events()).filter((e) => e.action === 'http.request').map((e) => e.outcome)).toEqual(['allowed', 'denied', 'allowed']);
    });

    it('streams a 10 MiB chunked upload with backpressure, then its trailers', async () => {
      const upload = await uploadWithBackpressure((size) => `PUT /api/blob HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`, '\r\n0\r\nX-Sha256: given\r\n\r\n');
      try {
        expect(upload.received.trailers).toEqual(['X-Sha256', 'given']);
      } finally {
        await upload.close();
      }
    });

    it('keeps the connection in step when the backend answers a chunked upload before reading it', async () => {
      const early = await startEarlyAnsweringBackend();
      try {
        const f = await fixture({}, early.port);
        const s = await open(f.ctx);
        const big = Buffer.alloc(512 * 1024, 'a');
        s.client.write(`POST /api/too-big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n`);
        s.client.write(big);
        s.client.write('\r\n0\r\n\r\n');
        expect((await s.reader.response()).status).toBe(413);
        s.client.write(wireRequest('GET', '/api/after'));
        expect((await s.reader.response()).status).toBe(200);
        expect(early.seen.map((x) => x.url)).toEqual(['/api/too-big', '/api/after']);
      } finally {
        await early.close();
      }
    });

    it('fails a chunked request as any other: 502 when the backend is down or resets, 504 when it does not answer', async () => {
      const gone = await tcpServer(() => undefined);
      const port = gone.port;
      await gone.close();
      const f = await fixture({}, port);
      const s = await open(f.ctx);
      s.client.write(chunked('POST', '/api/x', ['abc'], [['X-Sum', '1']]));
      const down = await s.reader.response();
      expect(down.status).toBe(502);
      expect(json(down.body).code).toBe('HTTP_BACKEND_UNAVAILABLE');

      const rude = await tcpServer((sock) => sock.once('data', () => sock.resetAndDestroy()));
      const quick = createHttpHandler({ upstream: { headersTimeoutMs: 150 } });
      const silent = await startBackend(() => true);
      try {
        const g = await fixture({}, rude.port);
        const t = await open(g.ctx);
        t.client.write(chunked('POST', '/api/x', ['abc'], []));
        const lost = await t.reader.response();
        expect(lost.status).toBe(502);
        expect(json(lost.body).code).toBe('HTTP_BACKEND_CONNECTION_LOST');
        const h = await fixture({}, silent.port);
        const u = await openSession(quick, h.ctx);
        closers.push(u.close);
        u.client.write(chunked('POST', '/api/slow', ['abc'], []));
        const slow = await u.reader.response();
        expect(slow.status).toBe(504);
        expect(json(slow.body).code).toBe('HTTP_BACKEND_TIMEOUT');
        const outcomes = [...(await f.events()), ...(await g.events()), ...(await h.events())].filter((e) => e.action === 'http.response');
        expect(outcomes.map((e) => e.details.errorCode)).toEqual(['HTTP_BACKEND_UNAVAILABLE', 'HTTP_BACKEND_CONNECTION_LOST', 'HTTP_BACKEND_TIMEOUT']);
      } finally {
        await rude.close();
        await quick.close();
        await silent.close();
      }
    });

    it('answers a chunked request in flight with the revocation, then closes', async () => {
      const hang = await startHangingBackend();
      try {
        const f = await fixture({}, hang.port);
        const s = await open(f.ctx);
        s.client.write(chunked('POST', '/api/hang', ['abc'], []));
        await hang.reached;
        f.abort.abort(new AppError('GRANT_REVOKED'));
        const r = await s.reader.response();
        expect(r.status).toBe(401);
        expect(json(r.body).code).toBe('GRANT_REVOKED');
        expect((await s.done).reason).toBe('revoked');
      } finally {
        await hang.close();
      }
    });

    it('strips Upgrade and HTTP2-Settings sent without Connection: Upgrade (not an upgrade request at all)', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      // No "Connection: Upgrade": not an upgrade at all, and Upgrade is hop-by-hop.
      s.client.write(wireRequest('GET', '/api/plain', [['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABk']]));
      expect((await s.reader.response()).status).toBe(200);
      expect(rich.seen[0]?.headers.upgrade).toBeUndefined();
      expect(rich.seen[0]?.headers['http2-settings']).toBeUndefined();
    });

    it('ignores Upgrade: h2c and serves the request as HTTP/1.1, judged and audited as any other, without Upgrade or HTTP2-Settings', async () => {
      const f = await fixture({}, rich.port);
      const s = await open(f.ctx);
      const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
      s.client.write(`GET /api/plain HTTP/1.1\r\nHost: a\r\n${h2c}Accept: text/plain\r\n\r\n`);
      const r = await s.reader.response();
      expect(r.status).toBe(200);
      expect(json(r.body)).toEqual({ method: 'GET', url: '/api/plain' });
      expect(r.headers.upgrade).toBeUndefined();
      const seen = rich.seen[0]!;
      expect(seen.headers.upgrade).toBeUndefined();
      expect(seen.headers['http2-settings']).toBeUndefined();
      expect(seen.headers.accept).toBe('text/plain');
      // With a body, and pipelined with a denied one and a plain one: the stream stays in step.
      s.client.write(`POST /api/echo HTTP/1.1\r\nHost: a\r\n${h2c}Content-Length: 3\r\n\r\nabc` + `GET /admin/x HTTP/1.1\r\nHost: a\r\n${h2c}\r\n` + wireRequest('GET', '/api/after'));
      const posted = await s.reader.response();
      expect(json(posted.body)).toEqual({ body: 'abc', trailers: [] });
      expect((await s.reader.response()).status).toBe(403);
      expect((await s.reader.response()).status).toBe(200);
      expect(rich.seen.map((x) => `${x.method} ${x.url}`)).toEqual(['GET /api/plain', 'POST /api/echo', 'GET /api/after']);
      s.client.end();
      const result = await s.done;
      expect(result.requests).toBe(4);
      const decisions = (await f.events()).filter((e) => e.action === 'http.request');
      expect(decisions.map((e) => [e.outcome, e.details.target])).toEqual([
        ['allowed', '/api/plain'],
        ['allowed', '/api/echo'],
        ['denied', '/admin/x'],
        ['allowed', '/api/after'],
      ]);
      expect(decisions.every((e) => e.details.upgrade === undefined)).toBe(true);
    });

    it('refuses an ignored upgrade whose head Node cut short (over 2000 fields) rather than rebuild it', async () => {
      const f = await fixture({ settings: { maxHeaderBytes: 64 * 1024 } }, rich.port);
      const s = await open(f.ctx);
      const many = Array.from({ length: 2001 }, (_, i) => `x${i}: 1\r\n`).join('');
      s.client.write(`POST /api/echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n${many}Content-Length: 3\r\n\r\nabc`);
      const r = await s.reader.response();
      expect(r.status).toBe(400);
      expect(json(r.body).code).toBe('HTTP_PROTOCOL_VIOLATION');
      expect(await s.reader.waitClosed()).toBe(true);
      expect(rich.seen).toHaveLength(0);
      expect((await f.events()).filter((e) => e.action === 'http.request').map((e) => e.outcome)).toEqual(['denied']);
    });
  });
});
