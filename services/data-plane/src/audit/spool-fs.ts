import { writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** The part of a file handle the spool uses. */
export interface SpoolFileHandle {
  /** Positional write; may write fewer bytes than asked (the spool loops). */
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  /** Positional write on the calling thread, for `written` durability; may write fewer bytes than asked. */
  writeSync?(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** Positional read; returns fewer bytes at end of file. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** fdatasync(2): the data and the metadata needed to read it back (size) reach the disk. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The file-system operations the spool needs, so tests can count fsyncs and
 * inject failures. {@link nodeSpoolFs} is the real one.
 */
export interface SpoolFs {
  /** mkdir -p. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  /** `wx` creates a new file and fails if it exists; `r` reads; `r+` reads and writes. */
  open(path: string, flags: 'wx' | 'r' | 'r+'): Promise<SpoolFileHandle>;
  readFile(path: string): Promise<Buffer>;
  /** Appends `data` to the file, creating it when absent (no fsync). */
  appendFile(path: string, data: Uint8Array): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync(2) of a directory, so a file created or removed in it survives a crash. */
  syncDir(path: string): Promise<void>;
}

const writeAt = async (
  fh: fsp.FileHandle,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<{ bytesWritten: number }> => {
  const { bytesWritten } = await fh.write(buffer, offset, length, position);
  return { bytesWritten };
};

/** The real file system (node:fs/promises). */
export const nodeSpoolFs: SpoolFs = {
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  readdir: (path) => fsp.readdir(path),
  open: async (path, flags) => {
    const fh = await fsp.open(path, flags);
    return {
      write: (buffer, offset, length, position) => writeAt(fh, buffer, offset, length, position),
      writeSync: (buffer, offset, length, position) => writeSync(fh.fd, buffer, offset, length, position),
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      datasync: () => fh.datasync(),
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
  readFile: (path) => fsp.readFile(path),
  appendFile: (path, data) => fsp.appendFile(path, data),
  unlink: (path) => fsp.unlink(path),
  syncDir: async (path) => {
    const fh = await fsp.open(path, 'r');
    try {
      await fh.sync();
    } catch (err) {
      // Some file systems cannot fsync a directory; there is nothing more to do there.
      if (!hasCode(err, 'EINVAL') && !hasCode(err, 'ENOTSUP') && !hasCode(err, 'EISDIR')) throw err;
    } finally {
      await fh.close();
    }
  },
};

/** Whether `err` is a Node system error with this `code` (ENOENT, ENOSPC…). */
export const hasCode = (err: unknown, code: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;

/** The system error code of `err`, if it has one (for log fields). */
export const errorCode = (err: unknown): string | undefined => {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
};
