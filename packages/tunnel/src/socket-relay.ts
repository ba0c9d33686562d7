import { Socket, type SocketConstructorOpts } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * A byte relay between two streams that reads plain TCP sockets into reusable
 * buffers instead of letting Node.js allocate one per read.
 *
 * `a.pipe(b)` costs, per read, a fresh 64 KiB allocation (shrunk to the bytes
 * read, then garbage), a Readable-stream push and a 'data' event; at bulk
 * rates the allocations alone keep the garbage collector busy. Here a socket's
 * reads go through `net.Socket`'s `onread` option: the kernel copies straight
 * into a buffer we own, and the callback writes it on.
 *
 * Two kinds of read buffer, so that idle sockets cost nothing:
 * - **shared** (64 KiB, one for the whole thread): every socket starts on it.
 *   A chunk read into it is copied out before it is written (the next read,
 *   of any socket, reuses the memory), which is what Node.js does anyway.
 * - **private** (256 KiB, per socket): a socket whose read filled the shared
 *   buffer is moving bulk data; it reads into a buffer of its own, written on
 *   without a copy. While a write of it is still in flight the next read gets
 *   a fresh buffer. A small read (< 16 KiB), or a quiet spell seen by
 *   `idle()`, puts the socket back on the shared buffer.
 *
 * Only plain TCP (and IPC) sockets that are open, readable, not ended and have
 * nothing waiting to be written can be read this way; `onread` is a
 * constructor option, so such a socket is *adopted*: a new `net.Socket` takes
 * over its handle (`relay.a` / `relay.b`), bytes the old one had buffered are
 * sent first, and the two are tied together (destroying either destroys the
 * other; the old one emits 'close' when the new one has closed, so a server's
 * connection count stays right). Other streams (TLS sockets) are relayed with
 * 'data' events and the same backpressure `pipe()` applies.
 *
 * Either way: backpressure (reading stops while the other side has more than
 * 512 KiB queued), and an end on one side is passed on as an end on the other
 * (half-close), as `pipe()` does. Errors and closes are the caller's to handle
 * on `relay.a` and `relay.b`.
 */
export interface SocketRelay {
  /** The stream now carrying side a: `a` itself, or the socket that adopted it. Listen and destroy on this one. */
  readonly a: Duplex;
  readonly b: Duplex;
  /** Puts sides that read nothing since the last call back on the shared buffer (frees their private buffers). */
  idle(): void;
  /** Where each side's next read lands: the shared buffer, a private one, or a stream's own reads (not adopted). */
  bufferKinds(): { a: BufferKind; b: BufferKind };
}

export type BufferKind = 'shared' | 'private' | 'stream';

export interface SocketRelayHooks {
  /** Called for every chunk relayed: `from` is the side it was read from. */
  onBytes?(from: 'a' | 'b', bytes: number): void;
}

export const SHARED_READ_BYTES = 64 * 1024;
export const PRIVATE_READ_BYTES = 256 * 1024;
/** A private-buffer read smaller than this puts the socket back on the shared buffer. */
const SMALL_READ_BYTES = 16 * 1024;
/** Stop reading a side while the other has this much queued. */
const PAUSE_AT_BYTES = 512 * 1024;

const shared = Buffer.allocUnsafe(SHARED_READ_BYTES);

/** The private symbol under which `net.Socket` keeps its current `onread` buffer (so a dropped buffer can be freed). */
const userBufferSymbol = (s: Socket): symbol | undefined => Object.getOwnPropertySymbols(s).find((k) => k.description === 'kBuffer');

interface StreamHandle {
  useUserBuffer(buf: Uint8Array): void;
}

/** True when `s` is a plain (not TLS) socket in a state whose handle can be handed over. */
export const canAdopt = (s: Duplex): s is Socket => {
  if (!(s instanceof Socket) || (s as Socket & { encrypted?: boolean }).encrypted) return false;
  const handle = (s as unknown as { _handle: Partial<StreamHandle> | null })._handle;
  const name = (handle as { constructor?: { name?: string } } | null)?.constructor?.name;
  return (
    handle != null &&
    (name === 'TCP' || name === 'Pipe') &&
    typeof handle.useUserBuffer === 'function' &&
    !s.connecting &&
    !s.destroyed &&
    !(s as unknown as { _readableState: { ended: boolean } })._readableState.ended &&
    s.writableLength === 0 &&
    !s.writableEnded
  );
};

/** One direction's reader: which buffer the socket's next read lands in. */
class Reader {
  buf: Buffer = shared;
  readSinceIdle = false;

  /** The read callback's view of the bytes just read, safe to hand to a write. */
  take(n: number): Buffer {
    this.readSinceIdle = true;
    if (this.buf === shared) {
      const chunk = Buffer.from(shared.subarray(0, n));
      if (n === shared.length) this.buf = Buffer.allocUnsafe(PRIVATE_READ_BYTES);
      return chunk;
    }
    const chunk = this.buf.subarray(0, n);
    if (n < SMALL_READ_BYTES) this.buf = shared;
    return chunk;
  }

  /** The adopted socket that reads through this reader; null when the side is not adopted (stream reads). */
  socket: Socket | null = null;

  /** After the write: the private buffer is still referenced by it, so the next read needs another. */
  written(inFlight: boolean, chunk: Buffer): void {
    if (inFlight && this.buf !== shared && chunk.buffer === this.buf.buffer) this.buf = Buffer.allocUnsafe(PRIVATE_READ_BYTES);
  }

  idle(): void {
    const s = this.socket;
    if (!this.readSinceIdle && this.buf !== shared && s && !s.destroyed) {
      const handle = (s as unknown as { _handle: StreamHandle | null })._handle;
      if (handle) {
        handle.useUserBuffer(shared);
        this.buf = shared;
        const key = userBufferSymbol(s);
        if (key) (s as unknown as Record<symbol, unknown>)[key] = shared;
      }
    }
    this.readSinceIdle = false;
  }
}

/**
 * Starts relaying between `a` and `b` (both are expected to be paused or not
 * yet read; bytes already buffered in them are relayed first).
 */
export const relaySockets = (a: Duplex, b: Duplex, hooks: SocketRelayHooks = {}): SocketRelay => {
  const readers = { a: new Reader(), b: new Reader() };
  const sides: { a: Duplex; b: Duplex } = { a, b };
  const backlog: { a: Buffer[]; b: Buffer[] } = { a: [], b: [] };

  const other = (side: 'a' | 'b'): 'a' | 'b' => (side === 'a' ? 'b' : 'a');

  for (const side of ['a', 'b'] as const) {
    const old = sides[side];
    if (!canAdopt(old)) continue;
    const reader = readers[side];
    old.pause();
    for (let c: unknown = old.read(); c !== null; c = old.read()) backlog[side].push(c as Buffer);
    const handle = (old as unknown as { _handle: StreamHandle | null })._handle;
    (old as unknown as { _handle: StreamHandle | null })._handle = null;
    const fresh = new Socket({
      handle,
      allowHalfOpen: true,
      pauseOnCreate: true,
      onread: {
        buffer: () => reader.buf,
        callback: (n: number) => onRead(side, n),
      },
    } as unknown as SocketConstructorOpts);
    reader.socket = fresh;
    sides[side] = fresh;
    // Tie the two: destroying the old one destroys the new one; the old one
    // closes (and its server counts it closed) once the new one has.
    const oldDestroy = old.destroy.bind(old);
    old.destroy = (err?: Error): Socket => {
      fresh.destroy(err);
      return oldDestroy();
    };
    fresh.once('close', () => old.destroy());
  }

  const onRead = (from: 'a' | 'b', n: number): boolean => {
    const reader = readers[from];
    const dst = sides[other(from)];
    const chunk = reader.take(n);
    hooks.onBytes?.(from, n);
    const ok = dst.write(chunk);
    reader.written(dst.writableLength > 0, chunk);
    if (!ok && dst.writableLength >= PAUSE_AT_BYTES && !dst.destroyed) {
      dst.once('drain', () => readers[from].socket?.resume());
      return false;
    }
    return true;
  };

  for (const from of ['a', 'b'] as const) {
    const src = sides[from];
    const to = other(from);
    src.once('end', () => sides[to].end());
    if (readers[from].socket) continue;
    src.on('data', (chunk: Buffer) => {
      hooks.onBytes?.(from, chunk.length);
      if (!sides[to].write(chunk)) src.pause();
    });
    sides[to].on('drain', () => src.resume());
  }

  // Bytes the adopted sockets had already buffered go first, then reading starts.
  for (const from of ['a', 'b'] as const) {
    for (const chunk of backlog[from]) {
      hooks.onBytes?.(from, chunk.length);
      sides[other(from)].write(chunk);
    }
    sides[from].resume();
  }

  return {
    a: sides.a,
    b: sides.b,
    idle: () => {
      readers.a.idle();
      readers.b.idle();
    },
    bufferKinds: () => {
      const kind = (side: 'a' | 'b'): BufferKind => (readers[side].socket === null ? 'stream' : readers[side].buf === shared ? 'shared' : 'private');
      return { a: kind('a'), b: kind('b') };
    },
  };
};
