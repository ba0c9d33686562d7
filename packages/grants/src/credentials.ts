import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, type CryptoKey } from 'jose';
import { AppError } from '@pa/kit';
import { z } from 'zod';
import { CREDENTIALS_ENC, CREDENTIALS_KEY_ALG, KID_PATTERN, assertKid, curveOf } from './keys';
import type { DecryptionKeySource } from './key-store';

/** `typ` header of the credentials JWE. */
export const CREDENTIALS_TOKEN_TYPE = 'pa-cred+jwe';

/** Backend credentials the data plane injects: a login for PostgreSQL, or a header for HTTP. */
export const backendCredentialsSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('password'), username: z.string().min(1).max(256), password: z.string().max(4096) }),
  z.strictObject({
    kind: z.literal('header'),
    headerName: z.string().min(1).max(256).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name'),
    value: z.string().max(8192).regex(/^[^\r\n\0]*$/, 'no CR, LF or NUL'),
  }),
]);

/** Backend credentials in clear: only ever held by the control plane and, once decrypted, by a node. */
export type BackendCredentials = z.infer<typeof backendCredentialsSchema>;

const COMPACT_JWE = /^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/;
const MAX_JWE_LENGTH = 16_384;

const unreadable = (message: string, cause?: unknown): AppError => new AppError('GRANT_CREDENTIALS_UNREADABLE', { message, cause });

/**
 * Encrypts backend credentials to a node key: a compact JWE (ECDH-ES+A256KW with
 * X25519, A256GCM) whose header names the node key's `kid`. Only a holder of the
 * matching X25519 private key can read it; the client that carries the grant cannot.
 */
export const encryptCredentials = async (credentials: BackendCredentials, recipientPublicKey: CryptoKey, kid: string): Promise<string> => {
  assertKid(kid);
  if (curveOf(recipientPublicKey) !== 'X25519' || recipientPublicKey.type !== 'public') {
    throw new AppError('VALIDATION_FAILED', { message: 'Credentials are encrypted to an X25519 public key.' });
  }
  const parsed = backendCredentialsSchema.safeParse(credentials);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', { message: 'The backend credentials are not valid.' });
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(parsed.data)))
    .setProtectedHeader({ alg: CREDENTIALS_KEY_ALG, enc: CREDENTIALS_ENC, kid, typ: CREDENTIALS_TOKEN_TYPE })
    .encrypt(recipientPublicKey);
};

/**
 * Decrypts the credentials of a verified grant with the node key its header names.
 * Errors: GRANT_KEY_UNKNOWN (no such node key here, e.g. a rotation not yet
 * received), GRANT_ALGORITHM_REJECTED (anything but ECDH-ES+A256KW / A256GCM),
 * GRANT_CREDENTIALS_UNREADABLE (malformed, tampered, or not credentials).
 */
export const decryptCredentials = async (jwe: string, keys: DecryptionKeySource): Promise<BackendCredentials> => {
  if (typeof jwe !== 'string' || jwe.length > MAX_JWE_LENGTH || !COMPACT_JWE.test(jwe)) throw unreadable('The credentials are not a compact JWE.');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jwe);
  } catch (cause) {
    throw unreadable('The credentials header cannot be decoded.', cause);
  }
  if (header.alg !== CREDENTIALS_KEY_ALG || header.enc !== CREDENTIALS_ENC) {
    throw new AppError('GRANT_ALGORITHM_REJECTED', { message: 'The credentials use an algorithm that is not accepted.' });
  }
  if (header.typ !== CREDENTIALS_TOKEN_TYPE) throw unreadable('The JWE is not grant credentials.');
  if (typeof header.kid !== 'string' || !KID_PATTERN.test(header.kid)) throw unreadable('The credentials name no valid key id.');
  const key = keys.decryptionKey(header.kid);
  if (!key) throw new AppError('GRANT_KEY_UNKNOWN', { message: 'The credentials are encrypted to a node key this node does not hold.', meta: { kid: header.kid } });
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(jwe, key, {
      keyManagementAlgorithms: [CREDENTIALS_KEY_ALG],
      contentEncryptionAlgorithms: [CREDENTIALS_ENC],
    }));
  } catch (cause) {
    throw unreadable('The credentials cannot be decrypted.', cause);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch (cause) {
    throw unreadable('The decrypted credentials are not JSON.', cause);
  }
  const parsed = backendCredentialsSchema.safeParse(value);
  if (!parsed.success) throw unreadable('The decrypted credentials do not have a known shape.');
  return parsed.data;
};

export interface CredentialsCacheOptions {
  /** Most entries kept per key set (the oldest goes first). Default 10,000. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/**
 * Decrypted backend credentials, per grant: every tunnel of a grant carries
 * the same JWE, and decrypting it (ECDH-ES key agreement, key import, key
 * unwrap, AES-GCM) costs a few hundred microseconds of CPU per connection.
 * Entries are keyed by the JWE itself and scoped to the key set that
 * decrypted them (a rotated key set starts empty, so a dropped key stops
 * working at once); each lives until its grant expires; a failed decryption
 * is not kept. The plaintext stays in this node's memory only, where the
 * sessions that use it hold it anyway.
 */
export class CredentialsCache {
  private readonly bySource = new WeakMap<DecryptionKeySource, Map<string, { value: Promise<BackendCredentials>; expiresAtMs: number }>>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: CredentialsCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** The credentials in `jwe` (decrypted with `keys` unless cached); `expiresAtMs`: when the grant carrying them expires. */
  get(jwe: string, keys: DecryptionKeySource, expiresAtMs: number): Promise<BackendCredentials> {
    let entries = this.bySource.get(keys);
    if (!entries) {
      entries = new Map();
      this.bySource.set(keys, entries);
    }
    const now = this.now();
    const hit = entries.get(jwe);
    if (hit && hit.expiresAtMs > now) return hit.value;
    if (hit) entries.delete(jwe);
    const value = decryptCredentials(jwe, keys);
    if (expiresAtMs > now) {
      const map = entries;
      map.set(jwe, { value, expiresAtMs });
      value.catch(() => {
        if (map.get(jwe)?.value === value) map.delete(jwe);
      });
      if (map.size > this.maxEntries) {
        // Expired entries first, then the oldest.
        for (const [k, e] of map) if (e.expiresAtMs <= now) map.delete(k);
        for (const k of map.keys()) {
          if (map.size <= this.maxEntries) break;
          map.delete(k);
        }
      }
    }
    return value;
  }
}
