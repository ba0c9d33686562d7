import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AppError } from '@pa/kit';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encryption at rest: AES-256-GCM under a keyring of master keys. The first key
 * encrypts; every key decrypts (rotation: put the new key first, re-encrypt, then
 * drop the old one). The key id is stored beside each ciphertext, and bound into
 * it as additional authenticated data together with a caller-chosen context (e.g.
 * the connection id), so a ciphertext cannot be moved to another row.
 *
 * Layout: version (1 byte) | iv (12) | tag (16) | ciphertext.
 */
export class SecretBox {
  private readonly keys: Map<string, Buffer>;
  readonly activeKeyId: string;

  constructor(entries: ReadonlyArray<readonly [string, Buffer]>) {
    if (entries.length === 0) throw new AppError('CONFIG_INVALID', { message: 'At least one master key is required.' });
    for (const [id, key] of entries) {
      if (key.length !== 32) throw new AppError('CONFIG_INVALID', { message: `Master key ${id} must be 32 bytes.` });
    }
    this.keys = new Map(entries);
    this.activeKeyId = (entries[0] as readonly [string, Buffer])[0];
  }

  /** Parses `id:base64` key specs (first active). */
  static fromSpecs(specs: readonly string[]): SecretBox {
    return new SecretBox(
      specs.map((spec) => {
        const at = spec.indexOf(':');
        return [spec.slice(0, at), Buffer.from(spec.slice(at + 1), 'base64')] as const;
      }),
    );
  }

  /**
   * Loads the key from `file`, creating it (mode 0600) with a fresh random key
   * when it does not exist. For the embedded default only.
   */
  static fromFile(file: string): SecretBox {
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `k1:${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    }
    return SecretBox.fromSpecs(readFileSync(file, 'utf8').split(/[\s,]+/).filter(Boolean));
  }

  hasKey(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  encrypt(plaintext: Buffer | string, context: string): { ciphertext: Buffer; keyId: string } {
    const key = this.keys.get(this.activeKeyId) as Buffer;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(this.aad(this.activeKeyId, context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { ciphertext: Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]), keyId: this.activeKeyId };
  }

  decrypt(ciphertext: Buffer, keyId: string, context: string): Buffer {
    const key = this.keys.get(keyId);
    if (!key) throw new AppError('INTERNAL', { message: `Master key ${keyId} is not configured.` });
    if (ciphertext.length < 1 + IV_BYTES + TAG_BYTES || ciphertext[0] !== VERSION) {
      throw new AppError('INTERNAL', { message: 'Stored ciphertext is malformed.' });
    }
    const iv = ciphertext.subarray(1, 1 + IV_BYTES);
    const tag = ciphertext.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(this.aad(keyId, context));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch (cause) {
      throw new AppError('INTERNAL', { message: 'Stored ciphertext failed authentication.', cause });
    }
  }

  private aad(keyId: string, context: string): Buffer {
    return Buffer.from(`pa:v${VERSION}:${keyId}:${context}`);
  }
}
