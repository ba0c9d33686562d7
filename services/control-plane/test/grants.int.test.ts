import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { IssueGrantResponse, Protocol, dateFromTimestamp, type Grant, type Timestamp } from '@pa/contracts';
import { KeyStore, decryptCredentials, verifyGrant, type GrantClaims } from '@pa/grants';
import { loadCompiledPolicy } from '@pa/policy';
import { createState, type State } from '@pa/state';
import { auditRows, auditRowsAddedBy, createConnection, createPolicy, createRole, userWithToken } from './fixtures';
import { grantClient, grpcFailure, nextKeySet, nodeClient, revokedIn, type NodeSpec } from './grpc-client';
import { bearer, createHarness, startGrpc, type GrpcHarness, type Harness } from './harness';

/**
 * GrantService (IssueGrant, RenewGrant) over real gRPC, and the admin grant API:
 * what a grant carries, that the data plane can verify and decrypt it with the
 * keys NodeService hands out, that the backend password never shows anywhere
 * else, and that renewal follows the policy and the session's end.
 */

interface GrantBody {
  id: string;
  userId: string;
  username: string;
  connectionId: string;
  connectionName: string;
  sessionId: string;
  policyHash: string;
  issuedAt: string;
  expiresAt: string;
  sessionEndsAt: string;
  renewedFrom: string | null;
  revokedAt: string | null;
  revokeReason: string | null;
  active: boolean;
}

const ms = (t: Timestamp | undefined): number => {
  if (!t) throw new Error('missing timestamp');
  return dateFromTimestamp(t).getTime();
};

const claimsOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as Record<string, unknown>;

const NODE_A: NodeSpec = { nodeId: 'nod_grants_a', tunnelUrl: 'https://node-a.test:7000/tunnel' };

describe('grants', () => {
  let h: Harness;
  let g: GrpcHarness;
  let admin: string;
  /** Another node's view of revocations (its own Redis connection and mirror). */
  let otherNode: State;
  const PASSWORD = `orders-backend-pw-${randomBytes(12).toString('hex')}`;
  let alice: { user: { id: string }; token: string };
  let bob: { user: { id: string }; token: string };
  /** A signed-in user whose roles no policy covers. */
  let mallory: { user: { id: string }; token: string };
  let orders: { id: string };

  const nodes = () => nodeClient(g);
  const keyStore = async (): Promise<KeyStore> => {
    const watch = nodes().watch(NODE_A.nodeId);
    try {
      const set = await nextKeySet(watch);
      return KeyStore.fromJwks([...set.grantVerificationKeys, ...set.credentialDecryptionKeys]);
    } finally {
      watch.cancel();
    }
  };
  const verify = async (token: string): Promise<GrantClaims> => verifyGrant(token, { keyStore: await keyStore(), issuer: h.config.auth.issuer, clock: h.clock.now });
  const getGrant = async (id: string): Promise<GrantBody> => {
    const res = await h.request.get(`/api/v1/grants/${id}`).set(bearer(admin));
    expect(res.status).toBe(200);
    return res.body as GrantBody;
  };

  beforeAll(async () => {
    h = await createHarness();
    g = await startGrpc(h);
    admin = await h.adminToken();
    otherNode = createState({ redis: h.redis.url, keyPrefix: h.redis.prefix });
    await otherNode.revocations.start();
    await createRole(h, 'dba', []);
    alice = await userWithToken(h, 'alice', ['dba']);
    bob = await userWithToken(h, 'bob', ['dba']);
    mallory = await userWithToken(h, 'mallory', ['user']);
    orders = await createConnection(h, {
      name: 'orders-db',
      protocol: 'postgres',
      host: 'orders.db.internal',
      port: 5433,
      tlsMode: 'require',
      database: 'orders',
      maxGrantSeconds: 1800,
      credential: { kind: 'password', username: 'pa_proxy', password: PASSWORD },
    });
    await createConnection(h, { name: 'short-db', protocol: 'postgres', host: 'short.db.internal', port: 5432, database: 'short', maxGrantSeconds: 120 });
    await createConnection(h, { name: 'reports-db', protocol: 'postgres', host: 'reports.db.internal', port: 5432, database: 'reports' });
    await createConnection(h, { name: 'intranet', protocol: 'http', host: 'intranet.internal', port: 80 });
    await createPolicy(h, {
      name: 'dba-orders',
      roles: ['dba'],
      selector: { connections: ['orders-db', 'short-db', 'intranet'] },
      rules: [
        { id: 'read', effect: 'allow', type: 'sql', kinds: ['select'] },
        { id: 'web', effect: 'allow', type: 'http', methods: ['GET'], paths: ['/**'] },
      ],
    });
    await createPolicy(h, { name: 'dba-reports', roles: ['dba'], selector: { connections: ['reports-db'] }, rules: [{ id: 'read', effect: 'allow', type: 'sql', kinds: ['select'] }] });
    await nodes().register(NODE_A);
  });
  afterAll(async () => {
    await otherNode?.close();
    await h?.close();
  });
  // Node liveness follows the movable clock: keep the standard node heartbeating.
  beforeEach(async () => {
    await nodes().heartbeat(NODE_A);
  });

  describe('IssueGrant', () => {
    it('refuses a call without a valid access token with UNAUTHENTICATED', async () => {
      const cases: Array<[string | undefined, string]> = [
        [undefined, 'AUTH_REQUIRED'],
        ['not-a-token', 'AUTH_TOKEN_INVALID'],
        [g.nodeToken, 'AUTH_TOKEN_INVALID'],
      ];
      for (const [token, errorCode] of cases) {
        const f = await grpcFailure(grantClient(g, token).issue('orders-db'));
        expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, errorCode]);
      }
    });

    it('issues a grant: token, id, expiry at the default TTL, renew_at before it, live tunnel URLs', async () => {
      const before = h.clock.now().getTime();
      const grant = await grantClient(g, alice.token).issue('orders-db');
      expect(grant.grantToken.split('.')).toHaveLength(3);
      expect(grant.grantId).toMatch(/^grt_[0-9a-z]{26}$/);
      expect(grant.sessionId).toMatch(/^ses_[0-9a-z]{26}$/);
      expect(grant.protocol).toBe(Protocol.POSTGRES);
      expect(grant.connectionId).toBe(orders.id);
      expect(grant.connectionName).toBe('orders-db');
      expect(grant.tunnelUrls).toEqual([NODE_A.tunnelUrl]);
      const ttl = (ms(grant.expiresAt) - before) / 1000;
      expect(ttl).toBeGreaterThan(298);
      expect(ttl).toBeLessThanOrEqual(301);
      expect(ms(grant.renewAt)).toBeGreaterThan(before);
      expect(ms(grant.renewAt)).toBeLessThan(ms(grant.expiresAt));
      const sessionSeconds = (ms(grant.sessionEndsAt) - before) / 1000;
      expect(sessionSeconds).toBeGreaterThan(1798);
      expect(sessionSeconds).toBeLessThanOrEqual(1801);
    });

    it('signs a grant the data plane verifies with the WatchKeys keys, carrying user, connection, policy and limits', async () => {
      const grant = await grantClient(g, alice.token).issue('orders-db');
      const claims = await verify(grant.grantToken);
      expect(claims).toMatchObject({
        iss: h.config.auth.issuer,
        aud: 'pa-data-plane',
        sub: alice.user.id,
        jti: grant.grantId,
        sessionId: grant.sessionId,
        user: { id: alice.user.id, name: 'alice', roles: ['dba'] },
        connection: { id: orders.id, name: 'orders-db', protocol: 'postgres', host: 'orders.db.internal', port: 5433, tlsMode: 'require', database: 'orders' },
        limits: { maxConnections: h.config.grants.maxConnectionsPerSession, idleTimeoutSeconds: h.config.grants.idleTimeoutSeconds, sessionEndsAt: Math.floor(ms(grant.sessionEndsAt) / 1000) },
      });
      expect(claims.exp).toBe(Math.floor(ms(grant.expiresAt) / 1000));
      // The policy is one the data plane's engine loads, and the one "explain" reports.
      const policy = loadCompiledPolicy(claims.policy);
      expect(policy.connection).toBe('orders-db');
      expect(policy.policies.map((p) => p.name)).toEqual(['dba-orders']);
      const explained = await h.request.post('/api/v1/policies/evaluate').set(bearer(admin)).send({ connection: 'orders-db', user: 'alice', sql: 'SELECT 1' });
      expect(explained.status).toBe(200);
      expect(explained.body.policy.hash).toBe(policy.hash);
      expect((await getGrant(grant.grantId)).policyHash).toBe(policy.hash);
    });

    it('puts the backend password in the grant only encrypted to the node keys', async () => {
      const { result: raw, rows } = await auditRowsAddedBy(h, 'grant.issue', () => grantClient(g, alice.token).issueRaw('orders-db'));
      const grant = raw.grant as Grant;
      const claims = await verify(grant.grantToken);
      expect(typeof claims.credentials).toBe('string');
      expect(await decryptCredentials(claims.credentials as string, await keyStore())).toEqual({ kind: 'password', username: 'pa_proxy', password: PASSWORD });
      // Nowhere in clear: the token, its decoded payload, the response bytes, audit rows, logs.
      const wire = Buffer.from(IssueGrantResponse.encode(raw).finish());
      expect(wire.includes(Buffer.from(PASSWORD))).toBe(false);
      expect(grant.grantToken).not.toContain(PASSWORD);
      expect(JSON.stringify(claimsOf(grant.grantToken))).not.toContain(PASSWORD);
      expect(JSON.stringify(raw)).not.toContain(PASSWORD);
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(await auditRows(h))).not.toContain(PASSWORD);
      expect(h.logs.join('\n')).not.toContain(PASSWORD);
      const { rows: stored } = await h.db.query('SELECT * FROM grants');
      expect(JSON.stringify(stored)).not.toContain(PASSWORD);
    });

    it('issues grants with no credential for connections that have none, and for http', async () => {
      const grant = await grantClient(g, alice.token).issue('short-db');
      expect((await verify(grant.grantToken)).credentials).toBeNull();
      await nodes().heartbeat({ ...NODE_A, protocols: [Protocol.POSTGRES, Protocol.HTTP] });
      try {
        const web = await grantClient(g, alice.token).issue('intranet');
        expect(web.protocol).toBe(Protocol.HTTP);
        expect((await verify(web.grantToken)).connection).toMatchObject({ protocol: 'http', database: null });
      } finally {
        await nodes().heartbeat(NODE_A);
      }
    });

    it.each([
      // [connection (max grant seconds), requested, expected lifetime]
      ['orders-db', 0, 300],
      ['orders-db', 60, 60],
      ['orders-db', 5, 30],
      ['orders-db', 1200, 1200],
      ['orders-db', 7200, 1800],
      ['orders-db', 100_000, 1800],
      ['short-db', 0, 120],
      ['short-db', 3600, 120],
    ])('caps the lifetime: %s asked for %ss lives %ss', async (connection, requested, expected) => {
      const before = Math.floor(h.clock.now().getTime() / 1000);
      const grant = await grantClient(g, alice.token).issue(connection, requested);
      const claims = await verify(grant.grantToken);
      expect(claims.exp - claims.iat).toBe(expected);
      expect(claims.iat - before).toBeLessThanOrEqual(1);
    });

    it('answers NOT_FOUND CONNECTION_NOT_FOUND for a connection no policy lets the user reach, exactly as for an unknown one', async () => {
      const m = grantClient(g, mallory.token);
      const unknown = await grpcFailure(m.issue('no-such-db'));
      expect([unknown.code, unknown.errorCode]).toEqual([status.NOT_FOUND, 'CONNECTION_NOT_FOUND']);
      for (const name of ['orders-db', 'ORDERS-DB', orders.id]) {
        const f = await grpcFailure(m.issue(name));
        expect([f.code, f.errorCode]).toEqual([status.NOT_FOUND, 'CONNECTION_NOT_FOUND']);
        // Same words, the name as asked: nothing tells an existing connection from a missing one.
        expect(f.details).toBe(unknown.details.replace('no-such-db', name));
      }
    });

    it('refuses a disabled user', async () => {
      const carl = await userWithToken(h, 'carl', ['dba']);
      await grantClient(g, carl.token).issue('orders-db');
      expect((await h.request.patch('/api/v1/users/carl').set(bearer(admin)).send({ disabled: true })).status).toBe(200);
      const f = await grpcFailure(grantClient(g, carl.token).issue('orders-db'));
      expect([f.code, f.errorCode]).toEqual([status.PERMISSION_DENIED, 'AUTH_USER_DISABLED']);
    });

    it('refuses a grant when the request names no connection', async () => {
      const f = await grpcFailure(grantClient(g, alice.token).issue(''));
      expect([f.code, f.errorCode]).toEqual([status.INVALID_ARGUMENT, 'VALIDATION_FAILED']);
    });

    it('audits grant.issue: success with the grant and policy, denial with the reason', async () => {
      const { result: grant, rows } = await auditRowsAddedBy(h, 'grant.issue', () => grantClient(g, alice.token).issue('orders-db'));
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ outcome: 'success', actor_id: alice.user.id, actor_name: 'alice', target_type: 'grant', target_id: grant.grantId, connection_id: orders.id, session_id: grant.sessionId });
      expect(rows[0]?.details).toMatchObject({ connection: 'orders-db', ttlSeconds: 300, policyHash: (await getGrant(grant.grantId)).policyHash, renewedFrom: null });
      const denied = await auditRowsAddedBy(h, 'grant.issue', () => grpcFailure(grantClient(g, mallory.token).issue('orders-db')));
      expect(denied.rows).toHaveLength(1);
      expect(denied.rows[0]).toMatchObject({ outcome: 'denied', actor_id: mallory.user.id, actor_name: 'mallory' });
      expect(denied.rows[0]?.details).toMatchObject({ connection: 'orders-db', reason: 'no policy allows this connection' });
      const unknown = await auditRowsAddedBy(h, 'grant.issue', () => grpcFailure(grantClient(g, mallory.token).issue('no-such-db')));
      expect(unknown.rows[0]).toMatchObject({ outcome: 'denied', actor_id: mallory.user.id });
      expect(unknown.rows[0]?.details).toMatchObject({ connection: 'no-such-db', reason: 'unknown connection' });
    });

    describe('tunnel URLs follow node liveness', () => {
      const B: NodeSpec = { nodeId: 'nod_grants_b', tunnelUrl: 'https://node-b.test:7000/tunnel' };
      const C: NodeSpec = { nodeId: 'nod_grants_c', tunnelUrl: 'https://node-c.test:7000/tunnel' };
      const HTTP_ONLY: NodeSpec = { nodeId: 'nod_grants_http', tunnelUrl: 'https://node-http.test:7000/tunnel', protocols: [Protocol.HTTP] };

      it('offers every live node serving the protocol, least loaded first', async () => {
        await nodes().register(B);
        await nodes().register(HTTP_ONLY);
        await nodes().heartbeat(NODE_A, { sessions: [{ protocol: Protocol.POSTGRES, liveSessions: 7 }] });
        await nodes().heartbeat(B, { sessions: [{ protocol: Protocol.POSTGRES, liveSessions: 2 }] });
        const grant = await grantClient(g, alice.token).issue('orders-db');
        expect(grant.tunnelUrls).toEqual([B.tunnelUrl, NODE_A.tunnelUrl]);
      });

      it('drops a node whose heartbeats stopped (more than three intervals)', async () => {
        h.clock.advance(h.config.nodes.heartbeatSeconds * 3 + 1);
        await nodes().heartbeat(B);
        expect((await grantClient(g, alice.token).issue('orders-db')).tunnelUrls).toEqual([B.tunnelUrl]);
        // Heartbeating again brings it back.
        await nodes().heartbeat(NODE_A);
        expect((await grantClient(g, alice.token).issue('orders-db')).tunnelUrls.sort()).toEqual([NODE_A.tunnelUrl, B.tunnelUrl].sort());
      });

      it('drops a draining node (DeregisterNode, or a heartbeat that says draining)', async () => {
        await nodes().register(C);
        await nodes().deregister(B.nodeId);
        expect((await grantClient(g, alice.token).issue('orders-db')).tunnelUrls.sort()).toEqual([NODE_A.tunnelUrl, C.tunnelUrl].sort());
        await nodes().heartbeat(C, { draining: true });
        expect((await grantClient(g, alice.token).issue('orders-db')).tunnelUrls).toEqual([NODE_A.tunnelUrl]);
      });

      it('answers UNAVAILABLE DEPENDENCY_UNAVAILABLE when no live node serves the protocol, and audits it', async () => {
        h.clock.advance(h.config.nodes.heartbeatSeconds * 3 + 1);
        // Only the http node is live now.
        await nodes().heartbeat(HTTP_ONLY);
        const { result: f, rows } = await auditRowsAddedBy(h, 'grant.issue', () => grpcFailure(grantClient(g, alice.token).issue('orders-db')));
        expect([f.code, f.errorCode]).toEqual([status.UNAVAILABLE, 'DEPENDENCY_UNAVAILABLE']);
        expect(rows[0]).toMatchObject({ outcome: 'denied' });
        expect(rows[0]?.details).toMatchObject({ reason: 'no live data-plane node' });
        await nodes().heartbeat(NODE_A);
        expect((await grantClient(g, alice.token).issue('orders-db')).tunnelUrls).toEqual([NODE_A.tunnelUrl]);
      });
    });
  });

  describe('RenewGrant', () => {
    it('renews by grant id and by grant token: same session and end, new grant id, renewed_from set', async () => {
      const c = grantClient(g, alice.token);
      const first = await c.issue('orders-db');
      h.clock.advance(10);
      const byId = await c.renew({ grantId: first.grantId });
      const byToken = await c.renew({ grantToken: byId.grantToken });
      for (const [renewed, from] of [
        [byId, first],
        [byToken, byId],
      ] as const) {
        expect(renewed.grantId).not.toBe(from.grantId);
        expect(renewed.sessionId).toBe(first.sessionId);
        expect(ms(renewed.sessionEndsAt)).toBe(ms(first.sessionEndsAt));
        expect(ms(renewed.expiresAt)).toBeGreaterThan(ms(first.expiresAt));
        expect(renewed.tunnelUrls).toEqual([NODE_A.tunnelUrl]);
        const claims = await verify(renewed.grantToken);
        expect(claims.sessionId).toBe(first.sessionId);
        expect((await getGrant(renewed.grantId)).renewedFrom).toBe(from.grantId);
      }
      const renewals = (await auditRows(h, 'grant.renew')).filter((r) => r.session_id === first.sessionId);
      expect(renewals.map((r) => [r.outcome, r.details.renewedFrom])).toEqual([
        ['success', first.grantId],
        ['success', byId.grantId],
      ]);
      // The policy did not change: nothing is revoked.
      expect(h.state.revocations.check({ grantId: first.grantId, userId: alice.user.id, sessionId: first.sessionId })).toEqual({ state: 'ok' });
    });

    it('refuses renewing a grant of someone else, or an unknown or malformed one, with NOT_FOUND', async () => {
      const bobs = await grantClient(g, bob.token).issue('orders-db');
      const c = grantClient(g, alice.token);
      for (const ref of [{ grantId: bobs.grantId }, { grantToken: bobs.grantToken }, { grantId: 'grt_00000000000000000000000000' }, { grantToken: 'not.a.grant' }, { grantId: "' OR 1=1 --" }]) {
        const f = await grpcFailure(c.renew(ref));
        expect([f.code, f.errorCode]).toEqual([status.NOT_FOUND, 'GRANT_NOT_FOUND']);
      }
    });

    it('after a policy edit, renews with the new policy and revokes the old grant id on every node', async () => {
      const c = grantClient(g, bob.token);
      const first = await c.issue('reports-db');
      const oldHash = (await verify(first.grantToken)).policy.hash;
      const edit = await h.request
        .put('/api/v1/policies/dba-reports')
        .set(bearer(admin))
        .send({
          name: 'dba-reports',
          roles: ['dba'],
          selector: { connections: ['reports-db'] },
          rules: [
            { id: 'read', effect: 'allow', type: 'sql', kinds: ['select'] },
            { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['*.secrets'] },
          ],
        });
      expect(edit.status).toBe(200);
      const subject = { grantId: first.grantId, userId: bob.user.id, sessionId: first.sessionId };
      expect(h.state.revocations.check(subject)).toEqual({ state: 'ok' });
      const renewed = await c.renew({ grantId: first.grantId });
      const policy = loadCompiledPolicy((await verify(renewed.grantToken)).policy);
      expect(policy.hash).not.toBe(oldHash);
      expect(policy.rules.map((r) => r.id)).toEqual(expect.arrayContaining(['read', 'no-secrets']));
      expect(renewed.sessionId).toBe(first.sessionId);
      expect(h.state.revocations.check(subject)).toMatchObject({ state: 'revoked', kind: 'grant' });
      await expect(revokedIn(otherNode.revocations, subject)).resolves.toMatchObject({ kind: 'grant' });
      // Only the old grant: the renewed one (same session) stays valid.
      expect(h.state.revocations.check({ grantId: renewed.grantId, userId: bob.user.id, sessionId: renewed.sessionId })).toEqual({ state: 'ok' });
    });

    it('refuses renewal with GRANT_REVOKED once no policy allows the connection, and ends the session', async () => {
      const c = grantClient(g, bob.token);
      const first = await c.issue('reports-db');
      expect((await h.request.delete('/api/v1/policies/dba-reports').set(bearer(admin))).status).toBe(204);
      const { result: f, rows } = await auditRowsAddedBy(h, 'grant.renew', () => grpcFailure(c.renew({ grantId: first.grantId })));
      expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'GRANT_REVOKED']);
      expect(rows.map((r) => r.outcome)).toEqual(['denied']);
      const subject = { grantId: first.grantId, userId: bob.user.id, sessionId: first.sessionId };
      expect(h.state.revocations.check(subject)).toMatchObject({ state: 'revoked', kind: 'session' });
      await expect(revokedIn(otherNode.revocations, subject)).resolves.toMatchObject({ kind: 'session' });
      const record = await getGrant(first.grantId);
      expect(record).toMatchObject({ active: false, revokeReason: 'access withdrawn by policy' });
      // A new issue is simply not found, like any connection the user cannot reach.
      const again = await grpcFailure(c.issue('reports-db'));
      expect(again.errorCode).toBe('CONNECTION_NOT_FOUND');
    });

    it("refuses renewal with GRANT_EXPIRED after the session's absolute end", async () => {
      const c = grantClient(g, alice.token);
      const first = await c.issue('short-db');
      h.clock.advance(60);
      await nodes().heartbeat(NODE_A);
      const mid = await c.renew({ grantId: first.grantId });
      // The renewed grant never outlives the session.
      expect(ms(mid.expiresAt)).toBe(ms(first.sessionEndsAt));
      h.clock.advance(61);
      const { result: f, rows } = await auditRowsAddedBy(h, 'grant.renew', () => grpcFailure(c.renew({ grantId: mid.grantId })));
      expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'GRANT_EXPIRED']);
      expect(rows.map((r) => r.outcome)).toEqual(['denied']);
    });
  });

  describe('admin API', () => {
    let plain: string;
    let reader: string;
    let aliceGrant: Grant;
    let bobGrant: Grant;
    beforeAll(async () => {
      await createRole(h, 'grant-reader', ['grants:read']);
      plain = (await userWithToken(h, 'plain-user', ['user'])).token;
      reader = (await userWithToken(h, 'grant-reader-user', ['grant-reader'])).token;
      await nodes().heartbeat(NODE_A);
      aliceGrant = await grantClient(g, alice.token).issue('orders-db');
      bobGrant = await grantClient(g, bob.token).issue('short-db');
    });

    it('lists grants (never their tokens), filtered by user, connection and active', async () => {
      const list = async (qs: string): Promise<GrantBody[]> => {
        const res = await h.request.get(`/api/v1/grants?limit=500&${qs}`).set(bearer(admin));
        expect(res.status).toBe(200);
        expect(res.text).not.toContain(aliceGrant.grantToken.split('.')[2] as string);
        expect(res.text).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
        return res.body.items as GrantBody[];
      };
      const all = await list('');
      expect(all.map((x) => x.id)).toEqual(expect.arrayContaining([aliceGrant.grantId, bobGrant.grantId]));
      for (const qs of ['user=alice', `user=${alice.user.id}`, 'user=ALICE']) {
        const items = await list(qs);
        expect(items.length).toBeGreaterThan(0);
        expect(items.every((x) => x.userId === alice.user.id)).toBe(true);
        expect(items.map((x) => x.id)).toContain(aliceGrant.grantId);
      }
      for (const qs of ['connection=short-db', 'connection=SHORT-DB']) {
        const items = await list(qs);
        expect(items.every((x) => x.connectionName === 'short-db')).toBe(true);
        expect(items.map((x) => x.id)).toContain(bobGrant.grantId);
      }
      const mine = await list(`user=bob&connection=${orders.id}`);
      expect(mine.every((x) => x.username === 'bob' && x.connectionId === orders.id)).toBe(true);
      const active = await list('active=true');
      expect(active.every((x) => x.active)).toBe(true);
      expect(active.map((x) => x.id)).toContain(aliceGrant.grantId);
      const inactive = await list('active=false');
      expect(inactive.length).toBeGreaterThan(0);
      expect(inactive.every((x) => !x.active)).toBe(true);
      expect(inactive.map((x) => x.id)).not.toContain(aliceGrant.grantId);
      expect(active.length + inactive.length).toBe(all.length);
      expect((await h.request.get('/api/v1/grants?active=maybe').set(bearer(admin))).status).toBe(400);
    });

    it('gets one grant; 404 GRANT_NOT_FOUND for an unknown id', async () => {
      const body = await getGrant(aliceGrant.grantId);
      expect(body).toEqual({
        id: aliceGrant.grantId,
        userId: alice.user.id,
        username: 'alice',
        connectionId: orders.id,
        connectionName: 'orders-db',
        sessionId: aliceGrant.sessionId,
        policyHash: expect.stringMatching(/.+/),
        issuedAt: expect.any(String),
        expiresAt: dateFromTimestamp(aliceGrant.expiresAt as Timestamp).toISOString(),
        sessionEndsAt: dateFromTimestamp(aliceGrant.sessionEndsAt as Timestamp).toISOString(),
        renewedFrom: null,
        revokedAt: null,
        revokeReason: null,
        active: true,
      });
      const missing = await h.request.get('/api/v1/grants/grt_00000000000000000000000000').set(bearer(admin));
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe('GRANT_NOT_FOUND');
    });

    it('revokes a grant: its session is revoked on every node, renewal is refused, and it is audited', async () => {
      const c = grantClient(g, alice.token);
      const renewed = await c.renew({ grantId: aliceGrant.grantId });
      const subject = { grantId: renewed.grantId, userId: alice.user.id, sessionId: renewed.sessionId };
      expect(h.state.revocations.check(subject)).toEqual({ state: 'ok' });
      const { result: res, rows } = await auditRowsAddedBy(h, 'grant.revoke', () =>
        h.request.post(`/api/v1/grants/${aliceGrant.grantId}/revoke`).set(bearer(admin)).send({ reason: 'laptop stolen' }),
      );
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: aliceGrant.grantId, active: false, revokeReason: 'laptop stolen' });
      expect(res.body.revokedAt).toEqual(expect.any(String));
      // Every grant of the session, renewals included.
      expect(h.state.revocations.check(subject)).toEqual({ state: 'revoked', kind: 'session', reason: 'laptop stolen' });
      await expect(revokedIn(otherNode.revocations, subject)).resolves.toMatchObject({ kind: 'session' });
      expect(await getGrant(renewed.grantId)).toMatchObject({ active: false, revokeReason: 'laptop stolen' });
      for (const ref of [{ grantId: aliceGrant.grantId }, { grantId: renewed.grantId }, { grantToken: renewed.grantToken }]) {
        const f = await grpcFailure(c.renew(ref));
        expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'GRANT_REVOKED']);
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ outcome: 'success', actor_name: 'admin', target_type: 'grant', target_id: aliceGrant.grantId, session_id: aliceGrant.sessionId, connection_id: orders.id });
      expect(rows[0]?.details).toEqual({ reason: 'laptop stolen' });
      // Other sessions of the same user are untouched.
      const fresh = await c.issue('orders-db');
      expect(h.state.revocations.check({ grantId: fresh.grantId, userId: alice.user.id, sessionId: fresh.sessionId })).toEqual({ state: 'ok' });
      const missing = await h.request.post('/api/v1/grants/grt_00000000000000000000000000/revoke').set(bearer(admin)).send({});
      expect(missing.status).toBe(404);
    });

    it.each([
      ['get', '/api/v1/grants', 'grants:read'],
      ['get', '/api/v1/grants/:id', 'grants:read'],
      ['get', '/api/v1/nodes', 'grants:read'],
      ['post', '/api/v1/grants/:id/revoke', 'grants:revoke'],
    ] as const)('%s %s needs %s', async (method, path, permission) => {
      const url = path.replace(':id', bobGrant.grantId);
      const send = (token?: string) => {
        const req = method === 'get' ? h.request.get(url) : h.request.post(url);
        if (token) req.set(bearer(token));
        return method === 'get' ? req : req.send({});
      };
      expect((await send()).status).toBe(401);
      const denied = await send(plain);
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('PERMISSION_DENIED');
      const asReader = await send(reader);
      expect(asReader.status).toBe(permission === 'grants:read' ? 200 : 403);
      // The refused revocations did not revoke anything.
      expect(h.state.revocations.check({ grantId: bobGrant.grantId, userId: bob.user.id, sessionId: bobGrant.sessionId })).toEqual({ state: 'ok' });
    });
  });

  it('keeps the backend password out of every log line and audit row written in this file', async () => {
    expect(h.logs.join('\n')).not.toContain(PASSWORD);
    expect(JSON.stringify(await auditRows(h))).not.toContain(PASSWORD);
  });
});
