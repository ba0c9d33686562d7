import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate authority of a {@link TestPki}. */
export interface TestCa {
  readonly name: string;
  /** PEM of the CA certificate, and the file that holds it. */
  readonly cert: string;
  readonly certFile: string;
}

/** A leaf certificate and its (unencrypted) key, as PEM and as files. */
export interface TestCertificate {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssueOptions {
  /** `server` (serverAuth), `client` (clientAuth) or both. Default: server. */
  usage?: 'server' | 'client' | 'both';
  /** DNS subject alternative names (default: the common name, unless `ips` is given alone). */
  dns?: readonly string[];
  /** IP subject alternative names. */
  ips?: readonly string[];
}

/**
 * A throwaway PKI built with the `openssl` binary in a temporary directory:
 * CAs and the leaf certificates they sign (EC P-256, unencrypted keys), as PEM
 * strings and files (services read TLS material from files). `cleanup()`
 * removes the directory.
 */
export interface TestPki {
  readonly dir: string;
  /** Creates a self-signed CA. */
  ca(name: string): TestCa;
  /** Issues a certificate for `commonName` signed by `ca`. */
  issue(ca: TestCa, commonName: string, options?: IssueOptions): TestCertificate;
  /** Writes `content` to a file in the PKI directory and returns its path. */
  file(name: string, content: string): string;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates a {@link TestPki}. Call `cleanup()` in `afterAll`. */
export const createTestPki = (): TestPki => {
  const dir = mkdtempSync(join(tmpdir(), 'pa-pki-'));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const slug = (s: string): string => s.replace(/[^A-Za-z0-9_.-]/g, '_');
  let serial = 0;
  return {
    dir,
    ca: (name) => {
      const base = `ca-${slug(name)}`;
      run('req', '-x509', ...EC, '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '2', '-subj', `/CN=${name}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
      const certFile = join(dir, `${base}.crt`);
      return { name: base, cert: readFileSync(certFile, 'utf8'), certFile };
    },
    issue: (ca, commonName, options = {}) => {
      serial += 1;
      const base = `${slug(commonName)}-${serial}`;
      const ips = options.ips ?? [];
      const dns = options.dns ?? (ips.length > 0 ? [] : [commonName]);
      const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)];
      const usage = options.usage ?? 'server';
      const eku = usage === 'both' ? 'serverAuth,clientAuth' : usage === 'client' ? 'clientAuth' : 'serverAuth';
      const ext = [...(san.length ? [`subjectAltName=${san.join(',')}`] : []), 'basicConstraints=CA:FALSE', `extendedKeyUsage=${eku}`];
      writeFileSync(join(dir, `${base}.cnf`), `${ext.join('\n')}\n`);
      run('req', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${commonName}`);
      run('x509', '-req', '-in', `${base}.csr`, '-CA', `${ca.name}.crt`, '-CAkey', `${ca.name}.key`, '-set_serial', String(1000 + serial),
        '-out', `${base}.crt`, '-days', '2', '-extfile', `${base}.cnf`);
      const certFile = join(dir, `${base}.crt`);
      const keyFile = join(dir, `${base}.key`);
      return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile };
    },
    file: (name, content) => {
      const path = join(dir, slug(name));
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
};
