import { crc32 } from 'node:zlib';
import { encodeRecord, probeRecord, RECORD_HEADER_BYTES, RECORD_MAGIC, scanRecords } from './record-codec';

const text = (b: Buffer): string => b.toString('utf8');
const asText = (payload: Buffer): string => text(payload);

describe('record framing', () => {
  it('lays out magic, length, CRC over length and payload, then the payload', () => {
    const rec = encodeRecord(Buffer.from('hello'));
    expect(rec.length).toBe(RECORD_HEADER_BYTES + 5);
    expect(rec.readUInt32BE(0)).toBe(RECORD_MAGIC);
    expect(rec.subarray(0, 4).toString('latin1')).toBe('PAR1');
    expect(rec.readUInt32BE(4)).toBe(5);
    expect(rec.readUInt32BE(8)).toBe(crc32(Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('hello')])) >>> 0);
    expect(text(rec.subarray(12))).toBe('hello');
  });

  it('reads back what it wrote', () => {
    const rec = encodeRecord(Buffer.from('{"a":1}'));
    const probe = probeRecord(rec, 0, 1024);
    expect(probe.kind).toBe('record');
    if (probe.kind === 'record') {
      expect(text(probe.payload)).toBe('{"a":1}');
      expect(probe.size).toBe(rec.length);
    }
  });

  it('detects a flipped bit at every byte of the record', () => {
    const rec = encodeRecord(Buffer.from('some audit payload'));
    for (let i = 0; i < rec.length; i += 1) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(rec);
        bad[i] = (bad[i] as number) ^ bit;
        expect(probeRecord(bad, 0, 1024).kind).not.toBe('record');
      }
    }
  });

  it('reports a record cut at any offset as incomplete, never as a record', () => {
    const rec = encodeRecord(Buffer.from('0123456789abcdef'));
    for (let cut = 1; cut < rec.length; cut += 1) {
      expect(probeRecord(rec.subarray(0, cut), 0, 1024).kind).toBe('incomplete');
    }
  });

  it('rejects zero and over-limit lengths', () => {
    const zero = Buffer.alloc(RECORD_HEADER_BYTES);
    zero.writeUInt32BE(RECORD_MAGIC, 0);
    zero.writeUInt32BE(crc32(Buffer.alloc(4)) >>> 0, 8);
    expect(probeRecord(zero, 0, 1024).kind).toBe('invalid');
    expect(probeRecord(encodeRecord(Buffer.alloc(100, 1)), 0, 99).kind).toBe('invalid');
    expect(probeRecord(Buffer.alloc(64), 0, 1024).kind).toBe('invalid');
  });
});

describe('scanRecords', () => {
  const recs = ['one', 'two', 'three'].map((s) => encodeRecord(Buffer.from(s)));

  it('finds every record and ends at the last one', () => {
    const buf = Buffer.concat(recs);
    const scan = scanRecords(buf, 1024, asText);
    expect(scan.records.map((r) => r.value)).toEqual(['one', 'two', 'three']);
    expect(scan.records.map((r) => r.offset)).toEqual([0, recs[0]!.length, recs[0]!.length + recs[1]!.length]);
    expect(scan.damaged).toEqual([]);
    expect(scan.validEnd).toBe(buf.length);
  });

  it('reports a torn tail at every cut through the last record', () => {
    const whole = Buffer.concat(recs);
    const lastStart = whole.length - recs[2]!.length;
    for (let cut = lastStart + 1; cut < whole.length; cut += 1) {
      const scan = scanRecords(whole.subarray(0, cut), 1024, asText);
      expect(scan.records.map((r) => r.value)).toEqual(['one', 'two']);
      expect(scan.validEnd).toBe(lastStart);
      expect(scan.damaged).toEqual([{ offset: lastStart, length: cut - lastStart }]);
    }
  });

  it('skips garbage between records and finds the ones after it', () => {
    const garbage = Buffer.from('PAR1 not a record \u0000\u0000\u0000 PA');
    const buf = Buffer.concat([recs[0]!, garbage, recs[1]!, Buffer.alloc(37), recs[2]!, Buffer.from('trailing junk')]);
    const scan = scanRecords(buf, 1024, asText);
    expect(scan.records.map((r) => r.value)).toEqual(['one', 'two', 'three']);
    expect(scan.damaged).toEqual([
      { offset: recs[0]!.length, length: garbage.length },
      { offset: recs[0]!.length + garbage.length + recs[1]!.length, length: 37 },
      { offset: buf.length - 'trailing junk'.length, length: 'trailing junk'.length },
    ]);
    expect(scan.validEnd).toBe(buf.length - 'trailing junk'.length);
  });

  it('treats a record its decoder rejects as damage', () => {
    const scan = scanRecords(Buffer.concat(recs), 1024, (p) => (text(p) === 'two' ? undefined : text(p)));
    expect(scan.records.map((r) => r.value)).toEqual(['one', 'three']);
    expect(scan.damaged).toEqual([{ offset: recs[0]!.length, length: recs[1]!.length }]);
  });

  it('never throws on random bytes', () => {
    for (let seed = 1; seed <= 50; seed += 1) {
      const buf = Buffer.alloc(512);
      let x = seed;
      for (let i = 0; i < buf.length; i += 1) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        buf[i] = x & 0xff;
      }
      const scan = scanRecords(buf, 1024, asText);
      expect(scan.records).toEqual([]);
      expect(scan.validEnd).toBe(0);
    }
  });
});
