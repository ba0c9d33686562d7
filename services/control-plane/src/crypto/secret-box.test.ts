import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SecretBox } from './secret-box';

describe('SecretBox', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);

  it('round-trips and binds the ciphertext to its context', () => {
    const box = new SecretBox([['k1', k1]]);
    const { ciphertext, keyId } = box.encrypt('s3cret-password', 'con_a');
    expect(keyId).toBe('k1');
    expect(ciphertext.includes(Buffer.from('s3cret-password'))).toBe(false);
    expect(box.decrypt(ciphertext, keyId, 'con_a').toString()).toBe('s3cret-password');
    expect(() => box.decrypt(ciphertext, keyId, 'con_b')).toThrow('failed authentication');
  });

  it('decrypts with an older key after rotation and encrypts with the new one', () => {
    const old = new SecretBox([['k1', k1]]);
    const sealed = old.encrypt('x', 'ctx');
    const rotated = new SecretBox([['k2', k2], ['k1', k1]]);
    expect(rotated.decrypt(sealed.ciphertext, sealed.keyId, 'ctx').toString()).toBe('x');
    expect(rotated.encrypt('y', 'ctx').keyId).toBe('k2');
  });

  it('rejects tampered ciphertext and unknown keys', () => {
    const box = new SecretBox([['k1', k1]]);
    const { ciphertext } = box.encrypt('value', 'ctx');
    ciphertext.writeUInt8((ciphertext.readUInt8(ciphertext.length - 1) ^ 1), ciphertext.length - 1);
    expect(() => box.decrypt(ciphertext, 'k1', 'ctx')).toThrow();
    expect(() => box.decrypt(ciphertext, 'k9', 'ctx')).toThrow('not configured');
  });

  it('creates a key file with mode 0600 once and reuses it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'pa-box-')), 'master.key');
    const a = SecretBox.fromFile(file);
    const sealed = a.encrypt('v', 'c');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(SecretBox.fromFile(file).decrypt(sealed.ciphertext, sealed.keyId, 'c').toString()).toBe('v');
  });

  it('refuses keys of the wrong size', () => {
    expect(() => new SecretBox([['k1', randomBytes(16)]])).toThrow('32 bytes');
  });
});
