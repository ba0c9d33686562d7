import { CompactEncrypt, base64url, generateKeyPair } from 'jose';
import { AppError, type ErrorCode } from '@pa/kit';
import {
  CREDENTIALS_TOKEN_TYPE,
  CredentialsCache,
  KeyStore,
  decryptCredentials,
  encryptCredentials,
  exportKeyJwk,
  generateNodeKeyPair,
  generateSigningKeyPair,
  importKeyJwk,
  toPublicJwk,
  type BackendCredentials,
  type DecryptionKeySource,
  type KeyPairWithId,
  type OkpJwk,
} from './index';

const PASSWORD = 'correct horse battery staple';
const cred: BackendCredentials = { kind: 'password', username: 'app_ro', password: PASSWORD };

let node: KeyPairWithId;
let store: KeyStore;

const codeOf = async (promise: Promise<unknown>): Promise<ErrorCode> => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
};

beforeAll(async () => {
  node = await generateNodeKeyPair('node_1');
  store = new KeyStore().addDecryptionKey(node.kid, node.privateKey);
});

describe('encryptCredentials / decryptCredentials', () => {
  it('round-trips password and header credentials', async () => {
    const header: BackendCredentials = { kind: 'header', headerName: 'Authorization', value: 'Bearer backend-api-key' };
    for (const c of [cred, header]) {
      await expect(decryptCredentials(await encryptCredentials(c, node.publicKey, node.kid), store)).resolves.toEqual(c);
    }
  });

  it('produces an ECDH-ES+A256KW / A256GCM compact JWE that names the node kid and hides the secret', async () => {
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    const parts = jwe.split('.');
    expect(parts).toHaveLength(5);
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(parts[0] ?? ''))) as Record<string, unknown>;
    expect(header).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'node_1', typ: CREDENTIALS_TOKEN_TYPE });
    for (const part of parts) {
      const bytes = Buffer.from(base64url.decode(part));
      expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false);
    }
  });

  it('cannot be decrypted without the node private key', async () => {
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    // A store without the node key (a client, or a node that has not received it).
    expect(await codeOf(decryptCredentials(jwe, new KeyStore()))).toBe('GRANT_KEY_UNKNOWN');
    // Another X25519 key filed under the same kid.
    const other = await generateNodeKeyPair(node.kid);
    expect(await codeOf(decryptCredentials(jwe, new KeyStore().addDecryptionKey(node.kid, other.privateKey)))).toBe('GRANT_CREDENTIALS_UNREADABLE');
  });

  it('rejects a tampered ciphertext or tag', async () => {
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    const parts = jwe.split('.');
    const flip = (s: string) => {
      const b = base64url.decode(s);
      b[0] = (b[0] ?? 0) ^ 1;
      return base64url.encode(b);
    };
    for (const i of [1, 2, 3, 4]) {
      const copy = [...parts];
      copy[i] = flip(copy[i] ?? '');
      expect(await codeOf(decryptCredentials(copy.join('.'), store))).toBe('GRANT_CREDENTIALS_UNREADABLE');
    }
  });

  it('rejects other key-management and content-encryption algorithms', async () => {
    const plaintext = new TextEncoder().encode(JSON.stringify(cred));
    const direct = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', kid: node.kid, typ: CREDENTIALS_TOKEN_TYPE })
      .encrypt(node.publicKey);
    expect(await codeOf(decryptCredentials(direct, store))).toBe('GRANT_ALGORITHM_REJECTED');
    const cbc = await new CompactEncrypt(plaintext)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A128CBC-HS256', kid: node.kid, typ: CREDENTIALS_TOKEN_TYPE })
      .encrypt(node.publicKey);
    expect(await codeOf(decryptCredentials(cbc, store))).toBe('GRANT_ALGORITHM_REJECTED');
  });

  it('rejects a JWE whose plaintext is not credentials', async () => {
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify({ kind: 'password', username: 'x' })))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: node.kid, typ: CREDENTIALS_TOKEN_TYPE })
      .encrypt(node.publicKey);
    expect(await codeOf(decryptCredentials(jwe, store))).toBe('GRANT_CREDENTIALS_UNREADABLE');
    expect(await codeOf(decryptCredentials('not.a.jwe', store))).toBe('GRANT_CREDENTIALS_UNREADABLE');
  });

  it('refuses to encrypt to anything but an X25519 public key, or a header value with CR/LF', async () => {
    await expect(encryptCredentials(cred, node.privateKey, node.kid)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const signer = await generateSigningKeyPair();
    await expect(encryptCredentials(cred, signer.publicKey, node.kid)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const injection: BackendCredentials = { kind: 'header', headerName: 'X-Api-Key', value: 'k\r\nX-Admin: 1' };
    await expect(encryptCredentials(injection, node.publicKey, node.kid)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('keys as JWK', () => {
  it('exports and imports Ed25519 and X25519 keys, public and private', async () => {
    const signer = await generateSigningKeyPair('sig_1');
    const sigJwk = await exportKeyJwk(signer.privateKey, signer.kid);
    expect(sigJwk).toMatchObject({ kid: 'sig_1', kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(typeof sigJwk.d).toBe('string');
    expect(toPublicJwk(sigJwk).d).toBeUndefined();
    const encJwk = await exportKeyJwk(node.privateKey, node.kid);
    expect(encJwk).toMatchObject({ kid: 'node_1', crv: 'X25519', alg: 'ECDH-ES+A256KW', use: 'enc' });
    const { privateKey } = await importKeyJwk(encJwk);
    if (!privateKey) throw new Error('expected the private half');
    expect(privateKey.type).toBe('private');
    // The imported private key decrypts what was encrypted to the original public key.
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    await expect(decryptCredentials(jwe, new KeyStore().addDecryptionKey(node.kid, privateKey))).resolves.toEqual(cred);
  });

  it('builds a store from a key set as WatchKeys sends it (proto3 empty strings for absent members)', async () => {
    const signer = await generateSigningKeyPair('sig_1');
    // Shaped as a decoded portauth.v1.Jwk: every member a plain string, '' when absent.
    const asProto = (j: OkpJwk): Required<Record<keyof OkpJwk, string>> => ({ kid: j.kid, kty: j.kty, crv: j.crv, alg: j.alg, use: j.use, x: j.x, d: j.d ?? '' });
    const fromProto = [asProto(await exportKeyJwk(signer.publicKey, signer.kid)), asProto(await exportKeyJwk(node.privateKey, node.kid))];
    const built = await KeyStore.fromJwks(fromProto);
    expect(built.verificationKids()).toEqual(['sig_1']);
    expect(built.decryptionKids()).toEqual(['node_1']);
    expect(built.verificationKey('node_1')).toBeUndefined();
    expect(built.decryptionKey('sig_1')).toBeUndefined();
  });

  it('rejects JWKs that are not OKP Ed25519/X25519, that mismatch alg, or have a path-like kid', async () => {
    const signer = await generateSigningKeyPair('sig_1');
    const good = await exportKeyJwk(signer.publicKey, signer.kid);
    await expect(importKeyJwk({ ...good, crv: 'Ed448' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(importKeyJwk({ ...good, alg: 'ECDH-ES+A256KW' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(importKeyJwk({ ...good, kid: '../keys/evil' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(importKeyJwk({ ...good, kty: 'RSA' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    // An X25519 key without its private half is useless to a node.
    await expect(KeyStore.fromJwks([toPublicJwk(await exportKeyJwk(node.privateKey, node.kid))])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('KeyStore', () => {
  it('holds only Ed25519 public keys for verification and X25519 private keys for decryption', async () => {
    const signer = await generateSigningKeyPair('sig_1');
    const s = new KeyStore();
    expect(() => s.addVerificationKey('a', signer.privateKey)).toThrow(AppError);
    expect(() => s.addVerificationKey('a', node.publicKey)).toThrow(AppError);
    expect(() => s.addDecryptionKey('a', node.publicKey)).toThrow(AppError);
    expect(() => s.addDecryptionKey('a', signer.privateKey)).toThrow(AppError);
    for (const alg of ['RS256', 'ES256'] as const) {
      const { publicKey } = await generateKeyPair(alg);
      expect(() => s.addVerificationKey('a', publicKey)).toThrow(AppError);
    }
    expect(() => s.addVerificationKey('https://evil/jwks', signer.publicKey)).toThrow(AppError);
    expect(s.verificationKids()).toEqual([]);
  });

  it('removes keys by kid', () => {
    const s = new KeyStore().addDecryptionKey(node.kid, node.privateKey);
    expect(s.remove(node.kid)).toBe(true);
    expect(s.remove(node.kid)).toBe(false);
    expect(s.decryptionKey(node.kid)).toBeUndefined();
  });
});

describe('CredentialsCache', () => {
  /** A key source that counts the decryptions done with it. */
  const counting = (inner: KeyStore): { source: DecryptionKeySource; uses: () => number } => {
    let n = 0;
    return {
      source: {
        decryptionKey: (kid) => {
          n += 1;
          return inner.decryptionKey(kid);
        },
      },
      uses: () => n,
    };
  };

  it('decrypts a grant\'s JWE once until the grant expires, then again', async () => {
    let now = 1_000_000;
    const cache = new CredentialsCache({ now: () => now });
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    const keys = counting(store);
    for (let i = 0; i < 5; i++) await expect(cache.get(jwe, keys.source, now + 60_000)).resolves.toEqual(cred);
    expect(keys.uses()).toBe(1);
    now += 60_000;
    await expect(cache.get(jwe, keys.source, now + 60_000)).resolves.toEqual(cred);
    expect(keys.uses()).toBe(2);
  });

  it('starts empty for a new key set (rotation), keeps no failure, and no already-expired grant', async () => {
    const cache = new CredentialsCache();
    const jwe = await encryptCredentials(cred, node.publicKey, node.kid);
    const first = counting(store);
    await cache.get(jwe, first.source, Date.now() + 60_000);
    const rotated = counting(store);
    await cache.get(jwe, rotated.source, Date.now() + 60_000);
    expect([first.uses(), rotated.uses()]).toEqual([1, 1]);
    // A key set without the key: refused each time, never cached.
    const empty = counting(new KeyStore());
    for (let i = 0; i < 2; i++) expect(await codeOf(cache.get(jwe, empty.source, Date.now() + 60_000))).toBe('GRANT_KEY_UNKNOWN');
    expect(empty.uses()).toBe(2);
    const expired = counting(store);
    for (let i = 0; i < 2; i++) await cache.get(jwe, expired.source, Date.now() - 1);
    expect(expired.uses()).toBe(2);
  });

  it('keeps at most maxEntries per key set, dropping the oldest', async () => {
    const cache = new CredentialsCache({ maxEntries: 2 });
    const jwes = await Promise.all([1, 2, 3].map(() => encryptCredentials(cred, node.publicKey, node.kid)));
    const keys = counting(store);
    for (const j of jwes) await cache.get(j, keys.source, Date.now() + 60_000);
    expect(keys.uses()).toBe(3);
    await cache.get(jwes[2] as string, keys.source, Date.now() + 60_000);
    await cache.get(jwes[1] as string, keys.source, Date.now() + 60_000);
    expect(keys.uses()).toBe(3);
    await cache.get(jwes[0] as string, keys.source, Date.now() + 60_000);
    expect(keys.uses()).toBe(4);
  });
});
