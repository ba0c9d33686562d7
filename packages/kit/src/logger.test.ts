import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, newId, ID_PATTERN, REDACTED, redact } from './index';

describe('createLogger', () => {
  it('redacts secret keys at any depth and writes JSON with the service name', () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ service: 'test', transports: [new winston.transports.Stream({ stream })] });
    logger.info('User created.', { password: 'hunter2', nested: { Authorization: 'Bearer abc', ok: 1 }, list: [{ token: 't' }] });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0] as string);
    expect(rec.service).toBe('test');
    expect(rec.password).toBe(REDACTED);
    expect(rec.nested).toEqual({ Authorization: REDACTED, ok: 1 });
    expect(rec.list).toEqual([{ token: REDACTED }]);
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).not.toContain('Bearer abc');
  });
});

describe('newId', () => {
  it('is prefixed, well-formed and sorts by time', () => {
    const a = newId('usr', 1_000);
    const b = newId('usr', 2_000);
    expect(a).toMatch(ID_PATTERN);
    expect(a < b).toBe(true);
    expect(newId('usr')).not.toBe(newId('usr'));
  });

  it('stays unique and well-formed across refills of its random pool, within one millisecond', () => {
    const ids = Array.from({ length: 2_000 }, () => newId('evt', 5_000));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(ID_PATTERN);
    expect(new Set(ids.map((id) => id.slice(4, 14))).size).toBe(1);
  });
});

describe('redact', () => {
  it('keeps errors bounded: name, message, code, stack and cause only', () => {
    const err = Object.assign(new Error('boom', { cause: new Error('root') }), { code: '57P01', client: { huge: 'x'.repeat(10_000), password: 'p' } });
    const out = redact({ err }) as { err: Record<string, unknown> };
    expect(Object.keys(out.err).sort()).toEqual(['cause', 'code', 'message', 'name', 'stack']);
    expect(JSON.stringify(out)).not.toContain('xxxx');
  });
});
