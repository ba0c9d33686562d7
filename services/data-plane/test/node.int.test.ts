import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createCaptureLogger } from '@pa/kit';
import { createState, type State } from '@pa/state';
import { checkGrant, openTunnel, TunnelRefusedError } from '@pa/tunnel';
import { createTestRedis, type TestRedis } from '@pa/testing';
import type { AuditEvent } from '../src/audit';
import { loadConfig } from '../src/config';
import { startNode, type RunningNode } from '../src/node';
import { createGrantFactory } from '../src/testing/grant-factory';
import { recordingTransport } from '../src/testing/recording-transport';
import { readBytes, tcpServer } from '../src/testing/socket-pair';

/** A data-plane node on real sockets, with keys and an audit sink injected (no control plane). */
describe('data-plane node: tunnel admission', () => {
  let redis: TestRedis;
  let state: State;
  let node: RunningNode;
  let dir: string;
  let echo: Awaited<ReturnType<typeof tcpServer>>;
  let factory: Awaited<ReturnType<typeof createGrantFactory>>;
  const shipped: AuditEvent[] = [];
  const { logger } = createCaptureLogger('node-test');

  beforeAll(async () => {
    redis = await createTestRedis();
    state = createState({ redis: redis.url, keyPrefix: redis.prefix, logger, rateLimits: { tunnelPerUser: { points: 5, durationSeconds: 60 } } });
    await state.revocations.start();
    factory = await createGrantFactory();
    echo = await tcpServer((s) => s.pipe(s));
    dir = mkdtempSync(join(tmpdir(), 'pa-node-'));
    const config = loadConfig({}, { dataDir: dir, tunnel: { port: 0 }, admin: { port: 0 }, controlPlane: { issuer: factory.issuer }, drainTimeoutSeconds: 1 });
    node = await startNode(config, logger, {
      state,
      keys: factory.keys,
      transport: recordingTransport(shipped),
    });
  });
  afterAll(async () => {
    await node.stop();
    await state.close();
    await redis.close();
    await echo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refused = async (grant: string): Promise<TunnelRefusedError> => {
    const err = await openTunnel({ url: node.tunnelUrl, grant }).then(
      (t) => {
        t.socket.destroy();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TunnelRefusedError);
    return err as TunnelRefusedError;
  };

  const waitFor = async (cond: () => boolean, what: string, ms = 5000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setImmediate(r));
    }
  };

  it('admits a valid grant, relays TCP, and ships tunnel.open, session.start and session.end', async () => {
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    const { socket, tunnelId } = await openTunnel({ url: node.tunnelUrl, grant: g.token });
    expect(tunnelId).toMatch(/^tun_/);
    socket.write('ping');
    expect((await readBytes(socket, 4)).toString()).toBe('ping');
    socket.end();
    await once(socket, 'close');
    await waitFor(() => shipped.some((e) => e.action === 'session.end' && e.grantId === g.grantId), 'session.end shipped');
    const actions = shipped.filter((e) => e.grantId === g.grantId).map((e) => e.action);
    expect(actions).toEqual(['tunnel.open', 'session.start', 'session.end']);
    const end = shipped.find((e) => e.action === 'session.end' && e.grantId === g.grantId);
    expect(end?.details).toMatchObject({ bytesUp: 4, bytesDown: 4 });
  });

  it('refuses an expired grant, one signed by an unknown key, and a tampered one', async () => {
    const past = () => new Date(Date.now() - 3600_000);
    const expired = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port, clock: past, ttlSeconds: 60, sessionSeconds: 7200 });
    expect((await refused(expired.token)).code).toBe('GRANT_EXPIRED');
    const other = await createGrantFactory();
    const foreign = await other.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    expect((await refused(foreign.token)).code).toBe('GRANT_KEY_UNKNOWN');
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    const [h, p, s] = g.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.connection.port = 22;
    expect((await refused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`)).status).toBe(401);
    await waitFor(() => shipped.filter((e) => e.action === 'tunnel.denied').length >= 3, 'tunnel.denied events');
  });

  it('refuses a revoked session and closes its live tunnels within a second', async () => {
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    const { socket } = await openTunnel({ url: node.tunnelUrl, grant: g.token });
    socket.write('x');
    await readBytes(socket, 1);
    const closed = once(socket, 'close');
    const t0 = Date.now();
    await state.revocations.revoke({ kind: 'session', id: g.claims.sessionId, reason: 'test revocation', ttlSeconds: 600 });
    await closed;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect((await refused(g.token)).code).toBe('AUTH_SESSION_REVOKED');
  });

  it('caps concurrent tunnels per grant session', async () => {
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port, maxConnections: 1 });
    const first = await openTunnel({ url: node.tunnelUrl, grant: g.token });
    const err = await refused(g.token);
    expect(err.status).toBe(429);
    expect(err.code).toBe('CONCURRENCY_LIMITED');
    first.socket.destroy();
    await waitFor(() => node.live.size === 0, 'tunnel released');
    const again = await openTunnel({ url: node.tunnelUrl, grant: g.token });
    again.socket.destroy();
  });

  it('rate-limits new tunnels per user, shared through Redis', async () => {
    const userId = 'usr_ratelimited00000000000000';
    const results: Array<'ok' | string> = [];
    for (let i = 0; i < 7; i += 1) {
      const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port, userId });
      try {
        const t = await openTunnel({ url: node.tunnelUrl, grant: g.token });
        t.socket.destroy();
        results.push('ok');
      } catch (err) {
        results.push((err as TunnelRefusedError).code);
      }
    }
    expect(results.filter((r) => r === 'ok')).toHaveLength(5);
    expect(results.slice(5)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    expect((await redis.client.keys(`${redis.prefix}rl:*`)).length).toBeGreaterThan(0);
  });

  it('serves health, readiness and metrics on the admin port', async () => {
    expect((await fetch(`${node.adminUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${node.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: unknown }).checks).toMatchObject({ keys: true, audit: true, revocations: true });
    const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
    expect(metrics).toContain('pa_tunnels_refused_total');
    expect(metrics).toContain('pa_tunnel_handshake_seconds');
  });

  it('answers the grant status check: active, revoked, expired, malformed; nothing opened, audited or counted', async () => {
    const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port });
    const res = await fetch(`${node.tunnelUrl}/v1/grant-status`, { headers: { Authorization: `Bearer ${g.token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'active', grantId: g.grantId, sessionId: g.claims.sessionId, connection: g.claims.connection.name, expiresAt: new Date(g.claims.exp * 1000).toISOString() });
    // Not counted against the tunnel rate limit (5 a minute per user here): a tunnel still opens after 6 checks.
    for (let i = 0; i < 6; i += 1) await checkGrant({ url: node.tunnelUrl, grant: g.token });
    const t = await openTunnel({ url: node.tunnelUrl, grant: g.token });
    t.socket.destroy();
    await state.revocations.revoke({ kind: 'grant', id: g.grantId, reason: 'status test', ttlSeconds: 600 });
    const revoked = await checkGrant({ url: node.tunnelUrl, grant: g.token }).then(() => null, (e: unknown) => e);
    expect(revoked).toBeInstanceOf(TunnelRefusedError);
    expect(revoked).toMatchObject({ status: 401, code: 'GRANT_REVOKED' });
    const expired = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: echo.port, clock: () => new Date(Date.now() - 3600_000), ttlSeconds: 60, sessionSeconds: 7200 });
    expect(await checkGrant({ url: node.tunnelUrl, grant: expired.token }).then(() => null, (e: unknown) => e)).toMatchObject({ code: 'GRANT_EXPIRED' });
    const none = await fetch(`${node.tunnelUrl}/v1/grant-status`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect(((await none.json()) as { code: string }).code).toBe('AUTH_REQUIRED');
    const garbage = await fetch(`${node.tunnelUrl}/v1/grant-status`, { headers: { Authorization: 'Bearer a.b.c' } });
    expect(garbage.status).toBe(401);
    // A status check is not a tunnel: the tunnels opened and refused are the only things recorded for this grant.
    expect((await refused(g.token)).code).toBe('GRANT_REVOKED');
    await waitFor(() => shipped.some((e) => e.action === 'tunnel.denied' && e.grantId === g.grantId), 'the refused tunnel audited');
    await waitFor(() => shipped.some((e) => e.action === 'session.end' && e.grantId === g.grantId), 'the tunnel audited');
    expect(shipped.filter((e) => e.grantId === g.grantId).map((e) => e.action).sort()).toEqual(['session.end', 'session.start', 'tunnel.denied', 'tunnel.open']);
  });

  it('answers plain HTTP on the tunnel port with 426 and a problem document', async () => {
    const res = await fetch(`${node.tunnelUrl}/v1/tunnel`);
    expect(res.status).toBe(426);
    expect(((await res.json()) as { code: string }).code).toBe('VALIDATION_FAILED');
  });
});

describe('data-plane node: audit unavailable', () => {
  it('refuses tunnels with 503 when the audit spool cannot be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pa-node-'));
    const blocker = join(dir, 'file');
    writeFileSync(blocker, 'not a directory');
    const { logger } = createCaptureLogger('node-test');
    const factory = await createGrantFactory();
    const state = createState({ logger });
    await state.revocations.start();
    const node = await startNode(loadConfig({}, { dataDir: blocker, tunnel: { port: 0 }, admin: { port: 0 }, controlPlane: { issuer: factory.issuer }, drainTimeoutSeconds: 0 }), logger, {
      state,
      keys: factory.keys,
      transport: { send: async (events) => ({ acked: events.map((e) => e.id) }) },
    });
    try {
      const g = await factory.sign({ protocol: 'tcp', host: '127.0.0.1', port: 9 });
      const err = await openTunnel({ url: node.tunnelUrl, grant: g.token }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TunnelRefusedError);
      expect((err as TunnelRefusedError).status).toBe(503);
      expect((await fetch(`${node.adminUrl}/readyz`)).status).toBe(503);
    } finally {
      await node.stop();
      await state.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
