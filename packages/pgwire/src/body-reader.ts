import { isUtf8 } from 'node:buffer';

/** Thrown by {@link BodyReader} when a message body does not match its layout; caught inside this package. */
export class MalformedBody extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedBody';
  }
}

/**
 * A bounds-checked cursor over one message body. Every read checks the bytes
 * left; strings must be NUL-terminated inside the body and valid UTF-8 (as
 * PostgreSQL itself demands with client_encoding UTF8), so that the text the
 * proxy judges is the text the server will run.
 */
export class BodyReader {
  private pos = 0;

  /**
   * @param buf the body
   * @param strictUtf8 refuse strings that are not valid UTF-8 (client input);
   *   backend text is decoded leniently, as it may predate client_encoding.
   */
  constructor(
    private readonly buf: Buffer,
    private readonly strictUtf8 = true,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  int8(): number {
    if (this.pos + 1 > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf[this.pos] as number;
    this.pos += 1;
    return v;
  }

  uint16(): number {
    if (this.pos + 2 > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int16(): number {
    if (this.pos + 2 > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (this.pos + 4 > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A view of the next `n` bytes. */
  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new MalformedBody('Message is too short.');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A view of everything left. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new MalformedBody('String is not terminated.');
    const view = this.buf.subarray(this.pos, end);
    if (this.strictUtf8 && !isAscii(view) && !isUtf8(view)) throw new MalformedBody('String is not valid UTF-8.');
    this.pos = end + 1;
    return view.toString('utf8');
  }

  /** Fails unless the whole body was consumed (PostgreSQL's `pq_getmsgend`). */
  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedBody('Message has trailing bytes.');
  }
}

/** Short strings are checked byte by byte; isUtf8 has a call cost that dominates for names. */
const isAscii = (view: Buffer): boolean => {
  if (view.length > 64) return false;
  for (let i = 0; i < view.length; i += 1) if ((view[i] as number) > 0x7f) return false;
  return true;
};
