import { unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
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
  const tunnel = readTunnelKeyPair(config, files);
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

/** The tunnel listener's certificate and key (problems go to `files`); null when not configured. */
const readTunnelKeyPair = (config: Config, files: TlsFileReader): KeyPair | null => {
  const t = config.tunnel.tls;
  return t.certFile && t.keyFile ? files.keyPair({ file: t.certFile, setting: 'PA_TUNNEL_TLS_CERT_FILE' }, { file: t.keyFile, setting: 'PA_TUNNEL_TLS_KEY_FILE' }) : null;
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

/**
 * The tunnel certificate, kept current: the files are checked every
 * `reloadIntervalSeconds` (stat polling, so it also works for files replaced
 * by a rename, as cert-manager and certbot do), and a new certificate and key
 * that read and match replace the old ones for new connections (TLS sessions
 * already open keep theirs). A pair that does not read or match (say, a
 * half-written file) is logged and the current one is kept.
 */
export class TunnelCertificate {
  private pair: KeyPair;
  private context: SecureContext;
  private readonly listeners = new Set<(pair: KeyPair) => void>();
  private readonly files: readonly string[];
  private readonly onChange = (): void => void this.reload();

  constructor(
    private readonly config: Config,
    initial: KeyPair,
    private readonly logger: Logger,
  ) {
    this.pair = initial;
    this.context = createSecureContext({ cert: initial.cert, key: initial.key });
    const t = config.tunnel.tls;
    this.files = [t.certFile, t.keyFile].filter((f): f is string => typeof f === 'string');
    const every = t.reloadIntervalSeconds * 1000;
    if (every > 0) for (const f of this.files) watchFile(f, { interval: every, persistent: false }, this.onChange);
  }

  get current(): KeyPair {
    return this.pair;
  }

  /** The secure context for the current pair (for sockets wrapped by hand, e.g. after an SSLRequest). */
  get secureContext(): SecureContext {
    return this.context;
  }

  /** Calls `fn` with each new pair. */
  onReload(fn: (pair: KeyPair) => void): void {
    this.listeners.add(fn);
  }

  /** Reads the files again; applies a valid pair that differs from the current one. */
  reload(): boolean {
    let next: KeyPair;
    try {
      const files = new TlsFileReader();
      const loaded = readTunnelKeyPair(this.config, files);
      files.check();
      if (!loaded) return false;
      next = loaded;
      if (next.cert.equals(this.pair.cert) && next.key.equals(this.pair.key)) return false;
      this.context = createSecureContext({ cert: next.cert, key: next.key });
    } catch (err) {
      this.logger.warn('The tunnel TLS files changed but could not be used; keeping the current certificate.', { error: err instanceof Error ? err.message : String(err) });
      return false;
    }
    this.pair = next;
    for (const fn of this.listeners) fn(next);
    this.logger.info('Tunnel TLS certificate reloaded.', { certFile: this.config.tunnel.tls.certFile });
    return true;
  }

  stop(): void {
    for (const f of this.files) unwatchFile(f, this.onChange);
  }
}
