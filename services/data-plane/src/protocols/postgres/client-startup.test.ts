import { once } from 'node:events';
import { frontend } from '@pa/pgwire';
import { readBytes, socketPair } from '../../testing/socket-pair';
import { readClientStartup } from './client-startup';

const options = (timeoutMs = 2000) => ({ timeoutMs, signal: new AbortController().signal });

describe('readClientStartup', () => {
  it('declines SSL and GSS encryption with N, then accepts the StartupMessage', async () => {
    const pair = await socketPair();
    try {
      const p = readClientStartup(pair.server, options());
      pair.client.write(frontend.sslRequest());
      expect((await readBytes(pair.client, 1)).toString()).toBe('N');
      pair.client.write(frontend.gssEncRequest());
      expect((await readBytes(pair.client, 1)).toString()).toBe('N');
      pair.client.write(frontend.startupMessage({ user: 'u', database: 'd', application_name: 'psql' }));
      const r = await p;
      expect(r.kind).toBe('startup');
      if (r.kind === 'startup') {
        expect(r.accepted).toMatchObject({ user: 'u', database: 'd' });
        expect([...r.accepted.settings]).toEqual([['application_name', 'psql']]);
        expect(r.bytesToClient).toBe(2);
      }
    } finally {
      pair.close();
    }
  });

  it('gives the same result when the startup arrives one byte at a time, and keeps messages pipelined after it', async () => {
    const pair = await socketPair();
    try {
      const p = readClientStartup(pair.server, options());
      const bytes = Buffer.concat([frontend.startupMessage({ user: 'u' }), frontend.query('SELECT 1')]);
      for (const b of bytes) {
        pair.client.write(Buffer.from([b]));
        await new Promise((r) => setImmediate(r));
      }
      const r = await p;
      expect(r.kind).toBe('startup');
      if (r.kind === 'startup') {
        // Nothing is lost: what follows the StartupMessage is decoded, partly decoded, or still in the (paused) socket.
        await new Promise((res) => setTimeout(res, 20));
        const decoded = r.pending.reduce((n, m) => n + m.raw.length, 0);
        expect(decoded + r.decoder.bufferedBytes + pair.server.readableLength).toBe(frontend.query('SELECT 1').length);
      }
    } finally {
      pair.close();
    }
  });

  it('refuses bytes pipelined after an SSLRequest, without answering it', async () => {
    const pair = await socketPair();
    try {
      const p = readClientStartup(pair.server, options());
      pair.client.write(Buffer.concat([frontend.sslRequest(), frontend.startupMessage({ user: 'u' })]));
      await expect(p).rejects.toMatchObject({ code: 'PG_PROTOCOL_VIOLATION' });
      await new Promise((res) => setTimeout(res, 20));
      expect(pair.client.readableLength).toBe(0);
    } finally {
      pair.close();
    }
  });

  it('hands a CancelRequest over', async () => {
    const pair = await socketPair();
    try {
      const p = readClientStartup(pair.server, options());
      pair.client.write(frontend.cancelRequest(42, Buffer.from([1, 2, 3, 4])));
      const r = await p;
      expect(r).toMatchObject({ kind: 'cancel', request: { processId: 42 } });
    } finally {
      pair.close();
    }
  });

  it('refuses parameters off the allowlist with 08004', async () => {
    const pair = await socketPair();
    try {
      const p = readClientStartup(pair.server, options());
      pair.client.write(frontend.startupMessage({ user: 'u', replication: 'true' }));
      const err = await p.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PG_STARTUP_REFUSED' });
    } finally {
      pair.close();
    }
  });

  it('gives up on a client that never sends its startup, or leaves', async () => {
    const pair = await socketPair();
    try {
      await expect(readClientStartup(pair.server, options(100))).rejects.toMatchObject({ code: 'PG_STARTUP_REFUSED' });
    } finally {
      pair.close();
    }
    const pair2 = await socketPair();
    const p = readClientStartup(pair2.server, options());
    pair2.client.end();
    await expect(p).rejects.toMatchObject({ code: 'PG_PROTOCOL_VIOLATION' });
    pair2.close();
    await once(pair2.server, 'close');
  });
});
