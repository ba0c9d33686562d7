import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { BackendKey } from './backend-framer';

/** Where a proxy-issued cancel key leads: the backend's own key and address. */
export interface CancelTarget {
  readonly host: string;
  readonly port: number;
  readonly backendKey: BackendKey;
  /** Opaque routing data for the data plane (e.g. the TLS mode of the connection). */
  readonly context?: Readonly<Record<string, string>>;
}

/**
 * Maps the cancel keys the proxy hands to clients (BackendKeyData with a
 * random process id and secret) to the backend's real keys, which a client
 * never sees. The data plane shares one store across nodes (Redis later); this
 * interface is what it codes against.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 */
export interface CancelKeyStore {
  /** Issues a fresh proxy key for `target` and remembers the pair. */
  issue(target: CancelTarget): Promise<BackendKey>;
  /** The target for a key a client presented, or null (unknown key or wrong secret). */
  resolve(processId: number, secretKey: Buffer): Promise<CancelTarget | null>;
  /** Forgets a key (session ended). */
  revoke(processId: number): Promise<void>;
}

/** Options of {@link InMemoryCancelKeyStore}. */
export interface InMemoryCancelKeyStoreOptions {
  /** Secret length; 4 bytes for protocol 3.0 clients (the default). */
  readonly secretLength?: number;
  /** Upper bound on live keys; issuing beyond it throws. Default 100,000. */
  readonly maxEntries?: number;
}

/**
 * A single-node {@link CancelKeyStore}. Process ids are random positive
 * 31-bit integers, unique among live keys; secrets come from the CSPRNG and
 * are compared in constant time.
 */
export class InMemoryCancelKeyStore implements CancelKeyStore {
  private readonly entries = new Map<number, { secret: Buffer; target: CancelTarget }>();
  private readonly secretLength: number;
  private readonly maxEntries: number;

  constructor(options: InMemoryCancelKeyStoreOptions = {}) {
    this.secretLength = options.secretLength ?? 4;
    this.maxEntries = options.maxEntries ?? 100_000;
    if (this.secretLength < 4 || this.secretLength > 256) throw new RangeError('A cancel secret is 4 to 256 bytes.');
  }

  /** Number of live keys. */
  get size(): number {
    return this.entries.size;
  }

  issue(target: CancelTarget): Promise<BackendKey> {
    if (this.entries.size >= this.maxEntries) return Promise.reject(new RangeError('Too many live cancel keys.'));
    let processId = randomInt(1, 0x7fffffff);
    while (this.entries.has(processId)) processId = randomInt(1, 0x7fffffff);
    const secretKey = randomBytes(this.secretLength);
    this.entries.set(processId, { secret: secretKey, target });
    return Promise.resolve({ processId, secretKey: Buffer.from(secretKey) });
  }

  resolve(processId: number, secretKey: Buffer): Promise<CancelTarget | null> {
    const e = this.entries.get(processId);
    if (!e || e.secret.length !== secretKey.length || !timingSafeEqual(e.secret, secretKey)) return Promise.resolve(null);
    return Promise.resolve(e.target);
  }

  revoke(processId: number): Promise<void> {
    this.entries.delete(processId);
    return Promise.resolve();
  }
}
