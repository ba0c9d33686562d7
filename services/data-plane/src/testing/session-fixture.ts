import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, createCaptureLogger, type Logger } from '@pa/kit';
import { encryptCredentials, generateNodeKeyPair, generateSigningKeyPair, KeyStore, signGrant, verifyGrant, type BackendCredentials, type GrantClaims } from '@pa/grants';
import { compilePolicy, createPolicyEngine, initPolicyEngine, loadCompiledPolicy, type PolicyDocumentInput, type PolicyEngine, type Protocol } from '@pa/policy';
import { MemoryRateLimits } from '@pa/state';
import { AuditRecorder, AuditSpool, type AuditEvent, type AuditSpoolDurability } from '../audit';
import { sessionAudit, type HandlerSettings, type SessionContext } from '../protocols/handler';

/**
 * Builds a real SessionContext for handler tests, as the tunnel listener would:
 * a grant signed and verified with generated keys, credentials encrypted to a
 * node key, the policy compiled from documents by the real engine, and audit
 * through a real on-disk spool (whose events tests can read back).
 */
export interface SessionFixtureOptions {
  protocol: Protocol;
  host: string;
  port: number;
  database?: string | null;
  tlsMode?: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  /** Policy documents (roles default to the fixture user's role `tester`). */
  policies: Array<Omit<PolicyDocumentInput, 'roles' | 'selector'> & Partial<Pick<PolicyDocumentInput, 'roles' | 'selector'>>>;
  credentials?: BackendCredentials | null;
  settings?: Partial<HandlerSettings>;
  idleTimeoutSeconds?: number;
  /** Override the audit sink (e.g. one that refuses, to test spool-full behaviour). */
  audit?: SessionContext['audit'];
  /** The spool's durability (default `written`, as on a node). */
  auditDurability?: AuditSpoolDurability;
}

export interface SessionFixture {
  ctx: SessionContext;
  grant: GrantClaims;
  engine: PolicyEngine;
  abort: AbortController;
  logs: string[];
  logger: Logger;
  /** Every audit event written so far (read back from the spool). */
  events(): Promise<AuditEvent[]>;
  /**
   * Acknowledges events as they become durable, as a node's shipper does once
   * the control plane has them (benchmarks: the spool stays small, as in
   * production). Returns how many were acknowledged so far.
   */
  shipContinuously(): () => number;
  close(): Promise<void>;
}

export const DEFAULT_TEST_SETTINGS: HandlerSettings = { idleTimeoutMs: 60_000, connectTimeoutMs: 5_000, maxHeaderBytes: 16 * 1024 };

export const createSessionFixture = async (o: SessionFixtureOptions): Promise<SessionFixture> => {
  await initPolicyEngine();
  const signing = await generateSigningKeyPair();
  const node = await generateNodeKeyPair();
  const keys = new KeyStore().addVerificationKey(signing.kid, signing.publicKey).addDecryptionKey(node.kid, node.privateKey);
  const connection = { id: newId('con'), name: 'test-target', protocol: o.protocol, host: o.host, port: o.port, tlsMode: o.tlsMode ?? 'disable', database: o.database ?? null };
  const policy = compilePolicy({
    policies: o.policies.map((p, i) => ({ roles: ['tester'], selector: { connections: [connection.name] }, ...p, id: `wl_test${i}`, version: 1 })),
    roles: ['tester'],
    connection: { name: connection.name, tags: {}, protocol: o.protocol },
  });
  const now = Math.floor(Date.now() / 1000);
  const signed = await signGrant(
    {
      sessionId: newId('ses'),
      user: { id: newId('usr'), name: 'tester', roles: ['tester'] },
      connection,
      policy,
      limits: { maxConnections: 10, sessionEndsAt: now + 3600, idleTimeoutSeconds: o.idleTimeoutSeconds ?? 3600 },
      credentials: o.credentials ? await encryptCredentials(o.credentials, node.publicKey, node.kid) : null,
    },
    { privateKey: signing.privateKey, kid: signing.kid, issuer: 'pa-test', ttlSeconds: 600 },
  );
  const grant = await verifyGrant(signed.token, { keyStore: keys, issuer: 'pa-test' });
  const dir = mkdtempSync(join(tmpdir(), 'pa-spool-'));
  // As a node runs it (services/data-plane/src/node.ts): written durability, 10 ms groups.
  const durability = o.auditDurability ?? 'written';
  const spool = await AuditSpool.open({ dir, durability, groupCommitWindowMs: durability === 'written' ? 10 : 2 });
  const recorder = new AuditRecorder({ spool, nodeId: 'node-test' });
  const engine = createPolicyEngine();
  const { logger, lines } = createCaptureLogger('data-plane-test');
  const abort = new AbortController();
  const limits = new MemoryRateLimits();
  const tunnelId = newId('tun');
  const ctx: SessionContext = {
    tunnelId,
    nodeId: 'node-test',
    grant,
    policy: loadCompiledPolicy(grant.policy),
    engine,
    credentials: async () => (o.credentials ? o.credentials : null),
    audit: o.audit ?? sessionAudit(recorder, grant, o.protocol, tunnelId),
    consumeRequest: () => limits.consumeRequest(grant.user.id, grant.connection.id),
    signal: abort.signal,
    logger,
    clock: () => new Date(),
    settings: { ...DEFAULT_TEST_SETTINGS, ...o.settings },
  };
  return {
    ctx,
    grant,
    engine,
    abort,
    logs: lines,
    logger,
    events: async () => {
      await spool.settle();
      return spool.readUnacked(100_000);
    },
    shipContinuously: () => {
      let shipped = 0;
      let shipping = false;
      const ship = async (): Promise<void> => {
        if (shipping) return;
        shipping = true;
        try {
          // As spooled, the node's shipper reads them (no decoding).
          for (let batch = await spool.readUnackedSpooled(1000); batch.length > 0; batch = await spool.readUnackedSpooled(1000)) {
            await spool.ack(batch.map((e) => e.id));
            shipped += batch.length;
          }
        } finally {
          shipping = false;
        }
      };
      spool.onDurable(() => void ship());
      return () => shipped;
    },
    close: async () => {
      engine.close();
      await spool.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
