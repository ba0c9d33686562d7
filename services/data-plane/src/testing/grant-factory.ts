import { newId } from '@pa/kit';
import { encryptCredentials, generateNodeKeyPair, generateSigningKeyPair, KeyStore, signGrant, type BackendCredentials, type GrantContentInput } from '@pa/grants';
import { compilePolicy, type PolicyDocumentInput, type Protocol } from '@pa/policy';

export interface GrantSpec {
  protocol: Protocol;
  host: string;
  port: number;
  database?: string | null;
  rules?: PolicyDocumentInput['rules'];
  credentials?: BackendCredentials | null;
  ttlSeconds?: number;
  maxConnections?: number;
  sessionSeconds?: number;
  userId?: string;
  sessionId?: string;
  clock?: () => Date;
}

/**
 * Signs grants the way the control plane does, with keys of its own, for tests
 * of the data plane that run without a control plane. `keys` is what a node
 * would have received over NodeService.WatchKeys.
 */
export const createGrantFactory = async (issuer = 'pa-test') => {
  const signing = await generateSigningKeyPair();
  const node = await generateNodeKeyPair();
  const keys = new KeyStore().addVerificationKey(signing.kid, signing.publicKey).addDecryptionKey(node.kid, node.privateKey);
  const sign = async (spec: GrantSpec) => {
    const connection = { id: newId('con'), name: `conn-${spec.protocol}`, protocol: spec.protocol, host: spec.host, port: spec.port, tlsMode: 'disable' as const, database: spec.database ?? null };
    const policy = compilePolicy({
      policies: [{ id: 'wl_test', version: 1, name: 'test', roles: ['tester'], selector: { connections: [connection.name] }, rules: spec.rules ?? [{ effect: 'allow', type: 'all' }] }],
      roles: ['tester'],
      connection: { name: connection.name, tags: {}, protocol: spec.protocol },
    });
    const now = Math.floor((spec.clock?.() ?? new Date()).getTime() / 1000);
    const content: GrantContentInput = {
      sessionId: spec.sessionId ?? newId('ses'),
      user: { id: spec.userId ?? newId('usr'), name: 'tester', roles: ['tester'] },
      connection,
      policy,
      limits: { maxConnections: spec.maxConnections ?? 10, sessionEndsAt: now + (spec.sessionSeconds ?? 3600), idleTimeoutSeconds: 3600 },
      credentials: spec.credentials ? await encryptCredentials(spec.credentials, node.publicKey, node.kid) : null,
    };
    return signGrant(content, { privateKey: signing.privateKey, kid: signing.kid, issuer, ttlSeconds: spec.ttlSeconds ?? 300, ...(spec.clock ? { clock: spec.clock } : {}) });
  };
  return { keys, sign, issuer };
};
