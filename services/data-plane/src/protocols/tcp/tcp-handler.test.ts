import { once } from 'node:events';
import type { Socket } from 'node:net';
import { AppError } from '@pa/kit';
import { createSessionFixture } from '../../testing/session-fixture';
import { readBytes, socketPair, tcpServer } from '../../testing/socket-pair';
import { tcpHandler } from './tcp-handler';

describe('tcp handler over real sockets', () => {
  let upstream: Awaited<ReturnType<typeof tcpServer>>;
  const upstreamSockets: Socket[] = [];
  beforeAll(async () => {
    // Upstream: echoes in upper case; on end, writes a trailer and ends (half-close test).
    upstream = await tcpServer((s) => {
      upstreamSockets.push(s);
      s.on('data', (d: Buffer) => s.write(d.toString().toUpperCase()));
      s.on('end', () => s.end('<bye>'));
    });
  });
  afterAll(() => upstream.close());

  const fixture = (port: number, extra: Partial<Parameters<typeof createSessionFixture>[0]> = {}) =>
    createSessionFixture({ protocol: 'tcp', host: '127.0.0.1', port, policies: [{ name: 'all', rules: [{ effect: 'allow', type: 'all' }] }], ...extra });

  it('relays both ways, passes a half-close on, and counts bytes', async () => {
    const f = await fixture(upstream.port);
    const pair = await socketPair();
    try {
      const session = await tcpHandler.setup(pair.server, f.ctx);
      const done = session.run();
      pair.client.write('hello');
      expect((await readBytes(pair.client, 5)).toString()).toBe('HELLO');
      pair.client.end(); // half-close: the upstream still answers after our end.
      expect((await readBytes(pair.client, 5)).toString()).toBe('<bye>');
      const result = await done;
      expect(result).toMatchObject({ bytesFromClient: 5, bytesToClient: 10 });
    } finally {
      pair.close();
      await f.close();
    }
  });

  it('ends the session when the signal aborts (revocation) with the reason', async () => {
    const f = await fixture(upstream.port);
    const pair = await socketPair();
    try {
      const session = await tcpHandler.setup(pair.server, f.ctx);
      const done = session.run();
      pair.client.write('x');
      await readBytes(pair.client, 1);
      f.abort.abort(new AppError('GRANT_REVOKED'));
      const result = await done;
      expect(result.reason).toBe('revoked');
      await Promise.race([once(pair.client, 'close'), once(pair.client, 'end')]);
    } finally {
      pair.close();
      await f.close();
    }
  });

  it('closes an idle session', async () => {
    const f = await fixture(upstream.port, { settings: { idleTimeoutMs: 300 } });
    const pair = await socketPair();
    try {
      const result = await (await tcpHandler.setup(pair.server, f.ctx)).run();
      expect(result.reason).toBe('idle_timeout');
    } finally {
      pair.close();
      await f.close();
    }
  });

  it('fails setup with DEPENDENCY_UNAVAILABLE when the upstream is down', async () => {
    const gone = await tcpServer(() => undefined);
    const port = gone.port;
    await gone.close();
    const f = await fixture(port);
    const pair = await socketPair();
    try {
      const err = await tcpHandler.setup(pair.server, f.ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('DEPENDENCY_UNAVAILABLE');
    } finally {
      pair.close();
      await f.close();
    }
  });
});
