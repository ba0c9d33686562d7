/**
 * Builds one or more protocol frames into a single buffer. Sizes are computed
 * up front by the callers where cheap; otherwise the buffer grows by doubling.
 * Internal to this package.
 */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;
  private frameStart = -1;

  constructor(initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Starts a typed frame: the type byte and a length placeholder. */
  begin(type: number): this {
    this.ensure(5);
    this.buf[this.pos] = type;
    this.frameStart = this.pos + 1;
    this.pos += 5;
    return this;
  }

  /** Starts an untyped (startup-phase) frame: a length placeholder only. */
  beginUntyped(): this {
    this.ensure(4);
    this.frameStart = this.pos;
    this.pos += 4;
    return this;
  }

  /** Writes the length word of the frame begun last. */
  end(): this {
    this.buf.writeInt32BE(this.pos - this.frameStart, this.frameStart);
    this.frameStart = -1;
    return this;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf[this.pos] = v & 0xff;
    this.pos += 1;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** A NUL-terminated UTF-8 string (a NUL inside `s` is refused: it would cut the string). */
  cstring(s: string): this {
    if (s.includes('\0')) throw new RangeError('A protocol string cannot contain NUL.');
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(n + 1);
    this.buf.write(s, this.pos, n, 'utf8');
    this.pos += n;
    this.buf[this.pos] = 0;
    this.pos += 1;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** The bytes written so far, as a buffer of exactly that size. */
  finish(): Buffer {
    return this.pos === this.buf.length ? this.buf : Buffer.from(this.buf.subarray(0, this.pos));
  }
}
