import {
  buildUpstreamHead,
  connectionTokens,
  filterRequestTrailers,
  filterResponseHeaders,
  filterResponseTrailers,
  isReservedCredentialHeader,
  requestHeadWithoutUpgrade,
  type UpstreamHeaderPlan,
} from './headers';

const plan: UpstreamHeaderPlan = { host: 'api.internal:8443', credential: { name: 'Authorization', lower: 'authorization', value: 'Bearer backend' }, judgeHeaders: false };
const buffers = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));

describe('buildUpstreamHead', () => {
  it('keeps end-to-end headers in order and appends Host, the credential and the request id last', () => {
    const r = buildUpstreamHead(['Host', 'localhost:8081', 'Accept', '*/*', 'X-Trace', 'a', 'X-Trace', 'b'], undefined, plan, 'tun_1.1');
    expect(r).toEqual({
      ok: true,
      headers: ['Accept', '*/*', 'X-Trace', 'a', 'X-Trace', 'b', 'host', 'api.internal:8443', 'Authorization', 'Bearer backend', 'x-pa-request-id', 'tun_1.1'],
      judged: undefined,
      hasBody: false,
    });
  });

  it.each([
    ['Connection', 'close'],
    ['Keep-Alive', 'timeout=5'],
    ['TE', 'trailers'],
    ['Trailer', 'X-Sum'],
    ['Transfer-Encoding', 'chunked'],
    ['Upgrade', 'h2c'],
    ['HTTP2-Settings', 'AAMAAABkAAQAAP__'],
    ['Expect', '100-continue'],
    ['Proxy-Authorization', 'Basic eA=='],
    ['Proxy-Connection', 'keep-alive'],
    ['X-PA-User', 'admin'],
    ['x-pa-request-id', 'forged'],
    ['Forwarded', 'for=1.2.3.4'],
    ['X-Forwarded-For', '1.2.3.4'],
    ['X-Forwarded-Host', 'evil'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Real-IP', '1.2.3.4'],
    ['authorization', 'Bearer client-forged'],
    ['AUTHORIZATION', 'Bearer client-forged'],
  ])('never forwards %s from the client', (name, value) => {
    const r = buildUpstreamHead(['Host', 'x', name, value, 'Accept', '*/*'], name.toLowerCase() === 'connection' ? value : undefined, plan, 'r');
    expect(r.ok && r.headers.slice(0, 2)).toEqual(['Accept', '*/*']);
    expect(r.ok && r.headers.filter((h) => h.toLowerCase() === name.toLowerCase()).length).toBe(name.toLowerCase() === 'authorization' || name.toLowerCase() === 'x-pa-request-id' ? 1 : 0);
  });

  it('drops the headers the client lists in Connection', () => {
    const r = buildUpstreamHead(['Host', 'x', 'Connection', 'keep-alive, X-Secret ,  x-other', 'X-Secret', '1', 'X-Other', '2', 'X-Kept', '3'], 'keep-alive, X-Secret ,  x-other', plan, 'r');
    expect(r.ok && r.headers.slice(0, 2)).toEqual(['X-Kept', '3']);
  });

  it('refuses a duplicate Host and header names with "_"', () => {
    expect(buildUpstreamHead(['Host', 'a', 'host', 'b'], undefined, plan, 'r')).toEqual({ ok: false, reason: 'duplicate Host header' });
    expect(buildUpstreamHead(['Host', 'a', 'X_User', 'b'], undefined, plan, 'r')).toMatchObject({ ok: false, reason: expect.stringContaining('X_User') as unknown });
  });

  it('says whether a body follows', () => {
    const head = (...h: string[]) => buildUpstreamHead(['Host', 'a', ...h], undefined, plan, 'r');
    expect(head('Content-Length', '0')).toMatchObject({ ok: true, hasBody: false });
    expect(head('Content-Length', '10')).toMatchObject({ ok: true, hasBody: true });
    expect(head('Transfer-Encoding', 'chunked')).toMatchObject({ ok: true, hasBody: true });
  });

  it('collects the forwarded client headers for policies with header conditions', () => {
    const r = buildUpstreamHead(['Host', 'a', 'Accept', 'a', 'accept', 'b', 'X-PA-User', 'z', 'Authorization', 'forged'], undefined, { ...plan, judgeHeaders: true }, 'r');
    expect(r.ok && r.judged).toEqual({ accept: ['a', 'b'] });
  });

  it('injects nothing when the connection has no credential', () => {
    const r = buildUpstreamHead(['Host', 'a', 'Authorization', 'Bearer user'], undefined, { ...plan, credential: null }, 'r');
    expect(r.ok && r.headers).toEqual(['Authorization', 'Bearer user', 'host', 'api.internal:8443', 'x-pa-request-id', 'r']);
  });
});

describe('filterResponseHeaders', () => {
  it('drops hop-by-hop and connection-listed headers and keeps the rest in order and case', () => {
    const raw = buffers('Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'X-Hop', '1', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Proxy-Authenticate', 'Basic', 'Upgrade', 'h2c', 'Trailer', 'X-Sum');
    expect(filterResponseHeaders(raw)).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  });

  it('passes the body length on', () => {
    expect(filterResponseHeaders(buffers('Content-Length', '12'))).toEqual(['Content-Length', '12']);
  });
});

describe('connectionTokens / isReservedCredentialHeader', () => {
  it('parses only header names out of Connection', () => {
    expect(connectionTokens(undefined)).toBeNull();
    expect(connectionTokens('keep-alive')).toBeNull();
    expect(connectionTokens('Upgrade, close')).toBeNull();
    expect([...(connectionTokens('close, X-A,x-b') ?? [])]).toEqual(['x-a', 'x-b']);
  });

  it('refuses credential header names that would break framing or collide with the proxy', () => {
    for (const n of ['host', 'content-length', 'transfer-encoding', 'connection', 'x-pa-user', 'proxy-authorization', 'x-forwarded-for']) expect(isReservedCredentialHeader(n)).toBe(true);
    for (const n of ['authorization', 'x-api-key', 'cookie']) expect(isReservedCredentialHeader(n)).toBe(false);
  });
});

describe('trailers', () => {
  it('forwards request trailers but not hop-by-hop, connection-listed, proxy-owned, forbidden, credential, "_" or judged names', () => {
    const raw = ['X-Sum', '1', 'TE', 'trailers', 'X-Listed', 'a', 'X-PA-User', 'admin', 'X-Forwarded-For', '6.6.6.6', 'Host', 'evil', 'Content-Type', 'text/html', 'Cookie', 'a=1'];
    const more = ['authorization', 'forged', 'X_User', 'admin', 'X-Tenant', '99', 'Server-Timing', 'x;dur=1'];
    const judging = { ...plan, judgeHeaders: true, judgedNames: new Set(['x-tenant']) };
    expect(filterRequestTrailers([...raw, ...more], 'keep-alive, X-Listed', judging)).toEqual(['X-Sum', '1', 'Server-Timing', 'x;dur=1']);
    expect(filterRequestTrailers(['X-Tenant', '99'], undefined, plan)).toEqual(['X-Tenant', '99']);
  });

  it('passes response trailers on as pairs, without hop-by-hop, connection-listed or forbidden names', () => {
    const raw = buffers('X-Sum', 'abc', 'Set-Cookie', 'a=1', 'Content-Length', '3', 'Keep-Alive', 'timeout=1', 'X-Listed', '1', 'Proxy-Authenticate', 'Basic', 'grpc-status', '0', 'grpc-status', '1');
    expect(filterResponseTrailers(raw, 'X-Listed')).toEqual([
      ['X-Sum', 'abc'],
      ['grpc-status', '0'],
      ['grpc-status', '1'],
    ]);
  });
});

describe('requestHeadWithoutUpgrade', () => {
  it('drops Upgrade, HTTP2-Settings and the Connection options naming them, and keeps everything else as read', () => {
    const raw = ['Host', 'a:1', 'Connection', 'Upgrade, HTTP2-Settings, X-Hop', 'Upgrade', 'h2c', 'HTTP2-Settings', 'AAMAAABk', 'Content-Length', '3', 'X-Hop', '1'];
    expect(requestHeadWithoutUpgrade('POST', '/api/x?a=1', '1.1', raw)).toBe('POST /api/x?a=1 HTTP/1.1\r\nHost: a:1\r\nConnection: X-Hop\r\nContent-Length: 3\r\nX-Hop: 1\r\n\r\n');
    expect(requestHeadWithoutUpgrade('GET', '/', '1.1', ['Host', 'a', 'Connection', 'upgrade', 'Upgrade', 'h2c'])).toBe('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  });
});
