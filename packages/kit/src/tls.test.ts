import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, probeTls, tlsFailureOf, TlsFileReader } from './index';

/** What needs no certificate authority; key pairs and handshakes with real certificates are tested by the services. */
describe('tlsFailureOf', () => {
  const coded = (code: string): Error => Object.assign(new Error('boom'), { code });

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', 'untrusted'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'untrusted'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'untrusted'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'name-mismatch'],
    ['CERT_HAS_EXPIRED', 'expired'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'not-tls'],
  ])('classifies %s as %s, also deep in a cause chain (fetch wraps socket errors)', (code, kind) => {
    expect(tlsFailureOf(coded(code))).toEqual({ kind, code });
    expect(tlsFailureOf(new TypeError('fetch failed', { cause: coded(code) }))).toEqual({ kind, code });
  });

  it('is null for errors that are not about TLS', () => {
    expect(tlsFailureOf(coded('ECONNREFUSED'))).toBeNull();
    expect(tlsFailureOf(new Error('self-signed certificate in certificate chain'))).toBeNull();
    expect(tlsFailureOf(undefined)).toBeNull();
  });
});

describe('TlsFileReader', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pa-kit-tls-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every problem at once, naming setting and file, and nothing when there is none', () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const encrypted = join(dir, 'encrypted.key');
    writeFileSync(encrypted, privateKey);
    const files = new TlsFileReader();
    expect(files.certificates({ file: join(dir, 'missing.crt'), setting: 'CA_FILE' })).toBeNull();
    expect(files.keyPair({ file: notPem, setting: 'CERT_FILE' }, { file: encrypted, setting: 'KEY_FILE' })).toBeNull();
    let err: unknown;
    try {
      files.check();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('CONFIG_INVALID');
    expect((err as AppError).details).toEqual([
      { path: 'CA_FILE', message: `${join(dir, 'missing.crt')}: cannot be read (ENOENT)` },
      { path: 'CERT_FILE', message: `${notPem}: holds no PEM certificate ("-----BEGIN CERTIFICATE-----")` },
      { path: 'KEY_FILE', message: `${encrypted}: is an encrypted key: give an unencrypted PEM key (keep the file itself secret)` },
    ]);
    expect((err as AppError).message).not.toContain('BEGIN ENCRYPTED');
    expect(() => new TlsFileReader().check()).not.toThrow();
  });
});

describe('probeTls', () => {
  it('tells a server that answers without TLS (not-tls), and says nothing when nobody answers', async () => {
    const server = createServer((_req, res) => res.end('plain'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      expect(await probeTls({ address: `127.0.0.1:${port}`, alpn: ['http/1.1'] })).toMatchObject({ kind: 'not-tls' });
    } finally {
      server.close();
    }
    expect(await probeTls({ address: `127.0.0.1:${port}` })).toBeNull();
    expect(await probeTls({ address: 'not an address' })).toBeNull();
  });
});
