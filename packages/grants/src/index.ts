/**
 * The grant format: what a grant says, how the control plane signs it and how a
 * data-plane node verifies it with no call back, plus the backend credentials
 * inside it, encrypted so that only the data plane can read them.
 */
export {
  GRANT_AUDIENCE,
  GRANT_TOKEN_TYPE,
  MAX_GRANT_TTL_SECONDS,
  TLS_MODES,
  grantClaimsSchema,
  grantConnectionSchema,
  grantContentSchema,
  grantPolicySchema,
  grantUserSchema,
  sessionLimitsSchema,
  type GrantClaims,
  type GrantConnection,
  type GrantContent,
  type GrantContentInput,
  type GrantPolicy,
  type GrantPolicyInput,
  type GrantUser,
  type SessionLimits,
  type TlsMode,
} from './claims';
export {
  GrantVerifier,
  type GrantVerifierOptions,
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  MAX_GRANT_TOKEN_LENGTH,
  signGrant,
  verifyGrant,
  type SignGrantOptions,
  type SignedGrant,
  type VerifyGrantOptions,
} from './grant-token';
export {
  CREDENTIALS_TOKEN_TYPE,
  backendCredentialsSchema,
  decryptCredentials,
  CredentialsCache,
  type CredentialsCacheOptions,
  encryptCredentials,
  type BackendCredentials,
} from './credentials';
export {
  CREDENTIALS_ENC,
  CREDENTIALS_KEY_ALG,
  GRANT_SIGNATURE_ALG,
  KID_PATTERN,
  exportKeyJwk,
  generateNodeKeyPair,
  generateSigningKeyPair,
  importKeyJwk,
  toPublicJwk,
  type ImportedKey,
  type KeyPairWithId,
  type OkpJwk,
  type OkpJwkInput,
} from './keys';
export { KeyStore, type DecryptionKeySource, type VerificationKeySource } from './key-store';
