import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { AppError, newId } from '@pa/kit';
import { z } from 'zod';

/** The only signature algorithm of grants. */
export const GRANT_SIGNATURE_ALG = 'EdDSA';
/** The only key-management algorithm of grant credentials. */
export const CREDENTIALS_KEY_ALG = 'ECDH-ES+A256KW';
/** The only content-encryption algorithm of grant credentials. */
export const CREDENTIALS_ENC = 'A256GCM';

/**
 * What a `kid` may look like: a plain token, never a URL, path or anything a
 * resolver could follow. A `kid` only selects among the keys of a KeyStore.
 */
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** An OKP JSON Web Key as exchanged over NodeService.WatchKeys (RFC 8037). */
export interface OkpJwk {
  kid: string;
  kty: 'OKP';
  crv: 'Ed25519' | 'X25519';
  alg: typeof GRANT_SIGNATURE_ALG | typeof CREDENTIALS_KEY_ALG;
  use: 'sig' | 'enc';
  /** Public key, base64url. */
  x: string;
  /** Private key, base64url (secret); absent in public keys. */
  d?: string;
}

/** A key pair with its id. */
export interface KeyPairWithId {
  kid: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

// proto3 strings default to '' — treat an empty optional member as absent, so a
// decoded portauth.v1.Jwk can be passed as it is.
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const b64url = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a 32-byte base64url value');

const jwkInputSchema = z
  .object({
    kid: z.string().regex(KID_PATTERN, 'a kid of letters, digits, _ and -'),
    kty: z.literal('OKP'),
    crv: z.enum(['Ed25519', 'X25519']),
    alg: optional(z.enum([GRANT_SIGNATURE_ALG, CREDENTIALS_KEY_ALG])),
    use: optional(z.enum(['sig', 'enc'])),
    x: b64url,
    d: optional(b64url),
  })
  .refine((k) => k.alg === undefined || k.alg === (k.crv === 'Ed25519' ? GRANT_SIGNATURE_ALG : CREDENTIALS_KEY_ALG), {
    message: 'alg does not match crv',
    path: ['alg'],
  })
  .refine((k) => k.use === undefined || k.use === (k.crv === 'Ed25519' ? 'sig' : 'enc'), { message: 'use does not match crv', path: ['use'] });

/**
 * Input accepted by `importKeyJwk`: an `OkpJwk`, or a decoded `portauth.v1.Jwk`
 * as it is (plain strings, empty for absent members). Validated at run time.
 */
export interface OkpJwkInput {
  readonly kid: string;
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly alg?: string;
  readonly use?: string;
  readonly d?: string;
}

const invalidKey = (message: string, cause?: unknown): AppError => new AppError('VALIDATION_FAILED', { message, cause });

/** Generates an Ed25519 key pair for signing grants. */
export const generateSigningKeyPair = async (kid: string = newId('key')): Promise<KeyPairWithId> => {
  assertKid(kid);
  const { publicKey, privateKey } = await generateKeyPair(GRANT_SIGNATURE_ALG, { crv: 'Ed25519', extractable: true });
  return { kid, publicKey, privateKey };
};

/** Generates an X25519 node key pair; grant credentials are encrypted to its public half. */
export const generateNodeKeyPair = async (kid: string = newId('key')): Promise<KeyPairWithId> => {
  assertKid(kid);
  const { publicKey, privateKey } = await generateKeyPair(CREDENTIALS_KEY_ALG, { crv: 'X25519', extractable: true });
  return { kid, publicKey, privateKey };
};

/**
 * Exports an Ed25519 or X25519 key (public or private; private keys must have
 * been created extractable) as a JWK with `kid`, `alg` and `use`.
 */
export const exportKeyJwk = async (key: CryptoKey, kid: string): Promise<OkpJwk> => {
  assertKid(kid);
  const crv = curveOf(key);
  if (!crv) throw invalidKey('Only Ed25519 and X25519 keys can be exported.');
  const jwk: JWK = await exportJWK(key);
  if (typeof jwk.x !== 'string') throw invalidKey('The key has no public part.');
  const out: OkpJwk =
    crv === 'Ed25519'
      ? { kid, kty: 'OKP', crv, alg: GRANT_SIGNATURE_ALG, use: 'sig', x: jwk.x }
      : { kid, kty: 'OKP', crv, alg: CREDENTIALS_KEY_ALG, use: 'enc', x: jwk.x };
  if (key.type === 'private' && typeof jwk.d === 'string') out.d = jwk.d;
  return out;
};

/** Returns the public half of a JWK (drops `d`). */
export const toPublicJwk = (jwk: OkpJwk): OkpJwk => {
  const { d: _d, ...pub } = jwk;
  return pub;
};

/** A key imported from a JWK: the public key, and the private key when the JWK had one. */
export interface ImportedKey {
  kid: string;
  crv: 'Ed25519' | 'X25519';
  publicKey: CryptoKey;
  privateKey?: CryptoKey;
}

/** Imports an OKP JWK (Ed25519 or X25519), validating it first. */
export const importKeyJwk = async (input: OkpJwkInput): Promise<ImportedKey> => {
  const parsed = jwkInputSchema.safeParse(input);
  if (!parsed.success) throw invalidKey(`Not an Ed25519 or X25519 JWK: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const { kid, crv, x, d } = parsed.data;
  const alg = crv === 'Ed25519' ? GRANT_SIGNATURE_ALG : CREDENTIALS_KEY_ALG;
  try {
    const publicKey = (await importJWK({ kty: 'OKP', crv, x }, alg)) as CryptoKey;
    if (d === undefined) return { kid, crv, publicKey };
    const privateKey = (await importJWK({ kty: 'OKP', crv, x, d }, alg)) as CryptoKey;
    return { kid, crv, publicKey, privateKey };
  } catch (cause) {
    throw invalidKey('The JWK could not be imported.', cause);
  }
};

/** The curve of an Ed25519 or X25519 CryptoKey, else undefined. */
export const curveOf = (key: CryptoKey): 'Ed25519' | 'X25519' | undefined => {
  const name = key.algorithm.name;
  return name === 'Ed25519' || name === 'X25519' ? name : undefined;
};

/** Throws unless `kid` matches KID_PATTERN. */
export const assertKid = (kid: string): void => {
  if (!KID_PATTERN.test(kid)) throw invalidKey('A kid is 1 to 128 letters, digits, _ or -.');
};
