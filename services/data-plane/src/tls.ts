import { TlsFileReader, type KeyPair, type Logger } from '@pa/kit';
import type { Config } from './config';

/** How the node dials the control plane with TLS. */
export interface ControlPlaneTls {
  /** CAs that may sign the control plane's certificate; the default trust store when null. */
  ca: Buffer | null;
  /** Client certificate for mutual TLS; none when null. */
  keyPair: KeyPair | null;
  /** Name to check the certificate against instead of the dialled host. */
  serverName: string | undefined;
}

/** The node's TLS material, read from the configured files. */
export interface NodeTls {
  /** The tunnel listener's certificate and key; plain HTTP when null. */
  tunnel: KeyPair | null;
  /** TLS to the control plane; plaintext when null. */
  controlPlane: ControlPlaneTls | null;
}

/**
 * Reads every TLS file the config names, reporting all problems at once
 * (unreadable, not PEM, key and certificate that do not match) as CONFIG_INVALID.
 */
export const loadNodeTls = (config: Config): NodeTls => {
  const files = new TlsFileReader();
  const t = config.tunnel.tls;
  const tunnel = t.certFile && t.keyFile ? files.keyPair({ file: t.certFile, setting: 'PA_TUNNEL_TLS_CERT_FILE' }, { file: t.keyFile, setting: 'PA_TUNNEL_TLS_KEY_FILE' }) : null;
  const c = config.controlPlane.tls;
  const enabled = c.enabled ?? Boolean(c.caFile || c.certFile || c.serverName);
  let controlPlane: ControlPlaneTls | null = null;
  if (enabled) {
    controlPlane = {
      ca: c.caFile ? files.certificates({ file: c.caFile, setting: 'PA_CONTROL_PLANE_TLS_CA_FILE' }) : null,
      keyPair: c.certFile && c.keyFile ? files.keyPair({ file: c.certFile, setting: 'PA_CONTROL_PLANE_TLS_CERT_FILE' }, { file: c.keyFile, setting: 'PA_CONTROL_PLANE_TLS_KEY_FILE' }) : null,
      serverName: c.serverName,
    };
  }
  files.check();
  return { tunnel, controlPlane };
};

/**
 * In production, says (once, at start) which hops leave the machine in clear:
 * the control-plane connection without TLS, and tunnels advertised as http://.
 */
export const warnAboutPlaintext = (config: Config, tls: NodeTls, tunnelUrl: string, logger: Logger): void => {
  if (config.environment !== 'production') return;
  if (!tls.controlPlane) {
    logger.warn('The node talks to the control plane without TLS.', {
      address: config.controlPlane.grpcAddress,
      hint: 'serve the control plane\'s gRPC with TLS (PA_GRPC_TLS_CERT_FILE) and set PA_CONTROL_PLANE_TLS=true or PA_CONTROL_PLANE_TLS_CA_FILE here',
    });
  }
  if (tunnelUrl.startsWith('http://')) {
    logger.warn('Tunnels are advertised over plain HTTP.', {
      tunnelUrl,
      hint: 'set PA_TUNNEL_TLS_CERT_FILE and PA_TUNNEL_TLS_KEY_FILE, or an https:// PA_TUNNEL_PUBLIC_URL when a TLS proxy fronts the node',
    });
  }
};
