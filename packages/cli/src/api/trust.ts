/**
 * Which certificate authorities `pa` trusts for TLS: Node's built-in CA list,
 * plus the CA file the user names (`--ca-file`, `PA_CA_FILE`, or the one
 * `pa login --ca-file` stored in the context) for a control plane or nodes
 * whose certificates a private CA signs. One trust applies to every TLS hop pa
 * makes: the REST API (https://), the gRPC grant service, and the tunnels.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { TLS_FAILURE_TEXT, type TlsFailure } from '@pa/kit';
import { Agent, fetch as undiciFetch } from 'undici';
import { CliError, EXIT } from '../errors';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Where a CA file setting came from, for messages. */
export type CaFileSource = '--ca-file' | 'PA_CA_FILE' | 'context';

const SOURCE_TEXT: Record<CaFileSource, string> = {
  '--ca-file': '--ca-file',
  PA_CA_FILE: 'PA_CA_FILE',
  context: 'the context (set by `pa login --ca-file`)',
};

/** The certificate authorities pa trusts. */
export class Trust {
  private fetchImpl: typeof fetch | null = null;

  private constructor(
    /** The extra CA file, when one is configured. */
    readonly caFile: string | null,
    /** PEM certificates of the extra CA file. */
    private readonly extra: readonly string[],
  ) {}

  /** Node's built-in CAs only. */
  static system(): Trust {
    return new Trust(null, []);
  }

  /** Node's built-in CAs plus the PEM certificates in `file`; a file pa cannot use is a CliError. */
  static fromFile(file: string, source: CaFileSource): Trust {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new CliError(`cannot read the CA file ${file} (${SOURCE_TEXT[source]}): ${code}`, EXIT.ERROR, { cause: err });
    }
    const pems = text.match(PEM_CERTIFICATE) ?? [];
    if (pems.length === 0) throw new CliError(`the CA file ${file} (${SOURCE_TEXT[source]}) holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
    for (const pem of pems) {
      try {
        new X509Certificate(pem);
      } catch (err) {
        throw new CliError(`the CA file ${file} (${SOURCE_TEXT[source]}) holds a certificate that cannot be parsed`, EXIT.ERROR, { cause: err });
      }
    }
    return new Trust(file, pems);
  }

  /** The CA list for Node's TLS (`ca` option); undefined keeps Node's default. */
  get ca(): string[] | undefined {
    return this.extra.length ? [...rootCertificates, ...this.extra] : undefined;
  }

  /** Root certificates for grpc-js `credentials.createSsl`; null keeps its default. */
  grpcRoots(): Buffer | null {
    const ca = this.ca;
    return ca ? Buffer.from(ca.join('\n')) : null;
  }

  /** fetch for the REST API: the global one, or one whose TLS trusts the extra CAs too. */
  get fetch(): typeof fetch {
    const ca = this.ca;
    if (!ca) return fetch;
    if (!this.fetchImpl) {
      const dispatcher = new Agent({ connect: { ca } });
      this.fetchImpl = ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
        undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher })) as unknown as typeof fetch;
    }
    return this.fetchImpl;
  }
}

/** What to do about a TLS failure, for the person at the terminal. */
const HINTS: Record<TlsFailure['kind'], string> = {
  untrusted: 'if a private CA signs it, pass --ca-file FILE (or set PA_CA_FILE; `pa login --ca-file FILE` keeps it for the context)',
  'name-mismatch': 'the certificate names another host: use the address the certificate was issued for',
  expired: "the certificate must be renewed (or this machine's clock is wrong)",
  'not-tls': 'check the address, or whether the server is configured for TLS',
};

/** What failed, its code, and what to do, in one line. */
export const tlsFailureMessage = (failure: TlsFailure): string => `${TLS_FAILURE_TEXT[failure.kind]} (${failure.code}); ${HINTS[failure.kind]}`;
