import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';
import { generateNodeKeyPair } from '@pa/grants';
import { AppError, newId, type Logger } from '@pa/kit';
import type { SecretBox } from '../../crypto/secret-box';
import type { Database } from '../../db/pool';

/**
 * `access`: signs API access tokens (Ed25519). `grant`: signs grants (Ed25519).
 * `node-encryption`: X25519 keys whose public half encrypts backend credentials
 * into grants and whose private half only data-plane nodes receive.
 */
export type KeyUse = 'access' | 'grant' | 'node-encryption';

export interface PublicKeyInfo {
  kid: string;
  use: KeyUse;
  alg: string;
  createdAt: string;
  activatedAt: string;
  retiredAt: string | null;
  jwk: JWK;
}

interface KeyRow {
  kid: string;
  use: KeyUse;
  alg: string;
  public_jwk: JWK;
  private_ciphertext: Buffer;
  key_id: string;
  created_at: Date;
  activated_at: Date;
  retired_at: Date | null;
}

const KID_PATTERN = /^key_[0-9a-hjkmnp-tv-z]{26}$/;
const RELOAD_MIN_INTERVAL_MS = 5_000;

/**
 * Ed25519 signing keys for one use, stored in PostgreSQL with the private half
 * encrypted under the master key (so every control-plane replica signs with the
 * same key). The newest unretired key signs; a rotated key keeps verifying for
 * `overlapSeconds` (the longest lifetime of what it signed), and is published in
 * the JWKS until then. A `kid` selects only among these keys.
 */
export class KeyRing {
  private keys = new Map<string, { row: KeyRow; publicKey: CryptoKey }>();
  private signer: { kid: string; privateKey: CryptoKey } | null = null;
  private lastLoad = 0;
  /** When the last key to leave the set (its overlap over) left it, in ms; 0 when none has. */
  private lastExpiry = 0;

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly use: KeyUse,
    private readonly overlapSeconds: number,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Loads the keys, creating the first one when there is none. */
  async init(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`pa-keyring-${this.use}`]);
      const { rows } = await tx.query('SELECT 1 FROM signing_keys WHERE use = $1 AND retired_at IS NULL', [this.use]);
      if (rows.length === 0) await this.insertKey(tx);
    });
    await this.reload();
  }

  /** Makes a new signing key; the previous one retires now and verifies until the overlap ends. */
  async rotate(): Promise<string> {
    const kid = await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`pa-keyring-${this.use}`]);
      await tx.query('UPDATE signing_keys SET retired_at = $2 WHERE use = $1 AND retired_at IS NULL', [this.use, this.clock()]);
      return this.insertKey(tx);
    });
    await this.reload();
    this.logger.info('Signing key rotated.', { use: this.use, kid });
    return kid;
  }

  private async insertKey(tx: { query: Database['query'] }): Promise<string> {
    const kid = newId('key');
    const encryption = this.use === 'node-encryption';
    const pair = encryption ? await generateNodeKeyPair(kid) : await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const alg = encryption ? 'ECDH-ES+A256KW' : 'EdDSA';
    const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: encryption ? 'enc' : 'sig' };
    const sealed = this.box.encrypt(JSON.stringify({ ...(await exportJWK(pair.privateKey)), kid, alg }), `signing-key:${kid}`);
    await tx.query(
      `INSERT INTO signing_keys (kid, use, alg, public_jwk, private_ciphertext, key_id, created_at, activated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
      [kid, this.use, alg, JSON.stringify(publicJwk), sealed.ciphertext, sealed.keyId, this.clock()],
    );
    return kid;
  }

  /** Re-reads keys from the database (other replicas may have rotated). */
  async reload(): Promise<void> {
    const cutoff = new Date(this.clock().getTime() - this.overlapSeconds * 1000);
    const { rows } = await this.db.query<KeyRow>(
      `SELECT * FROM signing_keys WHERE use = $1 AND (retired_at IS NULL OR retired_at > $2) ORDER BY activated_at DESC, kid DESC`,
      [this.use, cutoff],
    );
    const keys = new Map<string, { row: KeyRow; publicKey: CryptoKey }>();
    for (const row of rows) {
      keys.set(row.kid, { row, publicKey: (await importJWK(row.public_jwk, row.alg)) as CryptoKey });
    }
    const { rows: gone } = await this.db.query<{ retired: Date | null }>(
      'SELECT max(retired_at) AS retired FROM signing_keys WHERE use = $1 AND retired_at <= $2',
      [this.use, cutoff],
    );
    const lastRetired = gone[0]?.retired;
    const active = rows.find((r) => r.retired_at === null);
    if (active && this.signer?.kid !== active.kid) {
      this.signer = { kid: active.kid, privateKey: (await importJWK(this.privateJwkOf(active), active.alg)) as CryptoKey };
    }
    this.keys = keys;
    this.lastExpiry = lastRetired ? lastRetired.getTime() + this.overlapSeconds * 1000 : 0;
    this.lastLoad = Date.now();
  }

  private privateJwkOf(row: KeyRow): JWK {
    return JSON.parse(this.box.decrypt(row.private_ciphertext, row.key_id, `signing-key:${row.kid}`).toString('utf8')) as JWK;
  }

  /**
   * Private JWKs of the keys still valid (for `node-encryption`: what data-plane
   * nodes receive over NodeService.WatchKeys to decrypt credentials).
   */
  privateJwks(): JWK[] {
    const cutoff = this.clock().getTime() - this.overlapSeconds * 1000;
    return [...this.keys.values()]
      .filter(({ row }) => !row.retired_at || row.retired_at.getTime() > cutoff)
      .map(({ row }) => this.privateJwkOf(row));
  }

  /** The newest valid key's public half and kid (encrypts credentials for nodes). */
  activePublicKey(): { kid: string; publicKey: CryptoKey } {
    const active = [...this.keys.values()].find(({ row }) => row.retired_at === null);
    if (!active) throw new AppError('NOT_READY', { message: 'No active key is loaded.' });
    return { kid: active.row.kid, publicKey: active.publicKey };
  }

  /** A number that grows whenever the set of valid keys changes (a key added, retired, or gone after its overlap). */
  version(): number {
    let v = this.lastExpiry;
    for (const { row } of this.keys.values()) v = Math.max(v, row.activated_at.getTime(), row.retired_at?.getTime() ?? 0);
    return v;
  }

  /** The key that signs now. */
  signingKey(): { kid: string; privateKey: CryptoKey } {
    if (!this.signer) throw new AppError('NOT_READY', { message: 'No signing key is loaded.' });
    return this.signer;
  }

  /**
   * The public key for `kid`, or null when `kid` is not one of ours. An unknown
   * but well-formed kid triggers at most one reload every few seconds.
   */
  async publicKey(kid: unknown): Promise<CryptoKey | null> {
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) return null;
    const cutoff = this.clock().getTime() - this.overlapSeconds * 1000;
    let entry = this.keys.get(kid);
    if (!entry && Date.now() - this.lastLoad > RELOAD_MIN_INTERVAL_MS) {
      await this.reload();
      entry = this.keys.get(kid);
    }
    if (!entry) return null;
    if (entry.row.retired_at && entry.row.retired_at.getTime() <= cutoff) return null;
    return entry.publicKey;
  }

  /** Public keys still valid for verification (the JWKS content). */
  publicKeys(): PublicKeyInfo[] {
    const cutoff = this.clock().getTime() - this.overlapSeconds * 1000;
    return [...this.keys.values()]
      .filter(({ row }) => !row.retired_at || row.retired_at.getTime() > cutoff)
      .map(({ row }) => ({
        kid: row.kid,
        use: row.use,
        alg: row.alg,
        createdAt: row.created_at.toISOString(),
        activatedAt: row.activated_at.toISOString(),
        retiredAt: row.retired_at ? row.retired_at.toISOString() : null,
        jwk: row.public_jwk,
      }));
  }
}
