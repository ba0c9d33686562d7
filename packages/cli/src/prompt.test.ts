import { PassThrough } from 'node:stream';
import { CliError } from './errors';
import { promptHidden, promptLine, readAllInput, type InputStream } from './prompt';

/** A fake terminal: a stream with isTTY and a raw-mode switch that records its calls. */
const fakeTty = (): InputStream & PassThrough & { rawCalls: boolean[] } => {
  const s = new PassThrough() as PassThrough & InputStream & { rawCalls: boolean[] };
  s.isTTY = true;
  s.rawCalls = [];
  s.setRawMode = (mode: boolean) => {
    s.rawCalls.push(mode);
    return s;
  };
  return s;
};

const sink = (): { write: (t: string) => boolean; text: () => string } => {
  let buf = '';
  return { write: (t) => ((buf += t), true), text: () => buf };
};

describe('promptHidden', () => {
  it('reads a password in raw mode without echoing it, then restores the terminal', async () => {
    const tty = fakeTty();
    const out = sink();
    const answer = promptHidden('Password: ', tty, out);
    tty.write('s3cr');
    tty.write('et!\r');
    await expect(answer).resolves.toBe('s3cret!');
    expect(tty.rawCalls).toEqual([true, false]);
    expect(out.text()).toBe('Password: \n');
    expect(out.text()).not.toContain('s3cr');
  });

  it('handles backspace, Ctrl-U, arrow keys and multi-byte characters', async () => {
    const tty = fakeTty();
    const answer = promptHidden('P: ', tty, sink());
    tty.write('abX\u007fc'); // backspace removes X
    tty.write('\u001b[D\u001b[C'); // left, right: ignored
    tty.write('junk\u0015'); // Ctrl-U clears everything so far
    tty.write(Buffer.from('pä'));
    tty.write(Buffer.from('ß\n'));
    await expect(answer).resolves.toBe('päß');
  });

  it('treats Ctrl-C as an interruption (exit 130) and still restores the terminal', async () => {
    const tty = fakeTty();
    const answer = promptHidden('P: ', tty, sink());
    tty.write('abc\u0003');
    await expect(answer).rejects.toMatchObject({ exitCode: 130 });
    expect(tty.rawCalls).toEqual([true, false]);
  });

  it('refuses when the input is not a terminal', async () => {
    const notTty = new PassThrough();
    await expect(promptHidden('P: ', notTty, sink())).rejects.toThrow(/--password-stdin/);
  });

  it('ends on Ctrl-D on an empty line', async () => {
    const tty = fakeTty();
    const answer = promptHidden('P: ', tty, sink());
    tty.write('\u0004');
    await expect(answer).rejects.toBeInstanceOf(CliError);
  });
});

describe('promptLine and readAllInput', () => {
  it('reads one echoed line', async () => {
    const tty = fakeTty();
    const out = sink();
    const answer = promptLine('Username: ', tty, out);
    tty.write(' alice \n');
    await expect(answer).resolves.toBe('alice');
    expect(tty.rawCalls).toEqual([]);
    expect(out.text()).toBe('Username: ');
  });

  it('reads stdin whole, dropping one final line break', async () => {
    const s = new PassThrough();
    s.end('pass word\n');
    await expect(readAllInput(s)).resolves.toBe('pass word');
    const big = new PassThrough();
    big.end('x'.repeat(20));
    await expect(readAllInput(big, 10)).rejects.toThrow(/larger than 10 bytes/);
  });
});
