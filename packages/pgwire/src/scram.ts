import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it:
 * no channel binding (gs2 header `n,,`; the proxy never advertises
 * SCRAM-SHA-256-PLUS), empty user name in the client-first-message (the
 * server takes the user from the StartupMessage), and the server signature
 * always verified before AuthenticationOk is accepted.
 *
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html#SASL-SCRAM-SHA-256
 * @see https://www.rfc-editor.org/rfc/rfc5802
 * @see https://www.rfc-editor.org/rfc/rfc7677
 */

/** The mechanism name PostgreSQL offers in AuthenticationSASL. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** Raised for a malformed or dishonest server message; the connector turns it into PG_BACKEND_AUTH_FAILED. */
export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/** Options of {@link ScramClient}. */
export interface ScramClientOptions {
  /** Client nonce (printable, no comma); random 18 bytes base64 by default. Fixed only in tests. */
  readonly nonce?: string;
  /** User name in the client-first-message; PostgreSQL ignores it, so empty by default. */
  readonly username?: string;
  /** Refuse a server asking for more PBKDF2 iterations than this (CPU exhaustion). Default 1,000,000. */
  readonly maxIterations?: number;
}

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer): Buffer => {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i += 1) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
};
const pbkdf2Async = (password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> =>
  new Promise((resolve, reject) => pbkdf2(password, salt, iterations, 32, 'sha256', (err, key) => (err ? reject(err) : resolve(key))));

/** Escapes a saslname (RFC 5802 §5.1: `=` → `=3D`, `,` → `=2C`). */
const saslName = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');

/** Parses `a=b,c=d` attributes; values may contain `=`. */
const attributes = (message: string): Map<string, string> => {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=') throw new ScramError('Malformed SCRAM message.');
    const key = part[0] as string;
    if (out.has(key)) throw new ScramError('Malformed SCRAM message.');
    out.set(key, part.slice(2));
  }
  return out;
};

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 3454 table C.1.2, mapped to SPACE (checked first, as PostgreSQL's pg_saslprep does). */
const isNonAsciiSpace = (cp: number): boolean =>
  cp === 0x00a0 || cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200b) || cp === 0x202f || cp === 0x205f || cp === 0x3000;

/** RFC 3454 table B.1, "commonly mapped to nothing". */
const isMappedToNothing = (cp: number): boolean =>
  cp === 0x00ad ||
  cp === 0x034f ||
  cp === 0x1806 ||
  (cp >= 0x180b && cp <= 0x180d) ||
  (cp >= 0x200b && cp <= 0x200d) ||
  cp === 0x2060 ||
  (cp >= 0xfe00 && cp <= 0xfe0f) ||
  cp === 0xfeff;

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to passwords: map non-ASCII
 * spaces to space, drop characters mapped to nothing, normalise with NFKC;
 * if the result holds prohibited characters, PostgreSQL uses the raw bytes,
 * and so does this. Pure printable-ASCII passwords are unchanged.
 * (Bidirectional-text rules are not checked; such passwords fall back to raw
 * bytes in PostgreSQL only when they also contain prohibited characters.)
 */
export const saslPrep = (password: string): Buffer => {
  if (/^[\x20-\x7e]*$/.test(password)) return Buffer.from(password, 'utf8');
  let out = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0) as number;
    if (isNonAsciiSpace(cp)) out += ' ';
    else if (!isMappedToNothing(cp)) out += ch;
  }
  const mapped = out.normalize('NFKC');
  const prohibited = /[\p{Cc}\p{Co}\p{Cs}\p{Cn}\u0340\u0341\u200e\u200f\u202a-\u202e\u206a-\u206f\ufff9-\ufffd\u2ff0-\u2ffb]/u;
  if (mapped.length === 0 || prohibited.test(mapped)) return Buffer.from(password, 'utf8');
  return Buffer.from(mapped, 'utf8');
};

/**
 * One SCRAM-SHA-256 exchange. Call {@link clientFirstMessage}, then
 * {@link clientFinalMessage} with the server-first-message (from
 * AuthenticationSASLContinue), then {@link verifyServerFinal} with the
 * server-final-message (from AuthenticationSASLFinal).
 */
export class ScramClient {
  private readonly nonce: string;
  private readonly clientFirstBare: string;
  private readonly maxIterations: number;
  private expectedServerSignature: Buffer | null = null;
  private verified = false;

  constructor(
    private readonly password: string,
    options: ScramClientOptions = {},
  ) {
    this.nonce = options.nonce ?? randomBytes(18).toString('base64');
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(this.nonce)) throw new RangeError('A SCRAM nonce is printable ASCII without commas.');
    this.clientFirstBare = `n=${saslName(options.username ?? '')},r=${this.nonce}`;
    this.maxIterations = options.maxIterations ?? 1_000_000;
  }

  /** True once the server proved it knows the password (its signature matched). */
  get isServerVerified(): boolean {
    return this.verified;
  }

  /** The client-first-message, with the gs2 header `n,,` (no channel binding). */
  clientFirstMessage(): Buffer {
    return Buffer.from(`n,,${this.clientFirstBare}`, 'utf8');
  }

  /** Answers the server-first-message with the client-final-message (with the proof). */
  async clientFinalMessage(serverFirst: Buffer): Promise<Buffer> {
    if (this.expectedServerSignature) throw new ScramError('Unexpected SCRAM message.');
    const serverFirstText = serverFirst.toString('utf8');
    const attrs = attributes(serverFirstText);
    if (attrs.has('m')) throw new ScramError('Unsupported SCRAM extension.');
    const combinedNonce = attrs.get('r');
    const saltB64 = attrs.get('s');
    const iterText = attrs.get('i');
    if (!combinedNonce || !saltB64 || !iterText) throw new ScramError('Malformed SCRAM server-first-message.');
    if (!combinedNonce.startsWith(this.nonce) || combinedNonce.length <= this.nonce.length) {
      throw new ScramError('SCRAM server nonce does not extend the client nonce.');
    }
    if (!/^[\x21-\x2b\x2d-\x7e]+$/.test(combinedNonce)) throw new ScramError('Malformed SCRAM nonce.');
    if (!BASE64.test(saltB64)) throw new ScramError('Malformed SCRAM salt.');
    if (!/^[1-9][0-9]{0,9}$/.test(iterText)) throw new ScramError('Malformed SCRAM iteration count.');
    const iterations = Number(iterText);
    if (iterations > this.maxIterations) throw new ScramError('SCRAM iteration count is above the allowed maximum.');
    const salt = Buffer.from(saltB64, 'base64');
    if (salt.length === 0) throw new ScramError('Malformed SCRAM salt.');

    const saltedPassword = await pbkdf2Async(saslPrep(this.password), salt, iterations);
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = sha256(clientKey);
    const serverKey = hmac(saltedPassword, 'Server Key');
    const clientFinalWithoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${combinedNonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirstText},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = xor(clientKey, clientSignature).toString('base64');
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${clientFinalWithoutProof},p=${proof}`, 'utf8');
  }

  /** Checks the server-final-message; throws {@link ScramError} unless the server signature matches. */
  verifyServerFinal(serverFinal: Buffer): void {
    const expected = this.expectedServerSignature;
    if (!expected || this.verified) throw new ScramError('Unexpected SCRAM message.');
    const attrs = attributes(serverFinal.toString('utf8'));
    const err = attrs.get('e');
    if (err !== undefined) throw new ScramError('SCRAM authentication was refused by the server.');
    const v = attrs.get('v');
    if (!v || !BASE64.test(v)) throw new ScramError('Malformed SCRAM server-final-message.');
    const got = Buffer.from(v, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new ScramError('SCRAM server signature does not match.');
    }
    this.verified = true;
  }
}

/**
 * The MD5 password answer: `"md5" + md5(md5(password + user) + salt)` in hex.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
export const md5PasswordResponse = (user: string, password: string, salt: Buffer): string => {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return `md5${createHash('md5').update(inner, 'utf8').update(salt).digest('hex')}`;
};
