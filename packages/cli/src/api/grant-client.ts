import { credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { dateFromTimestamp, GrantServiceClient, Protocol, type Grant } from '@pa/contracts';
import { ERROR_CODES, probeTls } from '@pa/kit';
import { z } from 'zod';
import { ApiError, CliError, EXIT, GrpcCallError, exitCodeFor } from '../errors';
import { TOKEN_RETRY_CODES, type AuthSession } from './auth-session';
import type { RestClient } from './rest-client';
import { Trust, tlsFailureMessage } from './trust';

/** Where the control plane serves gRPC, from `GET /api/v1/info`. */
export interface GrpcEndpoint {
  /** `host:port`. */
  address: string;
  tls: boolean;
}

const infoSchema = z.object({
  version: z.string().optional(),
  grpc: z.object({ url: z.string().min(1), tls: z.boolean().default(false) }),
});

/**
 * Asks the control plane where its gRPC grant service is. A wildcard host
 * (`0.0.0.0`, `::`) is replaced by the host the REST API was reached at.
 */
export const discoverGrpc = async (rest: RestClient): Promise<GrpcEndpoint> => {
  let body: unknown;
  try {
    body = (await rest.request('GET', '/info')).body;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      throw new CliError(`${rest.server} does not say where its grant service is (GET /api/v1/info): is it an older control plane?`, EXIT.ERROR, { cause: err });
    }
    throw err;
  }
  const parsed = infoSchema.safeParse(body);
  if (!parsed.success) throw new CliError(`${rest.server} answered GET /api/v1/info without a gRPC address`, EXIT.ERROR, { cause: parsed.error });
  const raw = parsed.data.grpc.url.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  const restHost = new URL(rest.server).hostname;
  const address = raw.replace(/^(0\.0\.0\.0|\[::\]|::)(?=:\d+$)/, restHost.includes(':') && !restHost.startsWith('[') ? `[${restHost}]` : restHost);
  return { address, tls: parsed.data.grpc.tls };
};

/** The protocol of a grant, as the CLI names it. */
export type GrantProtocol = 'postgres' | 'http' | 'tcp';

/** A grant as the CLI uses it: checked, with dates. */
export interface GrantView {
  token: string;
  id: string;
  expiresAt: Date;
  /** When to renew; the server's hint, else two thirds of the way to expiry. */
  renewAt: Date;
  protocol: GrantProtocol;
  tunnelUrls: string[];
  connectionName: string;
  sessionId: string;
  sessionEndsAt: Date | null;
}

const PROTOCOLS: Partial<Record<Protocol, GrantProtocol>> = { [Protocol.POSTGRES]: 'postgres', [Protocol.HTTP]: 'http', [Protocol.TCP]: 'tcp' };

const grantSchema = z.object({
  grantToken: z.string().min(1),
  grantId: z.string().min(1),
  expiresAt: z.object({ seconds: z.number(), nanos: z.number() }),
  tunnelUrls: z.array(z.string().min(1)).min(1, 'no data-plane node is available'),
});

/** Checks a decoded Grant message and converts it (STYLE: zod at every edge). */
export const toGrantView = (grant: Grant | undefined, now: number): GrantView => {
  const checked = grantSchema.safeParse(grant ?? {});
  if (!grant || !checked.success) {
    const why = checked.success ? 'empty answer' : (checked.error.issues[0]?.message ?? 'invalid');
    throw new CliError(`the control plane sent an unusable grant (${why})`, EXIT.UNREACHABLE);
  }
  const protocol = PROTOCOLS[grant.protocol];
  if (!protocol) throw new CliError('the control plane sent a grant for a protocol this pa does not know: upgrade pa', EXIT.ERROR);
  const expiresAt = dateFromTimestamp(checked.data.expiresAt);
  const hinted = grant.renewAt ? dateFromTimestamp(grant.renewAt) : null;
  const renewAt = hinted && hinted.getTime() < expiresAt.getTime() ? hinted : new Date(now + ((expiresAt.getTime() - now) * 2) / 3);
  return {
    token: grant.grantToken,
    id: grant.grantId,
    expiresAt,
    renewAt,
    protocol,
    tunnelUrls: grant.tunnelUrls,
    connectionName: grant.connectionName,
    sessionId: grant.sessionId,
    sessionEndsAt: grant.sessionEndsAt ? dateFromTimestamp(grant.sessionEndsAt) : null,
  };
};

/** Converts a grpc-js error, reading the AppError code from the `pa-error-code` metadata. */
export const toGrpcCallError = (err: ServiceError): GrpcCallError => {
  const raw = err.metadata?.get('pa-error-code')[0];
  const code = typeof raw === 'string' && raw ? raw : GrpcStatus[err.code] ?? 'UNKNOWN';
  const detail = err.details || err.message;
  return new GrpcCallError(err.code, code, detail);
};

const RETRYABLE_STATUS: ReadonlySet<number> = new Set([GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.ABORTED, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN]);

/** Whether a failed grant call may succeed later (a retry with backoff makes sense). */
export const isRetryableGrantError = (err: unknown): boolean => {
  if (err instanceof GrpcCallError) {
    const spec = (ERROR_CODES as Record<string, { retryable: boolean } | undefined>)[err.code];
    return spec ? spec.retryable : RETRYABLE_STATUS.has(err.grpcCode);
  }
  if (err instanceof CliError) return err.exitCode === EXIT.UNREACHABLE;
  return false;
};

/** Whether a fresh access token may fix a failed grant call. */
export const isExpiredGrpcToken = (err: unknown): boolean =>
  err instanceof GrpcCallError && err.grpcCode === GrpcStatus.UNAUTHENTICATED && (TOKEN_RETRY_CODES.has(err.code) || err.code === 'UNAUTHENTICATED');

export interface GrantClientOptions {
  /** Per-call deadline (default 15 s). */
  deadlineMs?: number;
  now?: () => number;
  /** CAs to trust when the endpoint uses TLS (Node's built-in ones by default). */
  trust?: Trust;
}

/**
 * The control plane's GrantService: issue and renew grants as the logged-in
 * user (access token in `authorization` metadata, refreshed transparently).
 */
export class GrantClient {
  private readonly client: GrantServiceClient;
  private readonly deadlineMs: number;
  private readonly now: () => number;

  constructor(
    readonly endpoint: GrpcEndpoint,
    private readonly session: AuthSession,
    options: GrantClientOptions = {},
  ) {
    this.client = new GrantServiceClient(endpoint.address, endpoint.tls ? credentials.createSsl((options.trust ?? Trust.system()).grpcRoots()) : credentials.createInsecure());
    this.deadlineMs = options.deadlineMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  private metadataFor(token: string): Metadata {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  }

  private unary<TReq, TRes>(
    call: (req: TReq, md: Metadata, options: { deadline: Date }, cb: (err: ServiceError | null, res: TRes) => void) => unknown,
    req: TReq,
  ): Promise<TRes> {
    return this.session.withToken(
      (token) =>
        new Promise<TRes>((resolve, reject) => {
          call.call(this.client, req, this.metadataFor(token), { deadline: new Date(Date.now() + this.deadlineMs) }, (err, res) => {
            if (err) reject(toGrpcCallError(err));
            else resolve(res);
          });
        }),
      isExpiredGrpcToken,
    );
  }

  /** Asks for a grant to `connectionName` (`ttlSeconds` 0 = the server's default). */
  async issue(connectionName: string, ttlSeconds = 0): Promise<GrantView> {
    const res = await this.unary(this.client.issueGrant, { connectionName, requestedTtlSeconds: ttlSeconds });
    return toGrantView(res.grant, this.now());
  }

  /** Renews a grant by id; the new grant keeps the session. */
  async renew(grantId: string, ttlSeconds = 0): Promise<GrantView> {
    const res = await this.unary(this.client.renewGrant, { current: { $case: 'grantId', grantId }, requestedTtlSeconds: ttlSeconds });
    return toGrantView(res.grant, this.now());
  }

  close(): void {
    this.client.close();
  }
}

/** What to tell the user when a grant cannot be issued. */
export const grantIssueError = (err: unknown, name: string, address: string): unknown => {
  if (!(err instanceof GrpcCallError)) return err;
  if (err.grpcCode === GrpcStatus.NOT_FOUND || err.code === 'CONNECTION_NOT_FOUND') {
    return new CliError(`unknown connection "${name}": run \`pa list\` to see what you may reach`, EXIT.NOT_FOUND, { cause: err });
  }
  if (err.grpcCode === GrpcStatus.PERMISSION_DENIED) return new CliError(`permission denied: you may not reach ${name} (${err.detail})`, EXIT.PERMISSION_DENIED, { cause: err });
  if (err.grpcCode === GrpcStatus.UNAUTHENTICATED) return new CliError(`${err.detail}: run \`pa login\``, EXIT.NEEDS_LOGIN, { cause: err });
  if (err.grpcCode === GrpcStatus.UNAVAILABLE && err.code === 'UNAVAILABLE') {
    return new CliError(`cannot reach the grant service at ${address}: is the control plane running? (${err.detail})`, EXIT.UNREACHABLE, { cause: err });
  }
  return new CliError(`could not get a grant for ${name}: ${err.detail} (${err.code})`, exitCodeFor(err.code, 0), { cause: err });
};

/**
 * Explains a grant service that cannot be reached when TLS is why: grpc-js
 * reports a failed handshake only as "No connection established", so one TLS
 * handshake of pa's own finds the reason (untrusted certificate, wrong name,
 * expired, or TLS on one side only). Null when TLS is not the problem.
 */
export const explainGrpcTls = async (err: unknown, endpoint: GrpcEndpoint, trust: Trust): Promise<CliError | null> => {
  if (!(err instanceof GrpcCallError) || err.grpcCode !== GrpcStatus.UNAVAILABLE) return null;
  const ca = trust.ca;
  const probe = await probeTls({ address: endpoint.address, ...(ca ? { ca } : {}), verify: endpoint.tls });
  if (endpoint.tls && probe !== null && probe !== 'ok') {
    return new CliError(`cannot connect to the grant service at ${endpoint.address} securely: ${tlsFailureMessage(probe)}`, EXIT.UNREACHABLE, { cause: err });
  }
  if (!endpoint.tls && probe === 'ok') {
    return new CliError(
      `the grant service at ${endpoint.address} speaks TLS, but the control plane says it does not (GET /api/v1/info): its operator should set PA_GRPC_PUBLIC_TLS=true`,
      EXIT.UNREACHABLE,
      { cause: err },
    );
  }
  return null;
};
