/**
 * Terminal prompts: a visible line (username) and a hidden one (password). The
 * hidden prompt puts the terminal in raw mode so nothing typed is echoed,
 * handles backspace, Ctrl-U, Ctrl-C and arrow-key escape sequences itself, and
 * always restores the terminal.
 */
import { StringDecoder } from 'node:string_decoder';
import { CliError, EXIT } from './errors';

/** A readable stream that may be a terminal (process.stdin, or a fake in tests). */
export interface InputStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?: (mode: boolean) => unknown;
}

/** Where prompts and output go. */
export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

const interrupted = (): CliError => new CliError('interrupted', EXIT.INTERRUPTED);

/**
 * Reads characters from `input` until `onChar` says the answer is complete.
 * Cleans up its listeners and pauses the stream afterwards.
 */
const collect = (input: InputStream, onChar: (ch: string, finish: (err?: Error) => void) => void): Promise<void> =>
  new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      input.pause();
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      for (const ch of text) {
        if (settled) return;
        onChar(ch, finish);
      }
    };
    const onEnd = (): void => finish(new CliError('no answer: the input ended', EXIT.ERROR));
    const onError = (err: Error): void => finish(err);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });

/** Asks a question and reads one line, echoed as typed (the terminal does the editing). */
export const promptLine = async (question: string, input: InputStream, output: OutputStream): Promise<string> => {
  output.write(question);
  let answer = '';
  await collect(input, (ch, finish) => {
    if (ch === '\n' || ch === '\r') finish();
    else if (ch === '\u0003') finish(interrupted());
    else answer += ch;
  });
  return answer.trim();
};

/**
 * Asks for a secret without echoing it: raw mode for the duration, restored
 * afterwards whatever happens. Needs a terminal.
 */
export const promptHidden = async (question: string, input: InputStream, output: OutputStream): Promise<string> => {
  if (!input.isTTY || typeof input.setRawMode !== 'function') {
    throw new CliError('cannot ask for a password: the input is not a terminal (use --password-stdin)');
  }
  let chars: string[] = [];
  // 0: normal; 1: after ESC; 2: inside a CSI/SS3 sequence (skipped up to its final byte).
  let escape = 0;
  // Raw mode first, then the prompt: whatever is typed once the prompt shows is never echoed.
  input.setRawMode(true);
  try {
    output.write(question);
    await collect(input, (ch, finish) => {
      const code = ch.codePointAt(0) ?? 0;
      if (escape === 1) {
        escape = ch === '[' || ch === 'O' ? 2 : 0;
        return;
      }
      if (escape === 2) {
        if (code >= 0x40 && code <= 0x7e) escape = 0;
        return;
      }
      switch (ch) {
        case '\r':
        case '\n':
          finish();
          return;
        case '\u0003': // Ctrl-C
          finish(interrupted());
          return;
        case '\u0004': // Ctrl-D: end of input on an empty line, else accept
          if (chars.length === 0) finish(new CliError('no password given', EXIT.ERROR));
          else finish();
          return;
        case '\u007f': // backspace (DEL)
        case '\b':
          chars = chars.slice(0, -1);
          return;
        case '\u0015': // Ctrl-U: erase the line
          chars = [];
          return;
        case '\u001b':
          escape = 1;
          return;
        default:
          if (code >= 0x20) chars.push(ch);
      }
    });
  } finally {
    input.setRawMode(false);
    output.write('\n');
  }
  return chars.join('');
};

/**
 * Reads all of `input` (for `--password-stdin`), up to `maxBytes`, without the
 * final line break.
 */
export const readAllInput = async (input: InputStream, maxBytes = 64 * 1024): Promise<string> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buf.length;
    if (size > maxBytes) throw new CliError(`the standard input is larger than ${maxBytes} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
};
