import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError, ERROR_CODES, errorCodes, parseConfig, toAppError } from './index';

describe('error registry', () => {
  const doc = readFileSync(join(__dirname, '../../../docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1] as string));

  it('documents every registered code in docs/errors.md', () => {
    const missing = errorCodes().filter((c) => !documented.has(c));
    expect(missing).toEqual([]);
  });

  it('documents no code that is not registered', () => {
    const unknown = [...documented].filter((c) => !(c in ERROR_CODES));
    expect(unknown).toEqual([]);
  });

  it('gives every code a five-character SQLSTATE and an HTTP error status', () => {
    for (const code of errorCodes()) {
      expect(ERROR_CODES[code].sqlstate).toMatch(/^[0-9A-Z]{5}$/);
      expect(ERROR_CODES[code].http).toBeGreaterThanOrEqual(400);
    }
  });
});

describe('AppError', () => {
  it('uses the registry message by default and sorts details by path', () => {
    const err = new AppError('VALIDATION_FAILED', {
      details: [
        { path: 'b', message: 'x' },
        { path: 'a', message: 'y' },
      ],
    });
    expect(err.message).toBe(ERROR_CODES.VALIDATION_FAILED.message);
    expect(err.details.map((d) => d.path)).toEqual(['a', 'b']);
  });

  it('wraps unknown errors as INTERNAL, keeping the cause', () => {
    const cause = new Error('db exploded at 10.0.0.1');
    const err = toAppError(cause);
    expect(err.code).toBe('INTERNAL');
    expect(err.message).not.toContain('10.0.0.1');
    expect(err.cause).toBe(cause);
  });
});

describe('parseConfig', () => {
  it('reports every problem at once with its path', () => {
    const schema = z.object({ http: z.object({ port: z.number() }), name: z.string() });
    let caught: unknown;
    try {
      parseConfig(schema, { http: { port: 'x' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AppError);
    const err = caught as AppError;
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.details.map((d) => d.path)).toEqual(['http.port', 'name']);
  });

  it('returns a deeply frozen object', () => {
    const cfg = parseConfig(z.object({ a: z.object({ b: z.number() }) }), { a: { b: 1 } });
    expect(Object.isFrozen(cfg.a)).toBe(true);
  });
});
