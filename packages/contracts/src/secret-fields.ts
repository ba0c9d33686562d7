/** A proto field tagged `// secret`, with the property name it has in the generated TypeScript. */
export interface SecretField {
  /** Fully qualified message name. */
  readonly message: string;
  /** Field name in the .proto file. */
  readonly field: string;
  /** Property name in the generated TypeScript. */
  readonly property: string;
}

/**
 * Every field of `proto/` that holds a secret. A test checks this list against
 * the `// secret` tags in the .proto files, so a new secret field cannot be
 * added without being listed here.
 */
export const SECRET_FIELDS: readonly SecretField[] = [
  { message: 'portauth.v1.Grant', field: 'grant_token', property: 'grantToken' },
  { message: 'portauth.v1.Jwk', field: 'd', property: 'd' },
  { message: 'portauth.v1.KeySet', field: 'credential_decryption_keys', property: 'credentialDecryptionKeys' },
  { message: 'portauth.v1.RenewGrantRequest', field: 'grant_token', property: 'grantToken' },
];

const SECRET_PROPERTIES = new Set(SECRET_FIELDS.map((f) => f.property));
const REDACTED = '[REDACTED]';

/**
 * Returns a copy of a decoded message (or any plain tree of them) with every
 * secret property replaced by `[REDACTED]`, for logs and error reports. It
 * matches property names, so it may also redact a same-named property of a
 * message that holds no secret; it never leaves a secret in.
 */
export const redactSecrets = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_PROPERTIES.has(key) && v !== undefined && v !== '' ? REDACTED : redactSecrets(v);
  }
  return out;
};
