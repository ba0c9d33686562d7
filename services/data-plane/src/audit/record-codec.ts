import { crc32 } from 'node:zlib';

/**
 * Record framing shared by segment files and ack files:
 *
 * ```
 * offset 0   u32 BE  magic 0x50415231 ("PAR1": format version 1)
 * offset 4   u32 BE  payload length N (1 ≤ N ≤ the reader's maximum)
 * offset 8   u32 BE  CRC-32 (IEEE, as zlib) over bytes 4..12+N (length and payload)
 * offset 12  N bytes payload
 * ```
 *
 * The magic lets a reader find the next record after a damaged region; the CRC
 * covers the length too, so a torn or flipped length is caught like a torn payload.
 */
export const RECORD_MAGIC = 0x50415231;
/** Bytes before the payload of every record. */
export const RECORD_HEADER_BYTES = 12;

const MAGIC_BYTES = Buffer.from([0x50, 0x41, 0x52, 0x31]);

/** Frames `payload` as one record. */
export const encodeRecord = (payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(RECORD_MAGIC, 0);
  out.writeUInt32BE(payload.length, 4);
  out.set(payload, RECORD_HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(RECORD_HEADER_BYTES), crc32(out.subarray(4, 8))) >>> 0, 8);
  return out;
};

/**
 * Frames a JSON text as one record, encoding it straight into the record
 * buffer (no intermediate copy). `byteLength` is `Buffer.byteLength(json)`.
 */
export const encodeJsonRecord = (json: string, byteLength: number): Buffer => {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + byteLength);
  out.writeUInt32BE(RECORD_MAGIC, 0);
  out.writeUInt32BE(byteLength, 4);
  out.write(json, RECORD_HEADER_BYTES, byteLength, 'utf8');
  out.writeUInt32BE(crc32(out.subarray(RECORD_HEADER_BYTES), crc32(out.subarray(4, 8))) >>> 0, 8);
  return out;
};

/** What lies at one offset of a buffer. */
export type RecordProbe =
  | { readonly kind: 'record'; readonly payload: Buffer; readonly size: number }
  /** A plausible header whose record runs past the end of the buffer. */
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid' };

/** Reads the record starting at `offset`, checking magic, length bounds and CRC. */
export const probeRecord = (buf: Buffer, offset: number, maxPayloadBytes: number): RecordProbe => {
  if (offset + RECORD_HEADER_BYTES > buf.length) {
    // A header cut short: incomplete when what is there could start a record.
    const have = buf.subarray(offset, Math.min(buf.length, offset + 4));
    return MAGIC_BYTES.subarray(0, have.length).equals(have) ? { kind: 'incomplete' } : { kind: 'invalid' };
  }
  if (buf.readUInt32BE(offset) !== RECORD_MAGIC) return { kind: 'invalid' };
  const length = buf.readUInt32BE(offset + 4);
  if (length === 0 || length > maxPayloadBytes) return { kind: 'invalid' };
  const end = offset + RECORD_HEADER_BYTES + length;
  if (end > buf.length) return { kind: 'incomplete' };
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, end);
  const crc = crc32(payload, crc32(buf.subarray(offset + 4, offset + 8))) >>> 0;
  if (crc !== buf.readUInt32BE(offset + 8)) return { kind: 'invalid' };
  return { kind: 'record', payload, size: RECORD_HEADER_BYTES + length };
};

/** One valid record found by {@link scanRecords}. */
export interface ScannedRecord<T> {
  /** Byte offset of the record's header in the scanned buffer. */
  readonly offset: number;
  /** Header plus payload bytes. */
  readonly size: number;
  readonly value: T;
}

/** A byte range that held no valid record. */
export interface DamagedRange {
  readonly offset: number;
  readonly length: number;
}

/** Result of scanning a whole file. */
export interface ScanResult<T> {
  readonly records: ScannedRecord<T>[];
  /** Ranges skipped because they held no valid record, in file order. */
  readonly damaged: DamagedRange[];
  /** End of the last valid record: where a torn tail starts, if there is one. */
  readonly validEnd: number;
}

/**
 * Scans `buf` for records. A region that does not decode (bad magic, CRC mismatch,
 * cut short, or a payload `decode` rejects by returning undefined) is skipped up to
 * the next offset where a valid record starts, and reported in `damaged`; the scan
 * never throws on bad input.
 */
export const scanRecords = <T>(
  buf: Buffer,
  maxPayloadBytes: number,
  decode: (payload: Buffer) => T | undefined,
): ScanResult<T> => {
  const records: ScannedRecord<T>[] = [];
  const damaged: DamagedRange[] = [];
  let offset = 0;
  let validEnd = 0;
  let damageStart = -1;
  while (offset < buf.length) {
    const probe = probeRecord(buf, offset, maxPayloadBytes);
    const value = probe.kind === 'record' ? decode(probe.payload) : undefined;
    if (probe.kind === 'record' && value !== undefined) {
      if (damageStart >= 0) damaged.push({ offset: damageStart, length: offset - damageStart });
      damageStart = -1;
      records.push({ offset, size: probe.size, value });
      offset += probe.size;
      validEnd = offset;
      continue;
    }
    if (damageStart < 0) damageStart = offset;
    const next = buf.indexOf(MAGIC_BYTES, offset + 1);
    offset = next < 0 ? buf.length : next;
  }
  if (damageStart >= 0) damaged.push({ offset: damageStart, length: buf.length - damageStart });
  return { records, damaged, validEnd };
};
