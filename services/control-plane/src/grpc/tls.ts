import type { PeerCertificate } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import { AppError, TlsFileReader, type KeyPair } from '@pa/kit';
import type { Config } from '../config';

/**
 * TLS on the control plane's gRPC listener.
 *
 * One port serves GrantService (users: access token, no client certificate)
 * and NodeService (data-plane nodes: node token, and with mutual TLS a client
 * certificate). So the listener asks every client for a certificate but lets
 * the handshake finish without one, and NodeService checks the verified peer
 * certificate on each call ({@link requireNodeCertificate}).
 */
export interface GrpcTls {
  keyPair: KeyPair;
  /** CA bundle that signs node client certificates; NodeService requires one when set. */
  nodeCa: Buffer | null;
  /** A node's certificate must name the node id it calls with. */
  bindNodeId: boolean;
}

/** Reads the listener's TLS files (all problems at once, as CONFIG_INVALID); null when TLS is off. */
export const loadGrpcTls = (tls: Config['grpc']['tls']): GrpcTls | null => {
  if (!tls.certFile || !tls.keyFile) return null;
  const files = new TlsFileReader();
  const keyPair = files.keyPair({ file: tls.certFile, setting: 'PA_GRPC_TLS_CERT_FILE' }, { file: tls.keyFile, setting: 'PA_GRPC_TLS_KEY_FILE' });
  const nodeCa = tls.nodeCaFile ? files.certificates({ file: tls.nodeCaFile, setting: 'PA_GRPC_TLS_NODE_CA_FILE' }) : null;
  files.check();
  return { keyPair: keyPair as KeyPair, nodeCa, bindNodeId: tls.bindNodeId };
};

/**
 * Server credentials that request a client certificate, verify it against the
 * node CA, and still complete the handshake without one (users have none).
 * grpc-js's `ServerCredentials.createSsl` can only request-and-require
 * (`checkClientCertificate`) or not request at all, so this sets the http2
 * server's `requestCert` / `rejectUnauthorized` itself; grpc-js then reports
 * a verified certificate, and only a verified one, in `call.getAuthContext()`.
 */
class OptionalClientCertCredentials extends ServerCredentials {
  constructor(tls: GrpcTls & { nodeCa: Buffer }) {
    super({ requestCert: true, rejectUnauthorized: false }, { ca: tls.nodeCa, cert: [tls.keyPair.cert], key: [tls.keyPair.key] });
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/** Credentials for the listener: insecure, server TLS, or server TLS that asks nodes for a certificate. */
export const serverCredentials = (tls: GrpcTls | null): ServerCredentials => {
  if (!tls) return ServerCredentials.createInsecure();
  if (tls.nodeCa) return new OptionalClientCertCredentials({ ...tls, nodeCa: tls.nodeCa });
  return ServerCredentials.createSsl(null, [{ cert_chain: tls.keyPair.cert, private_key: tls.keyPair.key }], false);
};

/** The names a certificate gives its subject: the CN and every DNS subject alternative name. */
export const certificateNames = (cert: PeerCertificate): string[] => {
  const cn = cert.subject?.CN;
  const names = Array.isArray(cn) ? [...cn] : cn ? [cn] : [];
  for (const entry of (cert.subjectaltname ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  }
  return names;
};

/** What a NodeService call offers for the certificate check. */
export interface PeerCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate };
}

/**
 * With mutual TLS configured: the caller presented a certificate that the
 * node CA verified (else AUTH_CLIENT_CERT_REQUIRED) and, when bound, that
 * names `nodeId` (else AUTH_CLIENT_CERT_MISMATCH). Does nothing otherwise.
 */
export const requireNodeCertificate = (tls: GrpcTls | null, call: PeerCall, nodeId: string | undefined): void => {
  if (!tls?.nodeCa) return;
  const peer = call.getAuthContext().sslPeerCertificate;
  if (!peer) {
    throw new AppError('AUTH_CLIENT_CERT_REQUIRED', {
      message: 'NodeService requires a client certificate signed by the node CA of this control plane (set PA_CONTROL_PLANE_TLS_CERT_FILE and PA_CONTROL_PLANE_TLS_KEY_FILE on the node).',
    });
  }
  if (tls.bindNodeId && !(nodeId && certificateNames(peer).includes(nodeId))) {
    throw new AppError('AUTH_CLIENT_CERT_MISMATCH', { message: `The client certificate does not name node "${nodeId ?? ''}" (as its CN or a DNS subject alternative name).` });
  }
};
