import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { Protocol, timestampFromDate } from '@pa/contracts';
import { GrpcCallError } from '../errors';
import { FakeControlPlane } from '../testing/fake-control-plane';
import { discoverGrpc, isExpiredGrpcToken, isRetryableGrantError, toGrantView, toGrpcCallError } from './grant-client';
import { normalizeServer, RestClient } from './rest-client';

describe('normalizeServer', () => {
  it.each([
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080'],
    ['https://pa.example.com/api/v1', 'https://pa.example.com'],
    ['127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['localhost:8080', 'http://localhost:8080'],
    ['pa.example.com', 'https://pa.example.com'],
    ['https://example.com/pa/', 'https://example.com/pa'],
  ])('%s → %s', (input, out) => expect(normalizeServer(input)).toBe(out));
  it('refuses other schemes', () => expect(() => normalizeServer('ftp://x')).toThrow(/http:\/\/ or https:\/\//));
});

describe('discoverGrpc', () => {
  let cp: FakeControlPlane;
  beforeEach(async () => {
    cp = await FakeControlPlane.start();
  });
  afterEach(() => cp.close());

  it('reads GET /api/v1/info, replacing a wildcard host by the REST host', async () => {
    cp.grpc = { url: '0.0.0.0:9090', tls: true };
    await expect(discoverGrpc(new RestClient(cp.url))).resolves.toEqual({ address: '127.0.0.1:9090', tls: true });
    cp.grpc = { url: 'grpc.example.com:443', tls: true };
    await expect(discoverGrpc(new RestClient(cp.url))).resolves.toEqual({ address: 'grpc.example.com:443', tls: true });
  });

  it('explains a control plane without the discovery endpoint', async () => {
    await expect(discoverGrpc(new RestClient(cp.url))).rejects.toThrow(/does not say where its grant service is/);
  });
});

describe('grant messages and errors', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  const base = {
    grantToken: 'a.b.c',
    grantId: 'grt_1',
    expiresAt: timestampFromDate(new Date(now + 60_000)),
    protocol: Protocol.POSTGRES,
    tunnelUrls: ['http://n1:7000'],
    connectionId: 'con_1',
    connectionName: 'db',
    sessionId: 'ses_1',
    sessionEndsAt: undefined,
    renewAt: timestampFromDate(new Date(now + 40_000)),
  };

  it('converts a grant, defaulting renew_at to two thirds of its life', () => {
    expect(toGrantView(base, now)).toMatchObject({ protocol: 'postgres', renewAt: new Date(now + 40_000), sessionEndsAt: null });
    expect(toGrantView({ ...base, renewAt: undefined }, now).renewAt).toEqual(new Date(now + 40_000));
  });

  it.each([
    [{ ...base, tunnelUrls: [] }, 'no data-plane node is available'],
    [{ ...base, grantToken: '' }, 'unusable grant'],
    [{ ...base, protocol: Protocol.UNSPECIFIED }, 'upgrade pa'],
  ])('refuses an unusable grant (%#)', (grant, message) => {
    expect(() => toGrantView(grant, now)).toThrow(message);
  });

  it('reads the AppError code from pa-error-code metadata', () => {
    const md = new Metadata();
    md.set('pa-error-code', 'GRANT_REVOKED');
    const err = toGrpcCallError(Object.assign(new Error('x'), { code: GrpcStatus.UNAUTHENTICATED, details: 'The grant has been revoked.', metadata: md }) as ServiceError);
    expect(err).toMatchObject({ grpcCode: GrpcStatus.UNAUTHENTICATED, code: 'GRANT_REVOKED', detail: 'The grant has been revoked.' });
    const bare = toGrpcCallError(Object.assign(new Error('x'), { code: GrpcStatus.UNAVAILABLE, details: 'No connection established', metadata: new Metadata() }) as ServiceError);
    expect(bare.code).toBe('UNAVAILABLE');
  });

  it.each([
    [GrpcStatus.UNAVAILABLE, 'UNAVAILABLE', true, false],
    [GrpcStatus.UNAVAILABLE, 'DATABASE_UNAVAILABLE', true, false],
    [GrpcStatus.RESOURCE_EXHAUSTED, 'RATE_LIMITED', true, false],
    [GrpcStatus.UNAUTHENTICATED, 'GRANT_REVOKED', false, false],
    [GrpcStatus.PERMISSION_DENIED, 'POLICY_DENIED', false, false],
    [GrpcStatus.UNAUTHENTICATED, 'AUTH_USER_DISABLED', false, false],
    [GrpcStatus.UNAUTHENTICATED, 'AUTH_TOKEN_EXPIRED', false, true],
  ])('status %i %s: retryable %s, fixed by a fresh token %s', (grpc, code, retryable, refresh) => {
    const err = new GrpcCallError(grpc, code, 'x');
    expect(isRetryableGrantError(err)).toBe(retryable);
    expect(isExpiredGrpcToken(err)).toBe(refresh);
  });
});
