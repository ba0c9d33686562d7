import { status } from '@grpc/grpc-js';
import { createState, type State } from '@pa/state';
import { createConnection, createPolicy, createRole, passwordFor, userWithToken } from './fixtures';
import { grantClient, grpcFailure, nodeClient, revokedIn } from './grpc-client';
import { bearer, createHarness, startGrpc, type GrpcHarness, type Harness } from './harness';

/**
 * User events end the user's live grant sessions on every data-plane node:
 * the control plane publishes a session revocation to the shared store, which
 * its own mirror and another node's store (its own Redis connection) both see.
 */
describe('grant sessions end with user events', () => {
  let h: Harness;
  let g: GrpcHarness;
  let admin: string;
  let otherNode: State;
  const NODE = { nodeId: 'nod_revocation', tunnelUrl: 'https://node.test:7000/tunnel' };

  beforeAll(async () => {
    h = await createHarness();
    g = await startGrpc(h);
    admin = await h.adminToken();
    otherNode = createState({ redis: h.redis.url, keyPrefix: h.redis.prefix });
    await otherNode.revocations.start();
    await createRole(h, 'dba', []);
    await createRole(h, 'auditor', []);
    await createConnection(h, { name: 'orders-db', protocol: 'postgres', host: 'orders.db.internal', port: 5432, database: 'orders' });
    await createPolicy(h, { name: 'dba-orders', roles: ['dba'], selector: { connections: ['orders-db'] }, rules: [{ effect: 'allow', type: 'sql', kinds: ['select'] }] });
    await nodeClient(g).register(NODE);
  });
  afterAll(async () => {
    await otherNode?.close();
    await h?.close();
  });

  /** A user with two login sessions, and a live grant issued under each. */
  const userWithGrants = async (username: string) => {
    const first = await userWithToken(h, username, ['dba']);
    const second = await h.login(username, passwordFor(username));
    const grantA = await grantClient(g, first.token).issue('orders-db');
    const grantB = await grantClient(g, second.token).issue('orders-db');
    const subject = (grant: { grantId: string; sessionId: string }) => ({ grantId: grant.grantId, userId: first.user.id, sessionId: grant.sessionId });
    return { user: first.user, token: first.token, refreshToken: first.refreshToken, a: subject(grantA), b: subject(grantB) };
  };
  type Victim = Awaited<ReturnType<typeof userWithGrants>>;

  type Scope = 'user' | 'login session';
  const EVENTS: Array<[string, Scope, string, (v: Victim) => Promise<void>]> = [
    ['disabling the user', 'user', 'user disabled', async (v) => expect((await h.request.patch(`/api/v1/users/${v.user.id}`).set(bearer(admin)).send({ disabled: true })).status).toBe(200)],
    ['deleting the user', 'user', 'user deleted', async (v) => expect((await h.request.delete(`/api/v1/users/${v.user.id}`).set(bearer(admin))).status).toBe(204)],
    ['an admin password reset', 'user', 'password reset', async (v) => expect((await h.request.post(`/api/v1/users/${v.user.id}/password`).set(bearer(admin)).send({ password: 'a-brand-new-password' })).status).toBe(204)],
    ['changing the user’s roles', 'user', 'roles changed', async (v) => expect((await h.request.patch(`/api/v1/users/${v.user.id}`).set(bearer(admin)).send({ roles: ['dba', 'auditor'] })).status).toBe(200)],
    ['logout of the login session that issued the grant', 'login session', 'logout', async (v) => expect((await h.request.post('/api/v1/auth/logout').set(bearer(v.token))).status).toBe(204)],
    [
      'reuse of a spent refresh token',
      'login session',
      'refresh token reused',
      async (v) => {
        expect((await h.request.post('/api/v1/auth/refresh').send({ refreshToken: v.refreshToken })).status).toBe(200);
        const reuse = await h.request.post('/api/v1/auth/refresh').send({ refreshToken: v.refreshToken });
        expect(reuse.body.code).toBe('AUTH_REFRESH_REUSED');
      },
    ],
  ];

  it.each(EVENTS.map((e, i) => [e[0], e[1], e[2], i] as const))('%s revokes the grant sessions of that %s', async (_what, scope, reason, i) => {
    const act = (EVENTS[i] as (typeof EVENTS)[number])[3];
    const v = await userWithGrants(`victim-${i}`);
    expect(h.state.revocations.check(v.a)).toEqual({ state: 'ok' });
    expect(h.state.revocations.check(v.b)).toEqual({ state: 'ok' });
    await act(v);
    // Published by the time the API answered: the control plane's store has it …
    expect(h.state.revocations.check(v.a)).toEqual({ state: 'revoked', kind: 'session', reason });
    // … and another node learns it through Redis.
    await expect(revokedIn(otherNode.revocations, v.a)).resolves.toEqual({ state: 'revoked', kind: 'session', reason });
    if (scope === 'user') {
      expect(h.state.revocations.check(v.b)).toMatchObject({ state: 'revoked', kind: 'session' });
      await expect(revokedIn(otherNode.revocations, v.b)).resolves.toMatchObject({ kind: 'session' });
    } else {
      // Only the login session that issued the grant: the user's other session keeps its grant.
      expect(h.state.revocations.check(v.b)).toEqual({ state: 'ok' });
      expect(otherNode.revocations.check(v.b)).toEqual({ state: 'ok' });
    }
    if (reason !== 'user deleted') {
      const record = await h.request.get(`/api/v1/grants/${v.a.grantId}`).set(bearer(admin));
      expect(record.body).toMatchObject({ active: false, revokeReason: reason });
    }
  });

  it('a grant session ended by a user event stays ended: renewing it is refused with GRANT_REVOKED', async () => {
    const v = await userWithGrants('victim-renew');
    expect((await h.request.patch(`/api/v1/users/${v.user.id}`).set(bearer(admin)).send({ roles: ['dba', 'auditor'] })).status).toBe(200);
    // Still allowed on the connection, still signed in: only the ended sessions are refused …
    for (const grantId of [v.a.grantId, v.b.grantId]) {
      const f = await grpcFailure(grantClient(g, v.token).renew({ grantId }));
      expect([f.code, f.errorCode]).toEqual([status.UNAUTHENTICATED, 'GRANT_REVOKED']);
    }
    // … and a new grant starts a new session.
    const fresh = await grantClient(g, v.token).issue('orders-db');
    expect([v.a.sessionId, v.b.sessionId]).not.toContain(fresh.sessionId);
    expect(h.state.revocations.check({ grantId: fresh.grantId, userId: v.user.id, sessionId: fresh.sessionId })).toEqual({ state: 'ok' });
  });

  it('leaves grant sessions alone on a user edit that changes neither roles nor status', async () => {
    const v = await userWithGrants('victim-edit');
    const res = await h.request.patch(`/api/v1/users/${v.user.id}`).set(bearer(admin)).send({ displayName: 'Still Here', roles: ['dba'] });
    expect(res.status).toBe(200);
    expect(h.state.revocations.check(v.a)).toEqual({ state: 'ok' });
    expect(h.state.revocations.check(v.b)).toEqual({ state: 'ok' });
    const record = await h.request.get(`/api/v1/grants/${v.a.grantId}`).set(bearer(admin));
    expect(record.body).toMatchObject({ active: true, revokedAt: null });
  });

  it("does not touch other users' grant sessions", async () => {
    const bystander = await userWithGrants('bystander');
    const v = await userWithGrants('victim-other');
    expect((await h.request.patch(`/api/v1/users/${v.user.id}`).set(bearer(admin)).send({ disabled: true })).status).toBe(200);
    await revokedIn(otherNode.revocations, v.a);
    expect(h.state.revocations.check(bystander.a)).toEqual({ state: 'ok' });
    expect(otherNode.revocations.check(bystander.a)).toEqual({ state: 'ok' });
  });
});
