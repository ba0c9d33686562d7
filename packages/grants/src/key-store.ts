import type { CryptoKey } from 'jose';
import { AppError } from '@pa/kit';
import { assertKid, curveOf, importKeyJwk, type OkpJwkInput } from './keys';

/** Resolves a grant's `kid` to an Ed25519 public key, or undefined when unknown. */
export interface VerificationKeySource {
  verificationKey(kid: string): CryptoKey | undefined;
}

/** Resolves a credential JWE's `kid` to an X25519 private key, or undefined when unknown. */
export interface DecryptionKeySource {
  decryptionKey(kid: string): CryptoKey | undefined;
}

/**
 * The keys a data-plane node (or the control plane) trusts, by `kid`: Ed25519
 * public keys that verify grants and X25519 private keys that decrypt grant
 * credentials. It holds several of each, so during a rotation grants made with
 * the old and the new key both pass; nothing else can be stored (no RSA, EC or
 * HMAC key, no Ed25519 private key), so a `kid` can only ever select one of
 * these. Rebuild it from each key set NodeService.WatchKeys sends and swap the
 * reference: a store is never partly updated.
 */
export class KeyStore implements VerificationKeySource, DecryptionKeySource {
  private readonly verification = new Map<string, CryptoKey>();
  private readonly decryption = new Map<string, CryptoKey>();

  /** Builds a store from JWKs: Ed25519 public keys and X25519 private keys (with `d`). */
  static async fromJwks(jwks: Iterable<OkpJwkInput>): Promise<KeyStore> {
    const store = new KeyStore();
    for (const jwk of jwks) {
      const imported = await importKeyJwk(jwk);
      if (imported.crv === 'Ed25519') store.addVerificationKey(imported.kid, imported.publicKey);
      else if (imported.privateKey) store.addDecryptionKey(imported.kid, imported.privateKey);
      else throw new AppError('VALIDATION_FAILED', { message: `X25519 key ${imported.kid} has no private part; a node needs it to decrypt.` });
    }
    return store;
  }

  /** Adds an Ed25519 public key that verifies grants signed under `kid`. */
  addVerificationKey(kid: string, key: CryptoKey): this {
    assertKid(kid);
    if (curveOf(key) !== 'Ed25519' || key.type !== 'public') {
      throw new AppError('VALIDATION_FAILED', { message: 'A grant verification key must be an Ed25519 public key.' });
    }
    this.verification.set(kid, key);
    return this;
  }

  /** Adds an X25519 private key that decrypts credentials encrypted under `kid`. */
  addDecryptionKey(kid: string, key: CryptoKey): this {
    assertKid(kid);
    if (curveOf(key) !== 'X25519' || key.type !== 'private') {
      throw new AppError('VALIDATION_FAILED', { message: 'A credential decryption key must be an X25519 private key.' });
    }
    this.decryption.set(kid, key);
    return this;
  }

  /** Removes every key with this `kid`; true when one was removed. */
  remove(kid: string): boolean {
    const a = this.verification.delete(kid);
    const b = this.decryption.delete(kid);
    return a || b;
  }

  verificationKey(kid: string): CryptoKey | undefined {
    return this.verification.get(kid);
  }

  decryptionKey(kid: string): CryptoKey | undefined {
    return this.decryption.get(kid);
  }

  /** The `kid`s of the verification keys, sorted. */
  verificationKids(): string[] {
    return [...this.verification.keys()].sort();
  }

  /** The `kid`s of the decryption keys, sorted. */
  decryptionKids(): string[] {
    return [...this.decryption.keys()].sort();
  }
}
