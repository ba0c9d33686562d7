import fc from 'fast-check';
import { DEFAULT_FRONTEND_LIMITS, FrontendDecoder, type FrontendDecoderLimits } from './frontend-decoder';
import type { FrontendMessage } from './frontend-messages';

// Spec-layout helpers, written from the message formats page independently of
// the package's builders: Int32/Int16 big-endian, strings NUL-terminated.
const i32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};
const i16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
};
const str = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const typed = (type: string, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'latin1'), i32(body.length + 4), body]);
};
const untyped = (...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([i32(body.length + 4), body]);
};

const startup = untyped(i32(196608), str('user'), str('alice'), str('database'), str('app'), str('client_encoding'), str('UTF8'), Buffer.from([0]));

const normalFrames: Buffer[] = [
  typed('Q', str('SELECT 1; SELECT \'ü\'')),
  typed('P', str('s1'), str('SELECT $1::int, $2'), i16(2), i32(23), i32(0)),
  typed('B', str('p1'), str('s1'), i16(1), i16(1), i16(3), i32(4), Buffer.from([0, 0, 0, 7]), i32(-1), i32(0), i16(2), i16(0), i16(1)),
  typed('D', Buffer.from('P'), str('p1')),
  typed('E', str('p1'), i32(10)),
  typed('C', Buffer.from('S'), str('s1')),
  typed('H'),
  typed('S'),
  typed('F', i32(1598), i16(1), i16(0), i16(2), i32(3), Buffer.from('abc'), i32(-1), i16(1)),
  typed('d', Buffer.from('1\tone\n')),
  typed('c'),
  typed('f', str('client gave up')),
  typed('p', str('secret')),
  typed('Q', str('')),
  typed('X'),
];
const all = Buffer.concat([startup, ...normalFrames]);

/** Decodes chunks into a comparable description (raw bytes as hex, Buffers as hex). */
const run = (chunks: Buffer[], limits: Partial<FrontendDecoderLimits> = {}): { messages: unknown[]; error: string | null } => {
  const d = new FrontendDecoder(limits);
  const messages: unknown[] = [];
  let error: string | null = null;
  for (const c of chunks) {
    const e = d.write(c, (m) => messages.push(summarise(m)));
    if (e) {
      error = `${e.code}: ${e.message}`;
      break;
    }
  }
  return { messages, error };
};

const summarise = (m: FrontendMessage): unknown =>
  JSON.parse(
    JSON.stringify(m, (_k, v: unknown) => {
      if (v instanceof Map) return Object.fromEntries(v);
      if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
      return v;
    }),
  );

describe('FrontendDecoder', () => {
  it('decodes every message type with typed fields and raw frame bytes', () => {
    const msgs: FrontendMessage[] = [];
    const d = new FrontendDecoder();
    expect(d.write(all, (m) => msgs.push(m))).toBeNull();
    expect(msgs.map((m) => m.type)).toEqual([
      'StartupMessage', 'Query', 'Parse', 'Bind', 'Describe', 'Execute', 'Close', 'Flush', 'Sync',
      'FunctionCall', 'CopyData', 'CopyDone', 'CopyFail', 'AuthenticationResponse', 'Query', 'Terminate',
    ]);
    expect(Buffer.concat(msgs.map((m) => m.raw)).equals(all)).toBe(true);
    const [s, q, p, b, desc, e, c, , , f, cd, , cf, pw, eq] = msgs;
    expect(s).toMatchObject({ type: 'StartupMessage', protocolVersion: { major: 3, minor: 0 } });
    if (s?.type !== 'StartupMessage') throw new Error('unreachable');
    expect([...s.parameters]).toEqual([['user', 'alice'], ['database', 'app'], ['client_encoding', 'UTF8']]);
    expect(q).toMatchObject({ sql: "SELECT 1; SELECT 'ü'" });
    expect(p).toMatchObject({ name: 's1', sql: 'SELECT $1::int, $2', paramTypes: [23, 0] });
    if (b?.type !== 'Bind') throw new Error('unreachable');
    expect(b).toMatchObject({ portal: 'p1', statement: 's1', paramFormats: [1], resultFormats: [0, 1] });
    expect(b.params.map((v) => (v ? v.toString('hex') : v))).toEqual(['00000007', null, '']);
    expect(desc).toMatchObject({ target: 'P', name: 'p1' });
    expect(e).toMatchObject({ portal: 'p1', maxRows: 10 });
    expect(c).toMatchObject({ type: 'Close', target: 'S', name: 's1' });
    if (f?.type !== 'FunctionCall') throw new Error('unreachable');
    expect(f).toMatchObject({ functionOid: 1598, argFormats: [0], resultFormat: 1 });
    expect(f.args.map((v) => (v ? v.toString() : v))).toEqual(['abc', null]);
    if (cd?.type !== 'CopyData') throw new Error('unreachable');
    expect(cd.data.toString()).toBe('1\tone\n');
    expect(cf).toMatchObject({ message: 'client gave up' });
    if (pw?.type !== 'AuthenticationResponse') throw new Error('unreachable');
    expect(pw.body.toString('hex')).toBe(str('secret').toString('hex'));
    expect(eq).toMatchObject({ type: 'Query', sql: '' });
    expect(d.phase).toBe('normal');
    expect(d.bufferedBytes).toBe(0);
  });

  it('emits views into the input when a frame lies inside one chunk (no copy)', () => {
    const msgs: FrontendMessage[] = [];
    new FrontendDecoder().write(all, (m) => msgs.push(m));
    for (const m of msgs) expect(m.raw.buffer).toBe(all.buffer);
  });

  it('gives the same result for every two-way split', () => {
    const whole = run([all]);
    for (let i = 1; i < all.length; i += 1) {
      expect(run([all.subarray(0, i), all.subarray(i)])).toEqual(whole);
    }
  });

  it('gives the same result one byte at a time', () => {
    const whole = run([all]);
    const bytes = [...all].map((b) => Buffer.from([b]));
    expect(run(bytes)).toEqual(whole);
  });

  it('gives the same result for each message split at every offset, alone', () => {
    for (const frame of normalFrames) {
      const whole = run([startup, frame]);
      for (let i = 1; i < frame.length; i += 1) {
        expect(run([startup, frame.subarray(0, i), frame.subarray(i)])).toEqual(whole);
      }
    }
  });

  it('gives the same result for any random split (property)', () => {
    const whole = run([all]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 20 }), (cuts) => {
        const sorted = [...cuts].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const c of sorted) {
          chunks.push(all.subarray(prev, c));
          prev = c;
        }
        chunks.push(all.subarray(prev));
        expect(run(chunks)).toEqual(whole);
      }),
    );
  });

  it('reads protocol 3.x minor versions and leaves negotiation to the caller', () => {
    const msgs: FrontendMessage[] = [];
    const err = new FrontendDecoder().write(untyped(i32(0x00030002), str('user'), str('u'), str('_pq_.x'), str('1'), Buffer.from([0])), (m) => msgs.push(m));
    expect(err).toBeNull();
    expect(msgs[0]).toMatchObject({ type: 'StartupMessage', protocolVersion: { major: 3, minor: 2 } });
  });

  describe('startup negotiation', () => {
    const ssl = untyped(i32(80877103));
    const gss = untyped(i32(80877104));

    it('decodes SSLRequest and refuses bytes pipelined after it', () => {
      const msgs: FrontendMessage[] = [];
      const d = new FrontendDecoder();
      const err = d.write(Buffer.concat([ssl, startup]), (m) => msgs.push(m));
      expect(msgs.map((m) => m.type)).toEqual(['SSLRequest']);
      expect(err?.code).toBe('PG_PROTOCOL_VIOLATION');
      expect(err?.spec.sqlstate).toBe('08P01');
      expect(d.phase).toBe('failed');
    });

    it('refuses a byte that arrives before the answer, even in a later chunk', () => {
      const d = new FrontendDecoder();
      expect(d.write(ssl, () => undefined)).toBeNull();
      expect(d.phase).toBe('negotiating');
      expect(d.write(Buffer.from([0]), () => undefined)?.code).toBe('PG_PROTOCOL_VIOLATION');
    });

    it('continues with the StartupMessage once the answer was sent', () => {
      const msgs: FrontendMessage[] = [];
      const d = new FrontendDecoder();
      d.write(gss, (m) => msgs.push(m));
      d.negotiationAnswered();
      d.write(ssl, (m) => msgs.push(m));
      d.negotiationAnswered();
      expect(d.write(startup, (m) => msgs.push(m))).toBeNull();
      expect(msgs.map((m) => m.type)).toEqual(['GSSENCRequest', 'SSLRequest', 'StartupMessage']);
    });

    it('refuses a second SSLRequest', () => {
      const d = new FrontendDecoder();
      d.write(ssl, () => undefined);
      d.negotiationAnswered();
      expect(d.write(ssl, () => undefined)?.message).toMatch(/Repeated/);
    });

    it('decodes CancelRequest with a 4-byte and a 32-byte key, and nothing after it', () => {
      for (const key of [Buffer.from('abcd'), Buffer.alloc(32, 7)]) {
        const msgs: FrontendMessage[] = [];
        const d = new FrontendDecoder();
        expect(d.write(untyped(i32(80877102), i32(4242), key), (m) => msgs.push(m))).toBeNull();
        expect(msgs[0]).toMatchObject({ type: 'CancelRequest', processId: 4242 });
        if (msgs[0]?.type !== 'CancelRequest') throw new Error('unreachable');
        expect(msgs[0].secretKey.equals(key)).toBe(true);
        expect(d.phase).toBe('ended');
        expect(d.write(Buffer.from([1]), () => undefined)?.code).toBe('PG_PROTOCOL_VIOLATION');
      }
    });
  });

  describe('violations', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['startup length below 8', i32(7), /startup packet length/],
      ['startup length negative', i32(-1), /startup packet length/],
      ['startup over 10000 bytes', i32(10001), /startup packet length/],
      ['protocol 2.0', untyped(i32(0x00020000), Buffer.from([0])), /protocol version/],
      ['unterminated parameter list', untyped(i32(196608), str('user'), str('u')), /not terminated/],
      ['parameter without value', untyped(i32(196608), str('user'), Buffer.from([0])), /not terminated|trailing/],
      ['duplicate parameter', untyped(i32(196608), str('user'), str('a'), str('user'), str('b'), Buffer.from([0])), /Duplicate/],
      ['bytes after the terminator', untyped(i32(196608), str('user'), str('a'), Buffer.from([0, 1])), /trailing/],
      ['invalid UTF-8 in a parameter', untyped(i32(196608), str('user'), Buffer.from([0xc3, 0x28, 0]), Buffer.from([0])), /UTF-8/],
      ['SSLRequest with a body', untyped(i32(80877103), i32(0)), /encryption request length/],
      ['CancelRequest with a 3-byte key', untyped(i32(80877102), i32(1), Buffer.from('abc')), /CancelRequest length/],
      ['CancelRequest with a 257-byte key', untyped(i32(80877102), i32(1), Buffer.alloc(257)), /CancelRequest length/],
    ];
    it.each(cases)('refuses in startup: %s', (_name, bytes, message) => {
      const r = run([bytes]);
      expect(r.messages).toEqual([]);
      expect(r.error).toMatch(message);
    });

    const typedCases: [string, Buffer, RegExp][] = [
      ['unknown type', typed('Z'), /message type/],
      ['a NUL type byte', Buffer.from([0, 0, 0, 0, 4]), /message type/],
      ['length 3', Buffer.concat([Buffer.from('Q'), i32(3)]), /length/],
      ['negative length', Buffer.concat([Buffer.from('Q'), i32(-5)]), /length/],
      ['Sync with a body', typed('S', Buffer.from([0])), /length/],
      ['Terminate with a body', typed('X', Buffer.from([0])), /length/],
      ['Query without terminator', typed('Q', Buffer.from('SELECT 1')), /not terminated/],
      ['Query with trailing bytes', typed('Q', str('SELECT 1'), Buffer.from('x')), /trailing/],
      ['Query with invalid UTF-8', typed('Q', Buffer.from([0x53, 0xff, 0xfe, 0])), /UTF-8/],
      ['Query with an overlong UTF-8 sequence', typed('Q', Buffer.from([0x27, 0xc0, 0xa7, 0])), /UTF-8/],
      ['Parse with a short type list', typed('P', str(''), str('SELECT 1'), i16(2), i32(23)), /Parse parameter types/],
      ['Bind with length -2', typed('B', str(''), str(''), i16(0), i16(1), i32(-2), i16(0)), /parameter length/],
      ['Bind with a value past the end', typed('B', str(''), str(''), i16(0), i16(1), i32(100), Buffer.from('x'), i16(0)), /too short/],
      ['Bind with too many formats', typed('B', str(''), str(''), i16(-1), i16(0), i16(0)), /too short/],
      ['Describe with target X', typed('D', Buffer.from('X'), str('')), /target/],
      ['Close with trailing bytes', typed('C', Buffer.from('S'), str('a'), Buffer.from('b')), /trailing/],
      ['Execute without row limit', typed('E', str('')), /length/],
      ['FunctionCall with trailing bytes', typed('F', i32(1), i16(0), i16(0), i16(0), Buffer.from([1])), /trailing/],
    ];
    it.each(typedCases)('refuses after startup: %s', (_name, bytes, message) => {
      const r = run([startup, bytes]);
      expect(r.messages).toHaveLength(1);
      expect(r.error).toMatch(message);
    });

    it('applies per-type caps before buffering anything', () => {
      const limits = { maxQueryLength: 100, maxCopyDataLength: 50, maxStartupLength: 64 };
      expect(run([startup, typed('Q', str('x'.repeat(95)))], limits).error).toBeNull();
      expect(run([startup, typed('Q', str('x'.repeat(96)))], { ...limits, skipOversizedStatements: false }).error).toMatch(/length/);
      expect(run([startup, typed('B', str(''), str('s'), Buffer.alloc(100))], { ...limits, maxBindLength: 64, skipOversizedStatements: false }).error).toMatch(/length/);
      expect(run([startup, typed('B', str(''), str('s'), Buffer.alloc(100))], { ...limits, maxBindLength: 64 })).toEqual({
        messages: [expect.anything(), { type: 'OversizedStatement', messageType: 'Bind', length: 4 + 1 + 2 + 100, raw: '' }],
        error: null,
      });
      expect(run([startup, typed('d', Buffer.alloc(47))], limits).error).toMatch(/length/);
      // A header announcing a huge message is refused from the header alone.
      expect(run([startup, Buffer.concat([Buffer.from('Q'), i32(0x7fffffff)])]).error).toMatch(/length/);
      expect(run([untyped(i32(196608), str('user'), str('x'.repeat(60)), Buffer.from([0]))], limits).error).toMatch(/startup packet length/);
    });

    describe('a statement over the cap', () => {
      const limits = { maxQueryLength: 100 };
      const big = typed('Q', str('SELECT ' + 'x'.repeat(200)));
      const parse = typed('P', str('s1'), str('SELECT ' + 'y'.repeat(300)), Buffer.from([0, 0]));
      const after = typed('Q', str('SELECT 1'));

      it('is skipped unbuffered and reported, and the messages after it decode, at every split', () => {
        const whole = Buffer.concat([big, parse, after]);
        const expected = [
          { type: 'OversizedStatement', messageType: 'Query', length: big.length - 1, raw: '' },
          { type: 'OversizedStatement', messageType: 'Parse', length: parse.length - 1, raw: '' },
          run([startup, after]).messages[1],
        ];
        for (let cut = 0; cut <= whole.length; cut += 1) {
          const r = run([startup, whole.subarray(0, cut), whole.subarray(cut)], limits);
          expect(r.error).toBeNull();
          expect(r.messages.slice(1)).toEqual(expected);
        }
      });

      it('never holds its bytes', () => {
        const d = new FrontendDecoder(limits);
        d.write(startup, () => undefined);
        d.write(big.subarray(0, 150), () => undefined);
        expect(d.bufferedBytes).toBe(0);
      });

      it('past PostgreSQL\'s own 1 GiB limit is still a violation', () => {
        expect(run([startup, Buffer.concat([Buffer.from('Q'), i32(0x7fffffff)])], limits).error).toMatch(/length/);
      });
    });

    it('stays failed and emits nothing more', () => {
      const d = new FrontendDecoder();
      d.write(startup, () => undefined);
      const first = d.write(typed('Z'), () => undefined);
      const seen: FrontendMessage[] = [];
      expect(d.write(typed('S'), (m) => seen.push(m))).toBe(first);
      expect(seen).toEqual([]);
      expect(d.error).toBe(first);
    });

    it('stops at the first violation inside a chunk', () => {
      const r = run([Buffer.concat([startup, typed('S'), typed('Z'), typed('S')])]);
      expect(r.messages).toHaveLength(2);
      expect(r.error).toMatch(/message type/);
    });
  });

  describe('on arbitrary bytes (properties)', () => {
    const limits = { ...DEFAULT_FRONTEND_LIMITS, maxQueryLength: 4096, maxBindLength: 4096, maxCopyDataLength: 2048, maxFunctionCallLength: 4096 };
    const largestCap = Math.max(...Object.values(limits).filter((v): v is number => typeof v === 'number'));

    const splitArb = fc.tuple(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean());

    it('never throws, never over-reads, never allocates beyond its caps, and is split-invariant', () => {
      const allocUnsafe = jest.spyOn(Buffer, 'allocUnsafe');
      try {
        fc.assert(
          fc.property(splitArb, ([bytes, cuts, afterStartup]) => {
            const input = Buffer.concat([afterStartup ? startup : Buffer.alloc(0), Buffer.from(bytes)]);
            const points = [...new Set(cuts.map((c) => (input.length ? c % input.length : 0)))].sort((a, b) => a - b);
            const chunks: Buffer[] = [];
            let prev = 0;
            for (const p of points) {
              chunks.push(input.subarray(prev, p));
              prev = p;
            }
            chunks.push(input.subarray(prev));

            allocUnsafe.mockClear();
            const d = new FrontendDecoder(limits);
            const raws: Buffer[] = [];
            let error = null;
            for (const c of chunks) {
              error = d.write(c, (m) => raws.push(m.raw));
              expect(d.bufferedBytes).toBeLessThanOrEqual(largestCap + 1);
              if (error) break;
            }
            // Frames are exactly consecutive input bytes: nothing skipped, nothing read past.
            const consumed = Buffer.concat(raws);
            expect(consumed.equals(input.subarray(0, consumed.length))).toBe(true);
            if (error) {
              expect(error.code).toBe('PG_PROTOCOL_VIOLATION');
              expect(error.spec.sqlstate).toBe('08P01');
            }
            for (const [size] of allocUnsafe.mock.calls) expect(size).toBeLessThanOrEqual(largestCap + 1);
            // Same result as one chunk.
            expect(run(chunks, limits)).toEqual(run([input], limits));
          }),
          { numRuns: 1000 },
        );
      } finally {
        allocUnsafe.mockRestore();
      }
    });

    it('never throws on valid headers with random bodies', () => {
      const types = [...'QPBDECSHFXdcfp'];
      fc.assert(
        fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 64 }), (t, body) => {
          const r = run([startup, typed(t, Buffer.from(body))]);
          expect(r.error === null || /^PG_PROTOCOL_VIOLATION/.test(r.error)).toBe(true);
        }),
        { numRuns: 2000 },
      );
    });
  });
});
