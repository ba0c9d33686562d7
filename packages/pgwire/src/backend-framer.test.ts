import fc from 'fast-check';
import * as backend from './backend-builders';
import {
  BackendFramer,
  type BackendFrame,
  readAuthentication,
  readBackendKeyData,
  readCommandComplete,
  readErrorResponse,
  readNegotiateProtocolVersion,
  readParameterStatus,
  readReadyForQuery,
} from './backend-framer';
import { CappedBackendParser } from './capped-backend-parser';

const stream = Buffer.concat([
  backend.authenticationOk(),
  backend.parameterStatus('client_encoding', 'UTF8'),
  backend.backendKeyData(77, Buffer.from([1, 2, 3, 4])),
  backend.readyForQuery('I'),
  backend.rowDescription([{ name: 'x', typeOid: 25 }]),
  backend.dataRow(['a'.repeat(300)]),
  backend.dataRow([null]),
  backend.commandComplete('SELECT 2'),
  backend.errorResponse({ severity: 'ERROR', code: '42501', message: 'no' }),
  backend.negotiateProtocolVersion(0, ['_pq_.a']),
  backend.readyForQuery('E'),
]);

type Seen = { type: string; length: number; end: number; raw: string | null };
const frame = (chunks: Buffer[], opts = {}): { frames: Seen[]; error: string | null; forwarded: string } => {
  const f = new BackendFramer(opts);
  const frames: Seen[] = [];
  let error: string | null = null;
  let offset = 0;
  for (const c of chunks) {
    const e = f.push(c, (fr: BackendFrame) =>
      frames.push({ type: String.fromCharCode(fr.type), length: fr.length, end: offset + fr.end, raw: fr.raw ? fr.raw.toString('hex') : null }),
    );
    offset += c.length;
    if (e) {
      error = e.message;
      break;
    }
  }
  return { frames, error, forwarded: Buffer.concat(chunks).toString('hex') };
};

describe('BackendFramer', () => {
  it('reports every boundary, collects only inspected types, and copies nothing in one chunk', () => {
    const f = new BackendFramer();
    const frames: BackendFrame[] = [];
    expect(f.push(stream, (fr) => frames.push(fr))).toBeNull();
    expect(frames.map((fr) => String.fromCharCode(fr.type)).join('')).toBe('RSKZTDDCEvZ');
    expect(frames.filter((fr) => fr.raw).map((fr) => String.fromCharCode(fr.type)).join('')).toBe('RSKZCEvZ');
    expect(frames.at(-1)?.end).toBe(stream.length);
    for (const fr of frames) if (fr.raw) expect(fr.raw.buffer).toBe(stream.buffer);
    expect(f.isAtBoundary).toBe(true);
  });

  it('gives the same boundaries and bodies for every two-way split and byte by byte', () => {
    const whole = frame([stream]);
    for (let i = 1; i < stream.length; i += 1) expect(frame([stream.subarray(0, i), stream.subarray(i)])).toEqual(whole);
    expect(frame([...stream].map((b) => Buffer.from([b])))).toEqual(whole);
  });

  it('reads the inspected bodies', () => {
    const bodies: BackendFrame[] = [];
    new BackendFramer().push(stream, (fr) => fr.body && bodies.push(fr));
    const [r, s, k, z, c, e, v, z2] = bodies.map((b) => b.body as Buffer);
    expect(readAuthentication(r as Buffer)).toMatchObject({ ok: true, value: { code: 0 } });
    expect(readParameterStatus(s as Buffer)).toEqual({ ok: true, value: { name: 'client_encoding', value: 'UTF8' } });
    const key = readBackendKeyData(k as Buffer);
    expect(key.ok && key.value.processId).toBe(77);
    expect(readReadyForQuery(z as Buffer)).toEqual({ ok: true, value: 'I' });
    expect(readCommandComplete(c as Buffer)).toEqual({ ok: true, value: 'SELECT 2' });
    expect(readErrorResponse(e as Buffer)).toMatchObject({ ok: true, value: { severity: 'ERROR', code: '42501', message: 'no' } });
    expect(readNegotiateProtocolVersion(v as Buffer)).toEqual({ ok: true, value: { newestMinor: 0, unrecognizedOptions: ['_pq_.a'] } });
    expect(readReadyForQuery(z2 as Buffer)).toEqual({ ok: true, value: 'E' });
    expect(readReadyForQuery(Buffer.from('X')).ok).toBe(false);
    expect(readBackendKeyData(Buffer.from([0, 0, 0, 1, 9])).ok).toBe(false);
  });

  it('does not buffer DataRow bodies (memory stays flat for huge rows)', () => {
    const f = new BackendFramer();
    const header = Buffer.from([0x44, 0x10, 0, 0, 0]); // DataRow of 256 MiB
    const spy = jest.spyOn(Buffer, 'allocUnsafe');
    try {
      expect(f.push(header, () => undefined)).toBeNull();
      for (const [size] of spy.mock.calls) expect(size).toBeLessThan(1024);
    } finally {
      spy.mockRestore();
    }
    expect(f.isAtBoundary).toBe(false);
  });

  it.each<[string, Buffer, RegExp]>([
    ['an unknown type', Buffer.from([0x78, 0, 0, 0, 4]), /Unknown/],
    ['a length below 4', Buffer.from([0x44, 0, 0, 0, 3]), /length/],
    ['a negative length', Buffer.from([0x44, 0xff, 0xff, 0xff, 0xff]), /length/],
    ['a ReadyForQuery of length 6', Buffer.from([0x5a, 0, 0, 0, 6, 0x49, 0]), /length/],
    ['an inspected message over its cap', Buffer.concat([Buffer.from([0x45, 0, 0x20, 0, 0])]), /length/],
    ['a BackendKeyData with a 300-byte key', Buffer.from([0x4b, 0, 0, 0x01, 0x38]), /length/],
  ])('refuses %s', (_name, bytes, message) => {
    const r = frame([bytes]);
    expect(r.error).toMatch(message);
  });

  it('never throws and never buffers beyond its caps on arbitrary bytes', () => {
    const spy = jest.spyOn(Buffer, 'allocUnsafe');
    try {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), (bytes, cut) => {
          spy.mockClear();
          const b = Buffer.from(bytes);
          const at = b.length ? cut % b.length : 0;
          const r1 = frame([b], { maxInspectedLength: 256 });
          const r2 = frame([b.subarray(0, at), b.subarray(at)], { maxInspectedLength: 256 });
          expect(r2).toEqual(r1);
          for (const [size] of spy.mock.calls) expect(size).toBeLessThanOrEqual(257);
        }),
        { numRuns: 1000 },
      );
    } finally {
      spy.mockRestore();
    }
  });
});

describe('CappedBackendParser', () => {
  it('parses with pg-protocol across splits', () => {
    const names: string[] = [];
    const p = new CappedBackendParser();
    for (const b of stream.subarray(0, stream.length - 15)) expect(p.parse(Buffer.from([b]), (m) => names.push(m.name))).toBeNull();
    expect(names).toEqual(['authenticationOk', 'parameterStatus', 'backendKeyData', 'readyForQuery', 'rowDescription', 'dataRow', 'dataRow', 'commandComplete', 'error']);
  });

  it('refuses a length over the cap before pg-protocol would buffer it', () => {
    const p = new CappedBackendParser({ maxMessageLength: 1000 });
    const err = p.parse(Buffer.from([0x44, 0x7f, 0xff, 0xff, 0xff]), () => undefined);
    expect(err?.code).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('turns a malformed body into a violation instead of an exception', () => {
    const p = new CappedBackendParser();
    // A RowDescription announcing 5 fields in a 2-byte body.
    const err = p.parse(Buffer.from([0x54, 0, 0, 0, 6, 0, 5]), () => undefined);
    expect(err?.code).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const err = new CappedBackendParser({ maxMessageLength: 512 }).parse(Buffer.from(bytes), () => undefined);
        expect(err === null || err.code === 'PG_BACKEND_PROTOCOL_VIOLATION').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
