import { backend } from '@pa/pgwire';
import { BackendStream, type ActionEnd, type TrackedAction } from './backend-stream';

const action = (seq: number): TrackedAction => ({ seq, startedAt: 0n, tags: [], sqlstate: null, bytes: 0, done: false });
const poisonError = (token: string): Buffer => backend.errorResponse({ severity: 'ERROR', code: '42601', message: `syntax error at or near "${token}"`, position: 1 });
const denied = backend.errorResponse({ severity: 'ERROR', code: '42501', message: 'permission denied by policy: test' });

interface Run {
  readonly out: Buffer;
  readonly error: string | null;
  readonly ends: Array<[number, ActionEnd]>;
}

/** Feeds `input` cut at `cuts`, with `prepare` registering what the proxy forwarded. */
const feed = (input: Buffer, cuts: number[], prepare: (s: BackendStream) => void): Run => {
  const ends: Array<[number, ActionEnd]> = [];
  const s = new BackendStream({ onActionEnd: (a, how) => ends.push([a.seq, how]) });
  prepare(s);
  const out: Buffer[] = [];
  let error: string | null = null;
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut <= at) continue;
    const e = s.push(input.subarray(at, cut), out);
    at = cut;
    if (e) {
      error = e.code;
      break;
    }
  }
  return { out: Buffer.concat(out), error, ends };
};

/** Every way to cut `input` in two, and byte at a time. */
const splits = (input: Buffer): number[][] => [[], ...Array.from({ length: input.length - 1 }, (_, i) => [i + 1]), Array.from({ length: input.length }, (_, i) => i)];

describe('BackendStream', () => {
  it('forwards a result unchanged (same bytes for every split), and ends the query with its tags and rows', () => {
    const input = Buffer.concat([
      backend.rowDescription([{ name: 'a', typeOid: 23 }]),
      backend.dataRow(['1']),
      backend.dataRow(['2']),
      backend.commandComplete('SELECT 2'),
      backend.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' }),
      backend.parameterStatus('application_name', 'x'),
      backend.readyForQuery('I'),
    ]);
    for (const cuts of splits(input)) {
      let a: TrackedAction | null = null;
      const r = feed(input, cuts, (s) => s.forwardedQuery((a = action(1))));
      expect(r.out.equals(input)).toBe(true);
      expect(r.error).toBeNull();
      expect(r.ends).toEqual([[1, 'completed']]);
      expect(a).toMatchObject({ tags: ['SELECT 2'], done: true });
    }
  });

  it('replaces the error its poison statement provoked, for every split (simple protocol)', () => {
    const token = 'pa_refused_abc_1';
    const input = Buffer.concat([poisonError(token), backend.readyForQuery('E')]);
    for (const cuts of splits(input)) {
      const r = feed(input, cuts, (s) => s.forwardedPoison(token, denied, true));
      expect(r.out.equals(Buffer.concat([denied, backend.readyForQuery('E')]))).toBe(true);
    }
  });

  it('replaces the poison error after earlier results of the same extended unit', () => {
    const token = 'pa_refused_abc_2';
    const input = Buffer.concat([
      backend.parseComplete(),
      backend.bindComplete(),
      backend.commandComplete('INSERT 0 1'),
      poisonError(token),
      backend.readyForQuery('I'),
    ]);
    const expected = Buffer.concat([backend.parseComplete(), backend.bindComplete(), backend.commandComplete('INSERT 0 1'), denied, backend.readyForQuery('I')]);
    for (const cuts of splits(input)) {
      const r = feed(input, cuts, (s) => {
        s.forwardedExecute(action(7));
        s.forwardedPoison(token, denied, false);
        s.forwardedSync();
      });
      expect(r.out.equals(expected)).toBe(true);
      expect(r.ends).toEqual([[7, 'completed']]);
    }
  });

  it('lets a real error through and drops the poison the backend skipped (an earlier message of the unit failed)', () => {
    const token = 'pa_refused_abc_3';
    const real = backend.errorResponse({ severity: 'ERROR', code: '22012', message: 'division by zero' });
    const input = Buffer.concat([backend.parseComplete(), real, backend.readyForQuery('I'), backend.commandComplete('SELECT 1'), backend.readyForQuery('I')]);
    for (const cuts of splits(input)) {
      const r = feed(input, cuts, (s) => {
        s.forwardedExecute(action(1));
        s.forwardedPoison(token, denied, false);
        s.forwardedExecute(action(2));
        s.forwardedSync();
        s.forwardedQuery(action(3));
      });
      expect(r.out.equals(input)).toBe(true);
      expect(r.ends).toEqual([
        [1, 'failed'],
        [2, 'skipped'],
        [3, 'completed'],
      ]);
    }
  });

  it('does not mistake an error that merely contains a poison token for its own', () => {
    const token = 'pa_refused_abc_4';
    const lookalike = backend.errorResponse({ severity: 'ERROR', code: '42P01', message: `relation "${token}" does not exist` });
    const input = Buffer.concat([lookalike, backend.readyForQuery('I')]);
    const r = feed(input, [], (s) => s.forwardedPoison(token, denied, true));
    expect(r.out.equals(input)).toBe(true);
  });

  it('ends the session on an unsafe ParameterStatus, forwarding what came before and nothing of it (every split)', () => {
    const before = Buffer.concat([backend.dataRow(['1']), backend.commandComplete('SELECT 1')]);
    const input = Buffer.concat([before, backend.parameterStatus('client_encoding', 'LATIN1'), backend.readyForQuery('I')]);
    for (const cuts of splits(input)) {
      const r = feed(input, cuts, (s) => s.forwardedQuery(action(1)));
      expect(r.error).toBe('PG_UNSAFE_PARAMETER_CHANGE');
      expect(before.subarray(0, r.out.length).equals(r.out)).toBe(true);
      expect(r.out.includes(Buffer.from('LATIN1'))).toBe(false);
    }
    const off = feed(backend.parameterStatus('standard_conforming_strings', 'off'), [], () => undefined);
    expect(off).toMatchObject({ error: 'PG_UNSAFE_PARAMETER_CHANGE', out: Buffer.alloc(0) });
  });

  it('refuses messages a backend never sends after startup', () => {
    for (const m of [backend.authenticationOk(), backend.backendKeyData(1, Buffer.alloc(4))]) {
      expect(feed(m, [], () => undefined).error).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
    }
    expect(feed(backend.readyForQuery('I'), [], () => undefined).error).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
    expect(feed(Buffer.from([0x7e, 0, 0, 0, 4]), [], () => undefined).error).toBe('PG_BACKEND_PROTOCOL_VIOLATION');
  });

  it('tracks executions: completion, portal suspension, errors with SQLSTATE, transaction status and busy state', () => {
    const s = new BackendStream({ onActionEnd: () => undefined });
    const a = action(1);
    const b = action(2);
    s.forwardedExecute(a);
    s.forwardedExecute(b);
    s.forwardedSync();
    expect(s.isBusy).toBe(true);
    expect(s.pendingActions()).toEqual([a, b]);
    const out: Buffer[] = [];
    s.push(Buffer.concat([backend.dataRow(['x']), Buffer.from([0x73, 0, 0, 0, 4])]), out);
    expect(a.done).toBe(true);
    s.push(backend.errorResponse({ severity: 'ERROR', code: '23505', message: 'dup' }), out);
    expect(b).toMatchObject({ done: true, sqlstate: '23505' });
    s.push(backend.readyForQuery('E'), out);
    expect(s.transactionStatus).toBe('E');
    expect(s.isBusy).toBe(false);
    expect(a.bytes).toBeGreaterThan(0);
  });
});
