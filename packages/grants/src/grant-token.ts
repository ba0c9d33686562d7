import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import { AppError, newId, zodProblems, type ErrorCode } from '@pa/kit';
import {
  GRANT_AUDIENCE,
  GRANT_TOKEN_TYPE,
  MAX_GRANT_TTL_SECONDS,
  grantClaimsSchema,
  type GrantClaims,
  type GrantContentInput,
} from './claims';
import { GRANT_SIGNATURE_ALG, KID_PATTERN, assertKid, curveOf } from './keys';
import type { VerificationKeySource } from './key-store';

/** Longest grant token accepted (the compiled policy makes grants larger than most JWTs). */
export const MAX_GRANT_TOKEN_LENGTH = 256 * 1024;
/** Clock skew tolerated by `verifyGrant` unless told otherwise. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/** Options of `signGrant`. */
export interface SignGrantOptions {
  /** The control plane's current Ed25519 signing key. */
  privateKey: CryptoKey;
  /** Its key id, published in the key set nodes receive. */
  kid: string;
  /** `iss`: the control plane's identity. */
  issuer: string;
  /** Grant lifetime in seconds (1 to MAX_GRANT_TTL_SECONDS); the grant never outlives `limits.sessionEndsAt`. */
  ttlSeconds: number;
  /** `aud`; defaults to GRANT_AUDIENCE. */
  audience?: string;
  /** Grant id (`grt_…`) when the caller has already chosen one; a new id otherwise. */
  grantId?: string;
  clock?: () => Date;
}

/** A signed grant. */
export interface SignedGrant {
  /** The compact JWS. */
  token: string;
  grantId: string;
  issuedAt: Date;
  expiresAt: Date;
  /** The claims as signed. */
  claims: GrantClaims;
}

/**
 * Signs a grant: a compact JWS (EdDSA over Ed25519, header `typ` pa-grant+jwt and
 * `kid`) with `iss`, `aud`, `sub` (the user id), `jti` (the grant id), `iat`,
 * `nbf` and `exp`. The content is validated first (the policy must be
 * JSON-serialisable); backend credentials must already be encrypted
 * (`encryptCredentials`).
 */
export const signGrant = async (content: GrantContentInput, options: SignGrantOptions): Promise<SignedGrant> => {
  assertKid(options.kid);
  if (curveOf(options.privateKey) !== 'Ed25519' || options.privateKey.type !== 'private') {
    throw new AppError('VALIDATION_FAILED', { message: 'Grants are signed with an Ed25519 private key.' });
  }
  if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1 || options.ttlSeconds > MAX_GRANT_TTL_SECONDS) {
    throw new AppError('VALIDATION_FAILED', { message: `A grant lives 1 to ${MAX_GRANT_TTL_SECONDS} seconds.` });
  }
  const now = Math.floor((options.clock ?? (() => new Date()))().getTime() / 1000);
  const exp = Math.min(now + options.ttlSeconds, content.limits.sessionEndsAt);
  if (exp <= now) throw new AppError('GRANT_EXPIRED', { message: 'The session has reached its absolute end.' });
  const claims = {
    ...content,
    iss: options.issuer,
    aud: options.audience ?? GRANT_AUDIENCE,
    sub: content.user.id,
    jti: options.grantId ?? newId('grt', now * 1000),
    iat: now,
    nbf: now,
    exp,
  };
  const parsed = grantClaimsSchema.safeParse(claims);
  if (!parsed.success) {
    throw new AppError('VALIDATION_FAILED', { message: 'The grant claims are not valid.', details: zodProblems(parsed.error) });
  }
  // Sign the parsed claims: members the schema does not know are dropped, not signed.
  const token = await new SignJWT(parsed.data as unknown as JWTPayload)
    .setProtectedHeader({ alg: GRANT_SIGNATURE_ALG, kid: options.kid, typ: GRANT_TOKEN_TYPE })
    .sign(options.privateKey);
  return { token, grantId: parsed.data.jti, issuedAt: new Date(now * 1000), expiresAt: new Date(exp * 1000), claims: parsed.data };
};

/** Options of `verifyGrant`. */
export interface VerifyGrantOptions {
  /** Trusted Ed25519 public keys by `kid` (usually a KeyStore). */
  keyStore: VerificationKeySource;
  /** Expected `iss` (one, or any of several). */
  issuer: string | string[];
  /** Expected `aud`; defaults to GRANT_AUDIENCE. */
  audience?: string;
  clock?: () => Date;
  /** Skew tolerated on `nbf` and `exp`; defaults to DEFAULT_CLOCK_TOLERANCE_SECONDS. */
  clockToleranceSec?: number;
}

// Headers that carry or point at key material: a grant's key is chosen by `kid` among ours, nothing else.
const KEY_BEARING_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'];
const COMPACT_JWS = /^[\w-]+\.[\w-]+\.[\w-]*$/;

const fail = (code: ErrorCode, message: string, cause?: unknown, meta?: Record<string, unknown>): AppError =>
  new AppError(code, { message, ...(cause === undefined ? {} : { cause }), ...(meta ? { meta } : {}) });

/**
 * Verifies a grant and returns its claims. Checks, in order: shape and size;
 * header (`alg` must be EdDSA, `typ` pa-grant+jwt, no embedded or remote keys,
 * `kid` a plain token); the key (`kid` must be in `keyStore`, and an Ed25519
 * public key); the signature; `iss`, `aud`, `nbf`, `exp` against the injected
 * clock; then the claims schema. Every failure is an AppError whose code says
 * which check failed: GRANT_MALFORMED, GRANT_ALGORITHM_REJECTED,
 * GRANT_KEY_UNKNOWN, GRANT_SIGNATURE_INVALID, GRANT_ISSUER_MISMATCH,
 * GRANT_AUDIENCE_MISMATCH, GRANT_NOT_YET_VALID or GRANT_EXPIRED.
 * Revocation is not checked here (Redis, in the data plane).
 */
export const verifyGrant = async (token: string, options: VerifyGrantOptions): Promise<GrantClaims> => (await verifyGrantKeyed(token, options)).claims;

/** {@link verifyGrant}, also naming the key that verified it (for {@link GrantVerifier}'s cache). */
const verifyGrantKeyed = async (token: string, options: VerifyGrantOptions): Promise<{ claims: GrantClaims; kid: string; key: CryptoKey }> => {
  if (typeof token !== 'string' || token.length > MAX_GRANT_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
    throw fail('GRANT_MALFORMED', 'The grant is not a compact JWS.');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch (cause) {
    throw fail('GRANT_MALFORMED', 'The grant header cannot be decoded.', cause);
  }
  if (header.alg !== GRANT_SIGNATURE_ALG) throw fail('GRANT_ALGORITHM_REJECTED', 'Grants are signed with EdDSA only.', undefined, { alg: String(header.alg) });
  if (header.typ !== GRANT_TOKEN_TYPE) throw fail('GRANT_MALFORMED', 'The token is not a grant.');
  if (KEY_BEARING_HEADERS.some((h) => h in header)) throw fail('GRANT_MALFORMED', 'The grant header carries key material.');
  if (typeof header.kid !== 'string' || !KID_PATTERN.test(header.kid)) throw fail('GRANT_MALFORMED', 'The grant names no valid key id.');
  const key = options.keyStore.verificationKey(header.kid);
  if (!key) throw fail('GRANT_KEY_UNKNOWN', 'The grant was signed with a key this node does not know.', undefined, { kid: header.kid });
  if (curveOf(key) !== 'Ed25519' || key.type !== 'public') throw fail('GRANT_KEY_UNKNOWN', 'The key for this kid is not an Ed25519 public key.');

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [GRANT_SIGNATURE_ALG],
      typ: GRANT_TOKEN_TYPE,
      issuer: options.issuer,
      audience: options.audience ?? GRANT_AUDIENCE,
      currentDate: (options.clock ?? (() => new Date()))(),
      clockTolerance: options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['iss', 'aud', 'sub', 'jti', 'iat', 'nbf', 'exp'],
    }));
  } catch (err) {
    throw fromJoseError(err);
  }
  const parsed = grantClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    throw new AppError('GRANT_MALFORMED', { message: 'The grant claims are not valid.', details: zodProblems(parsed.error) });
  }
  return { claims: parsed.data, kid: header.kid, key };
};

const fromJoseError = (err: unknown): AppError => {
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return fail('GRANT_SIGNATURE_INVALID', 'The grant signature is not valid.', err);
  if (err instanceof joseErrors.JWTExpired) return fail('GRANT_EXPIRED', 'The grant has expired.', err);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return fail('GRANT_ALGORITHM_REJECTED', 'Grants are signed with EdDSA only.', err);
  // 'check_failed' means the claim is well-formed but wrong now or here; 'missing' and 'invalid' are malformed grants.
  if (err instanceof joseErrors.JWTClaimValidationFailed && err.reason === 'check_failed') {
    switch (err.claim) {
      case 'nbf':
        return fail('GRANT_NOT_YET_VALID', 'The grant is not valid yet.', err);
      case 'iss':
        return fail('GRANT_ISSUER_MISMATCH', 'The grant was not issued by a trusted control plane.', err);
      case 'aud':
        return fail('GRANT_AUDIENCE_MISMATCH', 'The grant is not meant for this service.', err);
      default:
        return fail('GRANT_MALFORMED', `The grant claim ${err.claim} is not valid.`, err);
    }
  }
  return fail('GRANT_MALFORMED', 'The grant cannot be verified.', err);
};

/** Options of {@link GrantVerifier}. */
export interface GrantVerifierOptions {
  /** Most verified tokens remembered (default 10 000). */
  readonly maxEntries?: number;
}

interface VerifiedEntry {
  readonly claims: GrantClaims;
  readonly kid: string;
  /** The key that verified it: the entry only counts while the key store still holds this very key. */
  readonly key: CryptoKey;
  readonly issuer: string;
  readonly audience: string;
  readonly tolerance: number;
}

/**
 * {@link verifyGrant} with a memory of tokens it has verified. `pa connect`
 * presents the same grant for every tunnel it opens, and a signature check
 * (WebCrypto, off the event loop and back) plus the claims schema cost most of
 * a tunnel's admission; a token seen before is answered from memory.
 *
 * What is remembered is exactly one token string's verified claims, and a hit
 * is only taken when everything the first check depended on still holds: the
 * key store still holds the very key object that verified it (a rotated-out or
 * replaced key makes every token it signed go through the full check, and
 * fail), the same issuer, audience and tolerance are asked for, and the token
 * is inside its `nbf`/`exp` window by the caller's clock. Otherwise the full
 * check runs and gives its own answer (GRANT_EXPIRED, GRANT_KEY_UNKNOWN…).
 * Revocation is not the verifier's business: callers check it after.
 */
export class GrantVerifier {
  private readonly entries = new Map<string, VerifiedEntry>();
  private readonly maxEntries: number;

  constructor(options: GrantVerifierOptions = {}) {
    this.maxEntries = Math.max(0, options.maxEntries ?? 10_000);
  }

  /** Tokens remembered. */
  get size(): number {
    return this.entries.size;
  }

  async verify(token: string, options: VerifyGrantOptions): Promise<GrantClaims> {
    const issuer = Array.isArray(options.issuer) ? options.issuer.join('\u0000') : options.issuer;
    const audience = options.audience ?? GRANT_AUDIENCE;
    const tolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
    const hit = typeof token === 'string' ? this.entries.get(token) : undefined;
    if (hit !== undefined) {
      const now = (options.clock ?? (() => new Date()))().getTime() / 1000;
      if (
        options.keyStore.verificationKey(hit.kid) === hit.key &&
        hit.issuer === issuer &&
        hit.audience === audience &&
        hit.tolerance === tolerance &&
        now >= hit.claims.nbf - tolerance &&
        now < hit.claims.exp + tolerance
      ) {
        this.entries.delete(token);
        this.entries.set(token, hit);
        return hit.claims;
      }
      this.entries.delete(token);
    }
    const { claims, kid, key } = await verifyGrantKeyed(token, options);
    if (this.maxEntries > 0) {
      this.entries.set(token, { claims, kid, key, issuer, audience, tolerance });
      if (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (!oldest.done) this.entries.delete(oldest.value);
      }
    }
    return claims;
  }
}
