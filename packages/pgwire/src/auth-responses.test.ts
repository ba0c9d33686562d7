import { readPasswordMessage, readSASLInitialResponse, readSASLResponse } from './auth-responses';
import * as frontend from './frontend-builders';

const body = (frame: Buffer): Buffer => frame.subarray(5);

describe('authentication response readers', () => {
  it('read what the frontend builders write', () => {
    expect(readPasswordMessage(body(frontend.passwordMessage('pw')))).toEqual({ ok: true, value: 'pw' });
    const initial = readSASLInitialResponse(body(frontend.saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x'))));
    expect(initial.ok && initial.value.mechanism).toBe('SCRAM-SHA-256');
    expect(initial.ok && initial.value.data?.toString()).toBe('n,,n=,r=x');
    expect(readSASLInitialResponse(body(frontend.saslInitialResponse('M', null)))).toEqual({ ok: true, value: { mechanism: 'M', data: null } });
    const resp = readSASLResponse(body(frontend.saslResponse(Buffer.from('c=biws'))));
    expect(resp.ok && resp.value.toString()).toBe('c=biws');
  });

  it.each([
    ['an unterminated password', () => readPasswordMessage(Buffer.from('pw'))],
    ['a password with trailing bytes', () => readPasswordMessage(Buffer.from('pw\0x'))],
    ['a SASL length past the end', () => readSASLInitialResponse(Buffer.from([0x4d, 0, 0, 0, 0, 9, 1]))],
    ['a SASL length below -1', () => readSASLInitialResponse(Buffer.from([0x4d, 0, 0xff, 0xff, 0xff, 0xfe]))],
    ['a SASL initial response with trailing bytes', () => readSASLInitialResponse(Buffer.from([0x4d, 0, 0, 0, 0, 0, 1]))],
  ])('refuse %s with PG_PROTOCOL_VIOLATION', (_name, read) => {
    const r = read();
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe('PG_PROTOCOL_VIOLATION');
  });
});
