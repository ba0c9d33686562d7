/**
 * A GrantService (gRPC, from @pa/contracts) for the CLI's tests, on a real
 * grpc-js server at 127.0.0.1:0. It checks the access token in the call
 * metadata against the fake control plane, issues grants whose timing the
 * test chooses, records every call, and fails a call the way the real server
 * will: a gRPC status, the AppError code in `pa-error-code` metadata, and a
 * safe message in `details`.
 */
import { Metadata, Server, ServerCredentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { GrantServiceService, Protocol, timestampFromDate, type Grant, type GrantServiceServer } from '@pa/contracts';
import type { FakeControlPlane } from './fake-control-plane';

export interface RecordedGrantCall {
  method: 'issueGrant' | 'renewGrant';
  authorization: string;
  request: unknown;
}

/** A failure to answer with. */
export interface GrantFailure {
  grpcCode: GrpcStatus;
  code: string;
  message: string;
}

const PROTOCOL: Record<string, Protocol> = { postgres: Protocol.POSTGRES, http: Protocol.HTTP, tcp: Protocol.TCP };

const toServiceError = (f: GrantFailure): ServiceError => {
  const metadata = new Metadata();
  metadata.set('pa-error-code', f.code);
  return Object.assign(new Error(f.message), { code: f.grpcCode, details: f.message, metadata });
};

export class FakeGrantService {
  readonly calls: RecordedGrantCall[] = [];
  /** Tunnel URLs put in every grant. */
  tunnelUrls: string[] = [];
  /** Grant lifetime, and how long after issue the CLI is told to renew. */
  grantTtlMs = 60_000;
  renewAfterMs = 40_000;
  /** Absolute end of the session, counted from the first issue (null: none). */
  sessionTtlMs: number | null = null;
  /** Set to make the next calls fail. */
  issueFailure: GrantFailure | null = null;
  renewFailure: GrantFailure | null = null;
  /** Every grant token issued, in order. */
  readonly issuedTokens: string[] = [];

  private counter = 0;

  private constructor(
    private readonly server: Server,
    readonly address: string,
    private readonly cp: FakeControlPlane,
  ) {}

  /** Starts on 127.0.0.1:0; with `tls` (PEM certificate and key, for `localhost`) it serves TLS at `localhost:<port>`. */
  static async start(cp: FakeControlPlane, options: { tls?: { cert: string; key: string } } = {}): Promise<FakeGrantService> {
    const server = new Server();
    let svc: FakeGrantService | null = null;
    const impl: GrantServiceServer = {
      issueGrant: (call, callback) => {
        const self = svc as FakeGrantService;
        const denied = self.check('issueGrant', call.metadata, call.request);
        if (denied) return callback(denied, null);
        if (self.issueFailure) return callback(toServiceError(self.issueFailure), null);
        const known = cp.reachable.find((c) => c.name === call.request.connectionName);
        if (!known) return callback(toServiceError({ grpcCode: GrpcStatus.NOT_FOUND, code: 'CONNECTION_NOT_FOUND', message: 'No such connection.' }), null);
        callback(null, { grant: self.mint(String(known.name), String(known.protocol), `ses_${self.counter + 1}`, null) });
      },
      renewGrant: (call, callback) => {
        const self = svc as FakeGrantService;
        const denied = self.check('renewGrant', call.metadata, call.request);
        if (denied) return callback(denied, null);
        if (self.renewFailure) return callback(toServiceError(self.renewFailure), null);
        const current = call.request.current;
        const id = current?.$case === 'grantId' ? current.grantId : '';
        const previous = self.grants.get(id);
        if (!previous) return callback(toServiceError({ grpcCode: GrpcStatus.NOT_FOUND, code: 'GRANT_NOT_FOUND', message: 'No such grant.' }), null);
        callback(null, { grant: self.mint(previous.connectionName, previous.protocolName, previous.sessionId, previous.sessionEndsAt) });
      },
    };
    server.addService(GrantServiceService, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        '127.0.0.1:0',
        options.tls ? ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }]) : ServerCredentials.createInsecure(),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
    // With TLS, dialled by name: grpc-js sends the host as SNI, and an IP there makes Node print a deprecation warning.
    svc = new FakeGrantService(server, `${options.tls ? 'localhost' : '127.0.0.1'}:${port}`, cp);
    return svc;
  }

  private readonly grants = new Map<string, { connectionName: string; protocolName: string; sessionId: string; sessionEndsAt: Date | null }>();

  private check(method: RecordedGrantCall['method'], metadata: Metadata, request: unknown): ServiceError | null {
    const authorization = String(metadata.get('authorization')[0] ?? '');
    this.calls.push({ method, authorization, request });
    const auth = this.cp.authenticate(authorization);
    if ('userId' in auth) return null;
    const body = auth.body as { code: string; detail: string };
    return toServiceError({ grpcCode: GrpcStatus.UNAUTHENTICATED, code: body.code, message: body.detail });
  }

  private mint(connectionName: string, protocolName: string, sessionId: string, sessionEndsAt: Date | null): Grant {
    this.counter += 1;
    const now = Date.now();
    const ends = sessionEndsAt ?? (this.sessionTtlMs !== null ? new Date(now + this.sessionTtlMs) : null);
    const expiresAt = new Date(Math.min(now + this.grantTtlMs, ends ? ends.getTime() : Infinity));
    const grantId = `grt_${this.counter}`;
    // Shaped like a compact JWS so the tunnel handshake accepts it.
    const grantToken = `eyJhbGciOiJFZERTQSJ9.Z3JhbnQt${this.counter}.c2ln`;
    this.issuedTokens.push(grantToken);
    this.grants.set(grantId, { connectionName, protocolName, sessionId, sessionEndsAt: ends });
    return {
      grantToken,
      grantId,
      expiresAt: timestampFromDate(expiresAt),
      protocol: PROTOCOL[protocolName] ?? Protocol.TCP,
      tunnelUrls: this.tunnelUrls,
      connectionId: `con_${connectionName}`,
      connectionName,
      sessionId,
      sessionEndsAt: ends ? timestampFromDate(ends) : undefined,
      renewAt: timestampFromDate(new Date(now + this.renewAfterMs)),
    };
  }

  async close(): Promise<void> {
    this.server.forceShutdown();
  }
}
