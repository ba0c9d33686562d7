import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { AppError, type FieldProblem } from './errors';

/**
 * TLS material for the services' listeners and clients, read from files (as
 * Kubernetes and Docker mount secrets). Problems name the setting and the file,
 * never the content: key material is never put in an error or a log line.
 */

/** A file setting: the path and how the operator names it (`PA_TUNNEL_TLS_CERT_FILE`). */
export interface TlsFileRef {
  readonly file: string;
  readonly setting: string;
}

/** A certificate chain and its private key (PEM). */
export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads TLS files, collecting every problem (unreadable file, no PEM
 * certificate, an encrypted or unparsable key, a key that does not match its
 * certificate, an expired certificate) so that {@link TlsFileReader.check}
 * reports them all at once as one CONFIG_INVALID error.
 */
export class TlsFileReader {
  private readonly problems: FieldProblem[] = [];

  constructor(private readonly now: () => Date = () => new Date()) {}

  private problem(ref: TlsFileRef, message: string): null {
    this.problems.push({ path: ref.setting, message: `${ref.file}: ${message}` });
    return null;
  }

  private read(ref: TlsFileRef): Buffer | null {
    try {
      return readFileSync(ref.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return this.problem(ref, `cannot be read (${code ?? 'error'})`);
    }
  }

  /** One or more PEM certificates (a CA bundle, or a chain). */
  certificates(ref: TlsFileRef): Buffer | null {
    const raw = this.read(ref);
    if (!raw) return null;
    const blocks = raw.toString('utf8').match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) return this.problem(ref, 'holds no PEM certificate ("-----BEGIN CERTIFICATE-----")');
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch {
        return this.problem(ref, 'holds a certificate that cannot be parsed');
      }
    }
    return raw;
  }

  private privateKey(ref: TlsFileRef): { raw: Buffer; key: KeyObject } | null {
    const raw = this.read(ref);
    if (!raw) return null;
    // Told by the PEM armour (PKCS#8 or the legacy Proc-Type header): OpenSSL's error codes for it vary by version.
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(raw.toString('latin1'))) {
      return this.problem(ref, 'is an encrypted key: give an unencrypted PEM key (keep the file itself secret)');
    }
    try {
      return { raw, key: createPrivateKey(raw) };
    } catch {
      return this.problem(ref, 'holds no PEM private key');
    }
  }

  /** A certificate (chain, leaf first) and the private key that goes with it. */
  keyPair(cert: TlsFileRef, key: TlsFileRef): KeyPair | null {
    const chain = this.certificates(cert);
    const priv = this.privateKey(key);
    if (!chain || !priv) return null;
    const leafPem = chain.toString('utf8').match(PEM_CERTIFICATE)?.[0] ?? '';
    const leaf = new X509Certificate(leafPem);
    if (!leaf.checkPrivateKey(priv.key)) return this.problem(key, `does not match the certificate in ${cert.setting}`);
    const now = this.now().getTime();
    if (Date.parse(leaf.validTo) < now) return this.problem(cert, `the certificate expired on ${new Date(leaf.validTo).toISOString()}`);
    if (Date.parse(leaf.validFrom) > now) return this.problem(cert, `the certificate is not valid before ${new Date(leaf.validFrom).toISOString()}`);
    return { cert: chain, key: priv.raw };
  }

  /** Throws CONFIG_INVALID naming every problem found so far; does nothing when there is none. */
  check(): void {
    if (this.problems.length === 0) return;
    throw new AppError('CONFIG_INVALID', {
      message: `Invalid TLS configuration: ${this.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      details: this.problems,
    });
  }
}

/** Why a TLS connection failed, as far as a person needs to know. */
export type TlsFailureKind = 'untrusted' | 'name-mismatch' | 'expired' | 'not-tls';

const KINDS: ReadonlyMap<string, TlsFailureKind> = new Map([
  ...['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'INVALID_CA'].map(
    (c) => [c, 'untrusted'] as const,
  ),
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'name-mismatch'],
  ['HOSTNAME_MISMATCH', 'name-mismatch'],
  ['CERT_HAS_EXPIRED', 'expired'],
  ['CERT_NOT_YET_VALID', 'expired'],
  ['ERR_SSL_WRONG_VERSION_NUMBER', 'not-tls'],
  ['ERR_SSL_PACKET_LENGTH_TOO_LONG', 'not-tls'],
  ['ERR_SSL_HTTP_REQUEST', 'not-tls'],
]);

/** What each kind of failure means, in words for the person who has to fix it. */
export const TLS_FAILURE_TEXT: Readonly<Record<TlsFailureKind, string>> = {
  untrusted: 'certificate verification failed: the server certificate is not signed by a CA this client trusts',
  'name-mismatch': 'certificate verification failed: the server certificate does not name the host that was dialled',
  expired: 'certificate verification failed: the server certificate has expired or is not valid yet',
  'not-tls': 'the server did not answer with TLS: does it serve TLS on this port?',
};

/** A TLS failure found in an error (or its causes), by the error's code: never by its message. */
export interface TlsFailure {
  readonly kind: TlsFailureKind;
  /** The OpenSSL / Node error code, e.g. SELF_SIGNED_CERT_IN_CHAIN. */
  readonly code: string;
}

/** Finds a TLS failure in `err` or its `cause` chain; null when the error is something else. */
export const tlsFailureOf = (err: unknown): TlsFailure | null => {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const kind = KINDS.get(code);
      if (kind) return { kind, code };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
};

/** Where and how {@link probeTls} connects: the client's own TLS settings, so the probe fails as the client did. */
export interface TlsProbeOptions {
  /** `host:port` (IPv6 in brackets). */
  address: string;
  /** CAs to trust (PEM); the default trust store when absent. */
  ca?: Buffer | string | readonly (Buffer | string)[];
  cert?: Buffer;
  key?: Buffer;
  /** Name to verify the certificate against (and send as SNI); the address's host by default. */
  servername?: string;
  /** ALPN protocols to offer (gRPC servers want `h2`). */
  alpn?: string[];
  /** Verify the certificate (default true); false only asks whether the server speaks TLS at all. */
  verify?: boolean;
  timeoutMs?: number;
}

/**
 * Opens one TLS connection to `address` to explain a failure that a client
 * library reports only as text (grpc-js: "No connection established"):
 * resolves with `'ok'` when the handshake succeeds, the TLS failure when it
 * fails for a TLS reason, and null when it fails for another (refused, timed out).
 */
export const probeTls = (options: TlsProbeOptions): Promise<'ok' | TlsFailure | null> =>
  new Promise((resolve) => {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(options.address.replace(/^[a-z]+:\/\/\/?/i, ''));
    if (!m) {
      resolve(null);
      return;
    }
    const host = m[1] as string;
    const isIp = /^[\d.]+$/.test(host) || host.includes(':');
    const servername = options.servername ?? (isIp ? undefined : host);
    const socket = tlsConnect({
      host,
      port: Number(m[2]),
      ...(options.ca ? { ca: options.ca as string | Buffer | Array<string | Buffer> } : {}),
      ...(options.cert && options.key ? { cert: options.cert, key: options.key } : {}),
      ...(servername ? { servername } : {}),
      ALPNProtocols: options.alpn ?? ['h2'],
      rejectUnauthorized: options.verify ?? true,
    });
    const done = (result: 'ok' | TlsFailure | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(null), options.timeoutMs ?? 5_000);
    socket.once('secureConnect', () => done('ok'));
    socket.once('error', (err) => done(tlsFailureOf(err)));
  });
