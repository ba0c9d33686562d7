import { AppError } from '@pa/kit';
import { serialize } from 'pg-protocol';
import { type BackendMessage } from 'pg-protocol/dist/messages';
import { Parser } from 'pg-protocol/dist/parser';
import * as backend from './backend-builders';
import * as frontend from './frontend-builders';
import { FrontendDecoder } from './frontend-decoder';
import type { FrontendMessage } from './frontend-messages';

// Expected bytes are written out from the layouts on the protocol's message
// formats page: type byte, Int32 length (counting itself), body.
const hex = (b: Buffer): string => b.toString('hex');
const h = (...parts: string[]): string => parts.join('').replace(/\s+/g, '');
const s = (text: string): string => Buffer.from(`${text}\0`, 'utf8').toString('hex');

const parseBackend = (bytes: Buffer): BackendMessage[] => {
  const out: BackendMessage[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  return out;
};

describe('backend message builders (proxy → client)', () => {
  it.each<[string, Buffer, string]>([
    ['AuthenticationOk', backend.authenticationOk(), h('52', '00000008', '00000000')],
    ['AuthenticationCleartextPassword', backend.authenticationCleartextPassword(), h('52', '00000008', '00000003')],
    ['AuthenticationMD5Password', backend.authenticationMD5Password(Buffer.from([1, 2, 3, 4])), h('52', '0000000c', '00000005', '01020304')],
    ['AuthenticationSASL', backend.authenticationSASL(['SCRAM-SHA-256']), h('52', '00000017', '0000000a', s('SCRAM-SHA-256'), '00')],
    ['AuthenticationSASLContinue', backend.authenticationSASLContinue(Buffer.from('r=a')), h('52', '0000000b', '0000000b', '723d61')],
    ['AuthenticationSASLFinal', backend.authenticationSASLFinal(Buffer.from('v=x')), h('52', '0000000b', '0000000c', '763d78')],
    ['ParameterStatus', backend.parameterStatus('client_encoding', 'UTF8'), h('53', '00000019', s('client_encoding'), s('UTF8'))],
    ['BackendKeyData', backend.backendKeyData(1234, Buffer.from([0xde, 0xad, 0xbe, 0xef])), h('4b', '0000000c', '000004d2', 'deadbeef')],
    ['ReadyForQuery I', backend.readyForQuery('I'), h('5a', '00000005', '49')],
    ['ReadyForQuery T', backend.readyForQuery('T'), h('5a', '00000005', '54')],
    ['ReadyForQuery E', backend.readyForQuery('E'), h('5a', '00000005', '45')],
    ['CommandComplete', backend.commandComplete('SELECT 1'), h('43', '0000000d', s('SELECT 1'))],
    ['EmptyQueryResponse', backend.emptyQueryResponse(), h('49', '00000004')],
    ['ParseComplete', backend.parseComplete(), h('31', '00000004')],
    ['BindComplete', backend.bindComplete(), h('32', '00000004')],
    ['CloseComplete', backend.closeComplete(), h('33', '00000004')],
    ['NoData', backend.noData(), h('6e', '00000004')],
    [
      'ErrorResponse',
      backend.errorResponse({ severity: 'ERROR', code: '42501', message: 'denied', detail: 'd', hint: 'h' }),
      h('45', '00000028', '53', s('ERROR'), '56', s('ERROR'), '43', s('42501'), '4d', s('denied'), '44', s('d'), '48', s('h'), '00'),
    ],
    [
      'NoticeResponse',
      backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }),
      h('4e', '00000020', '53', s('NOTICE'), '56', s('NOTICE'), '43', s('00000'), '4d', s('hi'), '00'),
    ],
    [
      'RowDescription',
      backend.rowDescription([{ name: 'a', typeOid: 25 }]),
      h('54', '0000001a', '0001', s('a'), '00000000', '0000', '00000019', 'ffff', 'ffffffff', '0000'),
    ],
    ['DataRow', backend.dataRow(['ab', null, Buffer.from([0])]), h('44', '00000015', '0003', '00000002', '6162', 'ffffffff', '00000001', '00')],
    ['NegotiateProtocolVersion', backend.negotiateProtocolVersion(0, ['_pq_.x']), h('76', '00000013', '00000000', '00000001', s('_pq_.x'))],
    ['encryption answer S', backend.encryptionResponse(true), '53'],
    ['encryption answer N', backend.encryptionResponse(false), '4e'],
  ])('%s is byte-exact', (_name, built, expected) => {
    expect(hex(built)).toBe(expected);
  });

  it('builds frames that pg-protocol (an independent parser) reads back', () => {
    const bytes = Buffer.concat([
      backend.authenticationOk(),
      backend.parameterStatus('server_version', '18.0'),
      backend.backendKeyData(7, Buffer.from([0, 0, 0, 9])),
      backend.rowDescription([{ name: 'n', typeOid: 23, typeSize: 4 }]),
      backend.dataRow(['42']),
      backend.commandComplete('SELECT 1'),
      backend.errorResponse({ severity: 'FATAL', code: '08P01', message: 'bad', position: 3 }),
      backend.readyForQuery('T'),
    ]);
    const msgs = parseBackend(bytes);
    expect(msgs.map((m) => m.name)).toEqual([
      'authenticationOk', 'parameterStatus', 'backendKeyData', 'rowDescription', 'dataRow', 'commandComplete', 'error', 'readyForQuery',
    ]);
    expect(msgs[1]).toMatchObject({ parameterName: 'server_version', parameterValue: '18.0' });
    expect(msgs[2]).toMatchObject({ processID: 7, secretKey: 9 });
    expect(msgs[3]).toMatchObject({ fieldCount: 1, fields: [{ name: 'n', dataTypeID: 23, dataTypeSize: 4, format: 'text' }] });
    expect(msgs[4]).toMatchObject({ fields: ['42'] });
    expect(msgs[5]).toMatchObject({ text: 'SELECT 1' });
    expect(msgs[6]).toMatchObject({ severity: 'FATAL', code: '08P01', message: 'bad', position: '3' });
    expect(msgs[7]).toMatchObject({ status: 'T' });
  });

  it('builds an ErrorResponse from an AppError with the registry SQLSTATE, never the cause', () => {
    const err = new AppError('POLICY_DENIED', {
      cause: new Error('internal detail 10.0.0.1'),
      details: [{ path: 'stmt', message: 'DELETE is not allowed' }],
      meta: { hint: 'Ask for a grant.' },
    });
    const [m] = parseBackend(backend.errorResponseFromAppError(err));
    expect(m).toMatchObject({ name: 'error', severity: 'ERROR', code: '42501', message: 'Denied by policy.', detail: 'stmt: DELETE is not allowed', hint: 'Ask for a grant.' });
    expect(backend.errorResponseFromAppError(err).toString('latin1')).not.toContain('10.0.0.1');
    const [fatal] = parseBackend(backend.errorResponseFromAppError(new AppError('PG_PROTOCOL_VIOLATION'), 'FATAL'));
    expect(fatal).toMatchObject({ severity: 'FATAL', code: '08P01' });
  });

  it('refuses inputs that would break framing', () => {
    expect(() => backend.commandComplete('a\0b')).toThrow(RangeError);
    expect(() => backend.errorResponse({ severity: 'ERROR', code: '4250', message: 'x' })).toThrow(RangeError);
    expect(() => backend.backendKeyData(1, Buffer.alloc(3))).toThrow(RangeError);
    expect(() => backend.authenticationMD5Password(Buffer.alloc(5))).toThrow(RangeError);
  });

  it('grows its buffer for large messages', () => {
    const big = 'x'.repeat(100_000);
    const [m] = parseBackend(backend.dataRow([big, big]));
    expect(m).toMatchObject({ fields: [big, big] });
  });
});

describe('frontend message builders (proxy → backend)', () => {
  it.each<[string, Buffer, string]>([
    ['StartupMessage', frontend.startupMessage({ user: 'u', database: 'd' }), h('0000001b', '00030000', s('user'), s('u'), s('database'), s('d'), '00')],
    ['StartupMessage 3.2', frontend.startupMessage(new Map([['user', 'u']]), 2), h('00000010', '00030002', s('user'), s('u'), '00')],
    ['SSLRequest', frontend.sslRequest(), h('00000008', '04d2162f')],
    ['GSSENCRequest', frontend.gssEncRequest(), h('00000008', '04d21630')],
    ['CancelRequest', frontend.cancelRequest(99, Buffer.from([1, 2, 3, 4])), h('00000010', '04d2162e', '00000063', '01020304')],
    ['PasswordMessage', frontend.passwordMessage('pw'), h('70', '00000007', s('pw'))],
    ['SASLInitialResponse', frontend.saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,')), h('70', '00000019', s('SCRAM-SHA-256'), '00000003', '6e2c2c')],
    ['SASLInitialResponse without data', frontend.saslInitialResponse('M', null), h('70', '0000000a', s('M'), 'ffffffff')],
    ['SASLResponse', frontend.saslResponse(Buffer.from('c=biws')), h('70', '0000000a', '633d62697773')],
    ['Query', frontend.query('SELECT 1'), h('51', '0000000d', s('SELECT 1'))],
    ['Sync', frontend.sync(), h('53', '00000004')],
    ['Flush', frontend.flush(), h('48', '00000004')],
    ['Terminate', frontend.terminate(), h('58', '00000004')],
  ])('%s is byte-exact', (_name, built, expected) => {
    expect(hex(built)).toBe(expected);
  });

  it('matches pg-protocol’s serializer (the one node-postgres uses)', () => {
    // pg-protocol appends client_encoding=UTF8 to every startup packet.
    expect(frontend.startupMessage({ user: 'u', database: 'd', client_encoding: 'UTF8' }).equals(serialize.startup({ user: 'u', database: 'd' }))).toBe(true);
    expect(frontend.query("SELECT 'ü'").equals(serialize.query("SELECT 'ü'"))).toBe(true);
    expect(frontend.passwordMessage('secret').equals(serialize.password('secret'))).toBe(true);
    expect(frontend.saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')).equals(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'))).toBe(true);
    expect(frontend.saslResponse(Buffer.from('c=biws,r=x,p=y')).equals(serialize.sendSCRAMClientFinalMessage('c=biws,r=x,p=y'))).toBe(true);
    expect(frontend.sslRequest().equals(serialize.requestSsl())).toBe(true);
    expect(frontend.sync().equals(serialize.sync())).toBe(true);
    expect(frontend.terminate().equals(serialize.end())).toBe(true);
    const key = Buffer.alloc(4);
    key.writeInt32BE(123456);
    expect(frontend.cancelRequest(42, key).equals(serialize.cancel(42, 123456))).toBe(true);
  });

  it('builds frames the strict frontend decoder accepts', () => {
    const msgs: FrontendMessage[] = [];
    const d = new FrontendDecoder();
    const bytes = Buffer.concat([
      frontend.startupMessage({ user: 'u' }),
      frontend.passwordMessage('pw'),
      frontend.query('SELECT 1'),
      frontend.sync(),
      frontend.flush(),
      frontend.terminate(),
    ]);
    expect(d.write(bytes, (m) => msgs.push(m))).toBeNull();
    expect(msgs.map((m) => m.type)).toEqual(['StartupMessage', 'AuthenticationResponse', 'Query', 'Sync', 'Flush', 'Terminate']);
  });
});
