import { createServer, type Server, type Socket } from 'node:net';
import { type AppError } from '@pa/kit';
import * as backend from './backend-builders';
import { connectBackend, type ConnectBackendOptions } from './connect-backend';
import { FrontendDecoder } from './frontend-decoder';
import type { FrontendMessage } from './frontend-messages';
import { readSASLInitialResponse } from './auth-responses';

/**
 * A scripted fake backend, for what a real PostgreSQL will not do: lie about
 * SCRAM, pipeline bytes after the SSL answer, report unsafe parameters, send
 * oversized or truncated messages. It decodes the client's messages with the
 * package's own FrontendDecoder and lets each test answer them. It supports
 * only the startup phase.
 */
type Script = (socket: Socket, message: FrontendMessage, decoder: FrontendDecoder) => void;

const servers: Server[] = [];
const sockets: Socket[] = [];

const fakeBackend = async (script: Script, opts: { sslAnswer?: Buffer } = {}): Promise<number> => {
  const server = createServer((socket) => {
    sockets.push(socket);
    const decoder = new FrontendDecoder();
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      decoder.write(chunk, (m) => {
        if (m.type === 'SSLRequest') {
          socket.write(opts.sslAnswer ?? backend.encryptionResponse(false));
          decoder.negotiationAnswered();
          return;
        }
        script(socket, m, decoder);
      });
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
};

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const opts = (port: number, extra: Partial<ConnectBackendOptions> = {}): ConnectBackendOptions => ({
  host: '127.0.0.1',
  port,
  user: 'u',
  password: 'p',
  tls: { mode: 'disable' },
  connectTimeoutMs: 5000,
  ...extra,
});

const failure = async (p: Promise<unknown>): Promise<AppError> =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as AppError,
  );

const ready = (): Buffer =>
  Buffer.concat([
    backend.parameterStatus('client_encoding', 'UTF8'),
    backend.parameterStatus('standard_conforming_strings', 'on'),
    backend.backendKeyData(10, Buffer.from([1, 2, 3, 4])),
    backend.readyForQuery('I'),
  ]);

/** Answers SASL with a syntactically valid server-first-message, then runs `final`. */
const scramScript =
  (final: (socket: Socket) => void): Script =>
  (socket, m) => {
    if (m.type === 'StartupMessage') socket.write(backend.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']));
    if (m.type !== 'AuthenticationResponse') return;
    const initial = readSASLInitialResponse(m.body);
    if (initial.ok) {
      expect(initial.value.mechanism).toBe('SCRAM-SHA-256');
      const clientNonce = /r=([^,]+)/.exec(initial.value.data?.toString() ?? '')?.[1] ?? '';
      socket.write(backend.authenticationSASLContinue(Buffer.from(`r=${clientNonce}server,s=c2FsdHNhbHQ=,i=4096`)));
      return;
    }
    final(socket);
  };

describe('connectBackend against a dishonest or broken server', () => {
  it('returns bytes that followed ReadyForQuery as leftover', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.write(Buffer.concat([backend.authenticationOk(), ready(), backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' })]));
    });
    const conn = await connectBackend(opts(port));
    expect(conn.authMethod).toBe('trust');
    expect(conn.backendKey).toEqual({ processId: 10, secretKey: Buffer.from([1, 2, 3, 4]) });
    expect(conn.leftover.equals(backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }))).toBe(true);
    conn.socket.destroy();
  });

  it('refuses a server that skips the SCRAM server signature (AuthenticationOk without SASLFinal)', async () => {
    const port = await fakeBackend(scramScript((socket) => socket.write(Buffer.concat([backend.authenticationOk(), ready()]))));
    const err = await failure(connectBackend(opts(port)));
    expect(err.code).toBe('PG_BACKEND_AUTH_FAILED');
    expect(err.message).toMatch(/skipped SCRAM/);
  });

  it('refuses a wrong SCRAM server signature', async () => {
    const port = await fakeBackend(
      scramScript((socket) => socket.write(backend.authenticationSASLFinal(Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`)))),
    );
    const err = await failure(connectBackend(opts(port)));
    expect(err.code).toBe('PG_BACKEND_AUTH_FAILED');
    expect(err.message).toMatch(/signature/);
  });

  it('refuses a downgrade to cleartext when only SCRAM is allowed, without sending the password', async () => {
    const seen: FrontendMessage[] = [];
    const port = await fakeBackend((socket, m) => {
      seen.push(m);
      if (m.type === 'StartupMessage') socket.write(backend.authenticationCleartextPassword());
    });
    const err = await failure(connectBackend(opts(port, { authMethods: ['scram-sha-256'] })));
    expect(err.code).toBe('PG_BACKEND_AUTH_FAILED');
    expect(seen.map((m) => m.type)).toEqual(['StartupMessage']);
  });

  it('refuses an unsupported method (GSSAPI)', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 7]));
    });
    expect((await failure(connectBackend(opts(port)))).code).toBe('PG_BACKEND_AUTH_FAILED');
  });

  it('refuses bytes pipelined after the SSL answer (CVE-2021-23222)', async () => {
    const port = await fakeBackend(() => undefined, { sslAnswer: Buffer.concat([Buffer.from('S'), backend.authenticationOk()]) });
    expect((await failure(connectBackend(opts(port, { tls: { mode: 'require' } })))).code).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('ends the connection when the server reports an unsafe client_encoding', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.write(Buffer.concat([backend.authenticationOk(), backend.parameterStatus('client_encoding', 'SQL_ASCII'), ready()]));
    });
    expect((await failure(connectBackend(opts(port)))).code).toBe('PG_UNSAFE_PARAMETER_CHANGE');
  });

  it('refuses an oversized startup message before buffering it', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.write(Buffer.from([0x45, 0x7f, 0, 0, 0]));
    });
    expect((await failure(connectBackend(opts(port)))).code).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('refuses ReadyForQuery before authentication', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.write(backend.readyForQuery('I'));
    });
    expect((await failure(connectBackend(opts(port)))).code).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('reports a server that closes mid-startup as PG_BACKEND_CONNECTION_LOST', async () => {
    const port = await fakeBackend((socket, m) => {
      if (m.type === 'StartupMessage') socket.end(backend.authenticationOk());
    });
    expect((await failure(connectBackend(opts(port)))).code).toBe('PG_BACKEND_CONNECTION_LOST');
  });

  it('refuses startup parameters the caller may not pass', async () => {
    await expect(connectBackend(opts(1, { params: { options: '-c x=y' } }))).rejects.toThrow(RangeError);
    await expect(connectBackend(opts(1, { params: { client_encoding: 'LATIN1' } }))).rejects.toThrow(RangeError);
  });
});
