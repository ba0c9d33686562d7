import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { AppError } from '@pa/kit';
import { acceptTunnel, bearerGrant, checkGrant, GRANT_STATUS_PATH, openTunnel, parseTunnelRequest, rejectTunnel, TunnelRefusedError, tunnelProblem } from './index';

const GOOD = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln';

describe('tunnel handshake over real sockets', () => {
  let server: Server;
  let url: string;
  const seen: Array<{ grant: string; label: string | null }> = [];
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== GRANT_STATUS_PATH) return res.writeHead(426).end();
      try {
        const grant = bearerGrant(req);
        if (grant.includes('revoked')) throw new AppError('GRANT_REVOKED');
        if (grant.includes('teapot')) return res.writeHead(500, 'Teapot Trouble').end('not json');
        return res.writeHead(200).end('{"status":"active"}');
      } catch (err) {
        const p = tunnelProblem(err);
        return res.writeHead(p.status, { 'Content-Type': 'application/problem+json' }).end(p.body);
      }
    });
    server.on('upgrade', (req, socket: Socket, head: Buffer) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      try {
        const t = parseTunnelRequest(req);
        seen.push({ grant: t.grant, label: t.clientLabel });
        if (t.grant.includes('limited')) throw new AppError('RATE_LIMITED', { meta: { retryAfterSeconds: 7 } });
        acceptTunnel(socket, 'tun_test');
        // Echo with a greeting sent immediately after the 101, to prove nothing is lost.
        socket.write('hello:');
        if (head.length) socket.write(head);
        socket.pipe(socket);
      } catch (err) {
        rejectTunnel(socket, err);
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('upgrades with a grant and relays raw bytes both ways, keeping bytes sent right after the 101', async () => {
    const { socket, tunnelId } = await openTunnel({ url, grant: GOOD, clientLabel: 'cli 1/<x>' });
    expect(tunnelId).toBe('tun_test');
    expect(seen.at(-1)).toEqual({ grant: GOOD, label: 'cli1x' });
    socket.write('ping');
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    while (got.length < 'hello:ping'.length) await once(socket, 'data');
    expect(got).toBe('hello:ping');
    socket.destroy();
  });

  it('surfaces a refusal as TunnelRefusedError with the problem code and Retry-After', async () => {
    const err = await openTunnel({ url, grant: 'eyJ.limited.x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TunnelRefusedError);
    expect(err).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfterSeconds: 7 });
  });

  it.each([
    ['no grant', { Connection: 'Upgrade', Upgrade: 'pa-tunnel/1' }, 401, 'AUTH_REQUIRED'],
    ['wrong upgrade protocol', { Connection: 'Upgrade', Upgrade: 'websocket', Authorization: `Bearer ${GOOD}` }, 400, 'VALIDATION_FAILED'],
    ['not a JWS', { Connection: 'Upgrade', Upgrade: 'pa-tunnel/1', Authorization: 'Bearer not-a-jws' }, 401, 'AUTH_REQUIRED'],
  ])('refuses a request with %s', async (_name, headers, status, code) => {
    const http = await import('node:http');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${url}/v1/tunnel`, { headers });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('upgrade', () => reject(new Error('unexpected upgrade')));
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).code).toBe(code);
  });

  it('checks a grant without opening a tunnel: resolves when active, else the refusal a tunnel would get', async () => {
    await expect(checkGrant({ url, grant: GOOD })).resolves.toBeUndefined();
    await expect(checkGrant({ url, grant: 'eyJ.revoked.x' })).rejects.toMatchObject({ status: 401, code: 'GRANT_REVOKED' });
    // Not a problem document: the status line is what there is to say.
    const odd = await checkGrant({ url, grant: 'eyJ.teapot.x' }).catch((e: unknown) => e);
    expect(odd).toBeInstanceOf(TunnelRefusedError);
    expect(odd).toMatchObject({ status: 500, code: 'UNKNOWN', detail: 'Teapot Trouble' });
    await expect(checkGrant({ url, grant: 'not-a-jws' })).rejects.toMatchObject({ status: 401, code: 'AUTH_REQUIRED' });
    const down = createServer();
    down.listen(0, '127.0.0.1');
    await once(down, 'listening');
    const deadUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    await new Promise((r) => down.close(r));
    await expect(checkGrant({ url: deadUrl, grant: GOOD })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a wrong path', async () => {
    const http = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      const req = http.request(`${url}/other`, { headers: { Connection: 'Upgrade', Upgrade: 'pa-tunnel/1', Authorization: `Bearer ${GOOD}` } });
      req.on('response', (r) => resolve(r.statusCode ?? 0));
      req.on('upgrade', (_r, s) => {
        s.destroy();
        resolve(101);
      });
      req.end();
    });
    expect(status).toBe(404);
  });
});
