import { status } from '@grpc/grpc-js';
import { AuditAckStatus, AuditOutcome, Protocol, dateFromTimestamp, timestampFromDate, type AuditEvent, type KeySet } from '@pa/contracts';
import { KeyStore } from '@pa/grants';
import { newId } from '@pa/kit';
import { auditRows, auditRowsAddedBy, createConnection, userWithToken } from './fixtures';
import { grpcFailure, nextKeySet, nextKeySetWhere, nodeClient, type NodeSpec } from './grpc-client';
import { bearer, createHarness, startGrpc, type GrpcHarness, type Harness } from './harness';

/** NodeService (what data-plane nodes call, with the node token) and the discovery document. */

interface NodeBody {
  id: string;
  version: string;
  tunnelUrl: string;
  protocols: string[];
  load: Record<string, unknown>;
  registeredAt: string;
  lastSeenAt: string;
  draining: boolean;
  live: boolean;
}

const event = (over: Partial<AuditEvent> = {}): Partial<AuditEvent> => ({
  eventId: newId('evt'),
  time: timestampFromDate(new Date()),
  nodeId: 'nod_audit',
  actorUserId: 'usr_00000000000000000000000001',
  actorUserName: 'alice',
  action: 'sql.statement',
  connectionName: 'orders-db',
  grantId: 'grt_00000000000000000000000001',
  sessionId: 'ses_00000000000000000000000001',
  protocol: Protocol.POSTGRES,
  outcome: AuditOutcome.ALLOWED,
  ...over,
});

describe('gRPC NodeService', () => {
  let h: Harness;
  let g: GrpcHarness;
  let admin: string;

  beforeAll(async () => {
    h = await createHarness();
    g = await startGrpc(h);
    admin = await h.adminToken();
  });
  afterAll(() => h.close());

  const listNodes = async (): Promise<NodeBody[]> => {
    const res = await h.request.get('/api/v1/nodes').set(bearer(admin));
    expect(res.status).toBe(200);
    return res.body.items as NodeBody[];
  };
  const nodeById = async (id: string): Promise<NodeBody | undefined> => (await listNodes()).find((n) => n.id === id);

  describe('authentication', () => {
    const N: NodeSpec = { nodeId: 'nod_intruder', tunnelUrl: 'https://evil.test/tunnel' };
    const wrongTokens = (): Array<[string, string | null]> => [
      ['no authorization', null],
      ['a wrong token', `${g.nodeToken.slice(0, -1)}${g.nodeToken.endsWith('A') ? 'B' : 'A'}`],
      ['a longer token', `${g.nodeToken}x`],
      ['an empty bearer', ''],
    ];

    it('refuses every unary method without the node token with UNAUTHENTICATED, changing nothing', async () => {
      const userToken = (await userWithToken(h, 'node-impostor', ['user'])).token;
      for (const [, token] of [...wrongTokens(), ['a user access token', userToken] as [string, string]]) {
        const c = nodeClient(g, token);
        const calls = [c.register(N), c.heartbeat(N), c.deregister(N.nodeId), c.ingest({ nodeId: N.nodeId, events: [event()] })];
        for (const call of calls) {
          const f = await grpcFailure(call);
          expect(f.code).toBe(status.UNAUTHENTICATED);
          expect(['AUTH_REQUIRED', 'AUTH_TOKEN_INVALID']).toContain(f.errorCode);
        }
      }
      expect(await nodeById(N.nodeId)).toBeUndefined();
      expect((await auditRows(h, 'sql.statement')).length).toBe(0);
    });

    it('ends a WatchKeys stream with UNAUTHENTICATED before sending any key', async () => {
      for (const [, token] of wrongTokens()) {
        const watch = nodeClient(g, token).watch(N.nodeId);
        const f = await grpcFailure(watch.next());
        expect(f.code).toBe(status.UNAUTHENTICATED);
        expect(['AUTH_REQUIRED', 'AUTH_TOKEN_INVALID']).toContain(f.errorCode);
        expect(watch.pending()).toBe(0);
      }
    });
  });

  describe('registration, heartbeats and draining', () => {
    const N: NodeSpec = { nodeId: 'nod_lifecycle', tunnelUrl: 'https://node-1.test:7000/tunnel', version: '1.2.3', protocols: [Protocol.POSTGRES, Protocol.HTTP] };

    it('registers a node: listed as live, with its version, URL and protocols; told the heartbeat interval', async () => {
      const res = await nodeClient(g).register(N);
      expect(res.heartbeatIntervalSeconds).toBe(h.config.nodes.heartbeatSeconds);
      expect(Math.abs(dateFromTimestamp(res.serverTime as NonNullable<typeof res.serverTime>).getTime() - h.clock.now().getTime())).toBeLessThan(5_000);
      expect(await nodeById(N.nodeId)).toMatchObject({ id: N.nodeId, version: '1.2.3', tunnelUrl: N.tunnelUrl, protocols: ['postgres', 'http'], draining: false, live: true });
      expect((await auditRows(h, 'node.register')).some((r) => r.target_id === N.nodeId)).toBe(true);
    });

    it('records the load a heartbeat reports, and marks the node not live once heartbeats stop', async () => {
      const hb = await nodeClient(g).heartbeat(N, { sessions: [{ protocol: Protocol.POSTGRES, liveSessions: 3 }, { protocol: Protocol.HTTP, liveSessions: 1 }], auditSpoolDepth: 17 });
      expect(hb.heartbeatIntervalSeconds).toBe(h.config.nodes.heartbeatSeconds);
      const node = await nodeById(N.nodeId);
      expect(node?.live).toBe(true);
      expect(node?.load).toEqual({ sessions: [{ protocol: 'postgres', liveSessions: 3 }, { protocol: 'http', liveSessions: 1 }], auditSpoolDepth: 17 });
      h.clock.advance(h.config.nodes.heartbeatSeconds * 3 - 2);
      expect((await nodeById(N.nodeId))?.live).toBe(true);
      h.clock.advance(3);
      expect((await nodeById(N.nodeId))?.live).toBe(false);
      await nodeClient(g).heartbeat(N);
      expect((await nodeById(N.nodeId))?.live).toBe(true);
    });

    it('a heartbeat from an unknown node registers it (control-plane failover)', async () => {
      const M: NodeSpec = { nodeId: 'nod_unregistered', tunnelUrl: 'https://node-2.test:7000/tunnel' };
      await nodeClient(g).heartbeat(M, { sessions: [] });
      expect(await nodeById(M.nodeId)).toMatchObject({ live: true, draining: false, tunnelUrl: M.tunnelUrl, protocols: ['postgres'] });
    });

    it('DeregisterNode leaves the node listed as draining and not live; registering again revives it', async () => {
      await nodeClient(g).deregister(N.nodeId);
      expect(await nodeById(N.nodeId)).toMatchObject({ draining: true, live: false });
      expect((await auditRows(h, 'node.deregister')).some((r) => r.target_id === N.nodeId)).toBe(true);
      await nodeClient(g).register(N);
      expect(await nodeById(N.nodeId)).toMatchObject({ draining: false, live: true });
      await nodeClient(g).heartbeat(N, { draining: true });
      expect(await nodeById(N.nodeId)).toMatchObject({ draining: true, live: false });
    });

    it('refuses a registration without node id or tunnel URL', async () => {
      for (const bad of [{ ...N, nodeId: '' }, { ...N, tunnelUrl: '' }]) {
        const f = await grpcFailure(nodeClient(g).register(bad));
        expect([f.code, f.errorCode]).toEqual([status.INVALID_ARGUMENT, 'VALIDATION_FAILED']);
      }
    });
  });

  describe('WatchKeys', () => {
    const kids = (set: KeySet) => ({ grant: set.grantVerificationKeys.map((k) => k.kid).sort(), node: set.credentialDecryptionKeys.map((k) => k.kid).sort() });

    it('sends the key set first: public grant verification keys, node decryption keys with their private half', async () => {
      const watch = nodeClient(g).watch('nod_keys');
      try {
        const set = await nextKeySet(watch);
        expect(set.version).toBeGreaterThan(0);
        expect(set.grantVerificationKeys.length).toBeGreaterThanOrEqual(1);
        for (const k of set.grantVerificationKeys) {
          expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', d: '' });
          expect(k.kid).toMatch(/^key_/);
        }
        expect(set.credentialDecryptionKeys.length).toBeGreaterThanOrEqual(1);
        for (const k of set.credentialDecryptionKeys) {
          expect(k).toMatchObject({ kty: 'OKP', crv: 'X25519', alg: 'ECDH-ES+A256KW' });
          expect(k.d).toMatch(/^[\w-]{43}$/);
        }
        // The grant keys are the ones GET /keys lists, and only public halves of them ever leave.
        const listed = (await h.request.get('/api/v1/keys').set(bearer(admin))).body.items as Array<{ kid: string; use: string; retiredAt: string | null }>;
        expect(kids(set).grant).toEqual(listed.filter((k) => k.use === 'grant').map((k) => k.kid).sort());
        expect(kids(set).node).toEqual(listed.filter((k) => k.use === 'node-encryption').map((k) => k.kid).sort());
        const store = await KeyStore.fromJwks([...set.grantVerificationKeys, ...set.credentialDecryptionKeys]);
        expect(store.verificationKids()).toEqual(kids(set).grant);
        expect(store.decryptionKids()).toEqual(kids(set).node);
      } finally {
        watch.cancel();
      }
    });

    it.each(['grant', 'node-encryption'] as const)('pushes a new key set to watching nodes after POST /keys/rotate {use: %s}; the old key stays during the overlap', async (use) => {
      const watch = nodeClient(g).watch('nod_keys');
      try {
        const before = await nextKeySet(watch);
        h.clock.advance(1);
        const rot = await h.request.post('/api/v1/keys/rotate').set(bearer(admin)).send({ use });
        expect(rot.status).toBe(200);
        const after = await nextKeySet(watch);
        expect(after.version).toBeGreaterThan(before.version);
        const [was, now] = use === 'grant' ? [kids(before).grant, kids(after).grant] : [kids(before).node, kids(after).node];
        expect(now).toEqual([...was, rot.body.kid].sort());
        // The other half of the set is unchanged.
        expect(use === 'grant' ? kids(after).node : kids(after).grant).toEqual(use === 'grant' ? kids(before).node : kids(before).grant);
        expect(after.grantVerificationKeys.every((k) => k.d === '')).toBe(true);
        // A node connecting now gets the same set first.
        const late = nodeClient(g).watch('nod_late');
        try {
          expect(kids(await nextKeySet(late))).toEqual(kids(after));
        } finally {
          late.cancel();
        }
      } finally {
        watch.cancel();
      }
    });
  });

  describe('IngestAudit', () => {
    let connectionId: string;
    beforeAll(async () => {
      connectionId = (await createConnection(h, { name: 'orders-db', protocol: 'postgres', host: 'orders.db.internal', port: 5432, database: 'orders' })).id;
    });
    const rowsById = async (ids: string[]) => (await auditRows(h)).filter((r) => ids.includes(r.id));

    it('stores events under their own ids, with the decision fields in details', async () => {
      const decision = { outcome: 'allowed', rule: { policyName: 'dba', ruleId: 'read' }, statementKind: 'select', policyHash: 'abc123', fingerprint: 'fp_1' };
      const evts = [
        event({ connectionId, decisionJson: JSON.stringify(decision) }),
        event({ connectionId, action: 'session.end', outcome: AuditOutcome.SUCCEEDED, bytesUp: 10, bytesDown: 2000, durationMs: 1234, rows: 5 }),
        event({ connectionId, action: 'sql.statement', outcome: AuditOutcome.DENIED, errorCode: 'SQL_DENIED', errorMessage: 'not allowed', decisionJson: JSON.stringify({ outcome: 'denied', reason: 'no rule allows delete' }) }),
      ];
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: evts });
      expect(res.acks.map((a) => [a.eventId, a.status])).toEqual(evts.map((e) => [e.eventId, AuditAckStatus.STORED]));
      const rows = await rowsById(evts.map((e) => e.eventId as string));
      expect(rows).toHaveLength(3);
      const byId = new Map(rows.map((r) => [r.id, r]));
      const first = byId.get(evts[0]?.eventId as string);
      expect(first).toMatchObject({ action: 'sql.statement', outcome: 'allowed', actor_id: 'usr_00000000000000000000000001', actor_name: 'alice', connection_id: connectionId, session_id: 'ses_00000000000000000000000001' });
      expect(first?.details).toMatchObject({ ...decision, protocol: 'postgres', connectionName: 'orders-db' });
      expect(first?.time.getTime()).toBe(dateFromTimestamp(evts[0]?.time as NonNullable<AuditEvent['time']>).getTime());
      expect(byId.get(evts[1]?.eventId as string)).toMatchObject({ action: 'session.end', outcome: 'success', details: expect.objectContaining({ bytesUp: 10, bytesDown: 2000, durationMs: 1234, rows: 5 }) });
      expect(byId.get(evts[2]?.eventId as string)).toMatchObject({ outcome: 'denied', details: expect.objectContaining({ reason: 'no rule allows delete', errorCode: 'SQL_DENIED', errorMessage: 'not allowed' }) });
      const stored = await h.db.query<{ grant_id: string; node_id: string }>('SELECT grant_id, node_id FROM audit_events WHERE id = $1', [evts[0]?.eventId]);
      expect(stored.rows[0]).toEqual({ grant_id: 'grt_00000000000000000000000001', node_id: 'nod_audit' });
    });

    it('acknowledges an event sent twice as DUPLICATE and stores it once', async () => {
      const e = event({ connectionId, action: 'tunnel.open' });
      expect((await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [e] })).acks[0]?.status).toBe(AuditAckStatus.STORED);
      const again = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [e, e] });
      expect(again.acks.map((a) => [a.eventId, a.status])).toEqual([
        [e.eventId, AuditAckStatus.DUPLICATE],
        [e.eventId, AuditAckStatus.DUPLICATE],
      ]);
      expect(await rowsById([e.eventId as string])).toHaveLength(1);
    });

    it('rejects malformed events one by one and stores the rest of the batch', async () => {
      const good = event({ connectionId, action: 'tunnel.open' });
      const bad: Array<Partial<AuditEvent>> = [
        event({ eventId: 'evt_short' }),
        event({ eventId: 'not-an-event-id-at-all-000000000' }),
        event({ eventId: `evt_${'U'.repeat(26)}` }),
        event({ eventId: '' }),
        event({ action: '' }),
        event({ decisionJson: '{not json' }),
      ];
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [...bad, good] });
      expect(res.acks.map((a) => a.status)).toEqual([...bad.map(() => AuditAckStatus.REJECTED), AuditAckStatus.STORED]);
      for (const a of res.acks.slice(0, -1)) expect(a.errorCode).toBe('VALIDATION_FAILED');
      expect(await rowsById(bad.map((e) => e.eventId as string))).toHaveLength(0);
      expect(await rowsById([good.eventId as string])).toHaveLength(1);
    });

    it('does not let a decision outcome the audit trail does not know fail the whole batch', async () => {
      const odd = event({ connectionId, outcome: AuditOutcome.DENIED, decisionJson: JSON.stringify({ outcome: 'maybe', reason: 'odd node' }) });
      const good = event({ connectionId, action: 'tunnel.open' });
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [odd, good] });
      expect(res.acks.map((a) => a.status)).toEqual([AuditAckStatus.STORED, AuditAckStatus.STORED]);
      const [row] = await rowsById([odd.eventId as string]);
      expect(row?.outcome).toBe('denied');
    });

    it('rejects, one by one, events PostgreSQL cannot store as sent (a node would otherwise resend the batch forever)', async () => {
      const bad: Array<Partial<AuditEvent>> = [
        event({ time: { seconds: 1e15, nanos: 0 } }),
        event({ decisionJson: JSON.stringify({ reason: 'nul \u0000 inside' }) }),
        event({ actorUserName: 'nul\u0000name' }),
      ];
      const good = event({ connectionId, action: 'tunnel.open' });
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [...bad, good] });
      expect(res.acks.map((a) => a.status)).toEqual([...bad.map(() => AuditAckStatus.REJECTED), AuditAckStatus.STORED]);
      expect(await rowsById(bad.map((e) => e.eventId as string))).toHaveLength(0);
      expect(await rowsById([good.eventId as string])).toHaveLength(1);
    });

    it('refuses, one by one, events that name another node than the sender, stores its own, and reports the attempt once', async () => {
      const own = event({ connectionId, action: 'tunnel.open', nodeId: 'nod_sender' });
      const own2 = event({ connectionId, nodeId: 'nod_sender' });
      const forged = [event({ nodeId: 'nod_victim' }), event({ nodeId: 'nod_victim', action: 'tunnel.open' }), event({ nodeId: '' })];
      const { result: res, rows: reports } = await auditRowsAddedBy(h, 'node.audit_mismatch', () =>
        nodeClient(g).ingest({ nodeId: 'nod_sender', events: [forged[0]!, own, forged[1]!, forged[2]!, own2] }),
      );
      expect(res.acks.map((a) => [a.eventId, a.status, a.errorCode])).toEqual([
        [forged[0]?.eventId, AuditAckStatus.REJECTED, 'AUDIT_NODE_MISMATCH'],
        [own.eventId, AuditAckStatus.STORED, ''],
        [forged[1]?.eventId, AuditAckStatus.REJECTED, 'AUDIT_NODE_MISMATCH'],
        [forged[2]?.eventId, AuditAckStatus.REJECTED, 'AUDIT_NODE_MISMATCH'],
        [own2.eventId, AuditAckStatus.STORED, ''],
      ]);
      expect(res.acks[0]?.errorMessage).toMatch(/names node "nod_victim", but it was sent by node "nod_sender"/);
      expect(await rowsById(forged.map((e) => e.eventId as string))).toHaveLength(0);
      const stored = await h.db.query<{ node_id: string }>('SELECT node_id FROM audit_events WHERE id = ANY($1)', [[own.eventId, own2.eventId]]);
      expect(stored.rows.map((r) => r.node_id)).toEqual(['nod_sender', 'nod_sender']);
      // Once per batch, on the sending node: how many, which ids they claimed.
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ outcome: 'denied', node_id: 'nod_sender', target_type: 'node', target_id: 'nod_sender' });
      expect(reports[0]?.details).toMatchObject({ events: 3, claimedNodeIds: ['nod_victim', ''], eventIds: forged.map((e) => e.eventId), errorCode: 'AUDIT_NODE_MISMATCH' });
      expect(h.logs.filter((l) => l.includes('Audit events naming another node were refused.'))).toHaveLength(1);
      // A batch with nothing foreign reports nothing.
      const clean = await auditRowsAddedBy(h, 'node.audit_mismatch', () => nodeClient(g).ingest({ nodeId: 'nod_sender', events: [event({ connectionId, nodeId: 'nod_sender' })] }));
      expect(clean.result.acks.map((a) => a.status)).toEqual([AuditAckStatus.STORED]);
      expect(clean.rows).toHaveLength(0);
    });

    /** An event as a node spools it (the data plane's JSON), as IngestAuditRequest.spooled_events carries it. */
    const spooled = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
      id: newId('evt'),
      time: new Date().toISOString(),
      nodeId: 'nod_audit',
      action: 'sql.statement',
      outcome: 'allowed',
      actor: { id: 'usr_00000000000000000000000001', name: 'alice' },
      connectionId,
      connectionName: 'orders-db',
      grantId: 'grt_00000000000000000000000001',
      sessionId: 'ses_00000000000000000000000001',
      protocol: 'postgres',
      details: { tunnelId: 'tun_1', sql: 'select 1', kinds: ['select'], rule: { ruleId: 'read' } },
      ...over,
    });
    const bytes = (e: unknown): Buffer => Buffer.from(typeof e === 'string' ? e : JSON.stringify(e));

    it('stores spooled events (the JSON a node stored, passed through) exactly as the same events sent structured', async () => {
      const samples = [
        spooled(),
        spooled({ action: 'sql.result', outcome: 'error', details: { tunnelId: 'tun_1', errorCode: 'PG_BACKEND_CONNECTION_LOST', rows: null } }),
        spooled({ action: 'tunnel.denied', outcome: 'failure', actor: { id: '', name: '' }, connectionId: '', grantId: '', sessionId: '', connectionName: undefined, protocol: 'tcp', details: { errorCode: 'GRANT_EXPIRED' } }),
      ];
      // The structured twin of each, as the node's gRPC transport builds it (toWireEvent), under another id.
      const twins = samples.map((e) => {
        const d = e.details as Record<string, unknown>;
        const actor = e.actor as { id: string; name: string };
        return event({
          nodeId: 'nod_audit',
          time: timestampFromDate(new Date(String(e.time))),
          actorUserId: actor.id,
          actorUserName: actor.name,
          action: String(e.action),
          connectionId: String(e.connectionId),
          connectionName: typeof e.connectionName === 'string' ? e.connectionName : '',
          grantId: String(e.grantId),
          sessionId: String(e.sessionId),
          protocol: ({ postgres: Protocol.POSTGRES, http: Protocol.HTTP, tcp: Protocol.TCP } as const)[e.protocol as 'tcp'],
          outcome: ({ allowed: AuditOutcome.ALLOWED, denied: AuditOutcome.DENIED, success: AuditOutcome.SUCCEEDED, failure: AuditOutcome.FAILED, error: AuditOutcome.FAILED } as const)[e.outcome as 'error'],
          decisionJson: JSON.stringify({ ...d, outcome: e.outcome }),
          errorCode: typeof d.errorCode === 'string' ? d.errorCode : '',
        });
      });
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', events: twins, spooledEvents: samples.map(bytes) });
      // Structured events first, then spooled ones, each acknowledged by its id.
      expect(res.acks.map((a) => [a.eventId, a.status])).toEqual([...twins.map((e) => [e.eventId, AuditAckStatus.STORED]), ...samples.map((e) => [e.id, AuditAckStatus.STORED])]);
      const rows = new Map((await rowsById([...samples.map((e) => String(e.id)), ...twins.map((e) => String(e.eventId))])).map((r) => [r.id, r]));
      samples.forEach((e, i) => {
        const { id: _a, recorded_at: _ra, ...mine } = rows.get(String(e.id)) as unknown as Record<string, unknown>;
        const { id: _b, recorded_at: _rb, ...twin } = rows.get(String(twins[i]?.eventId)) as unknown as Record<string, unknown>;
        expect(mine).toEqual(twin);
      });
      expect(rows.get(String(samples[0]?.id))).toMatchObject({ action: 'sql.statement', outcome: 'allowed', actor_name: 'alice', connection_id: connectionId, details: expect.objectContaining({ sql: 'select 1', protocol: 'postgres', connectionName: 'orders-db', outcome: 'allowed' }) });
      const again = await nodeClient(g).ingest({ nodeId: 'nod_audit', spooledEvents: [bytes(samples[0])] });
      expect(again.acks.map((a) => a.status)).toEqual([AuditAckStatus.DUPLICATE]);
    });

    it('rejects malformed spooled events one by one (by id where there is one), refuses other nodes', async () => {
      const good = spooled({ action: 'tunnel.open' });
      const badShape = spooled({ outcome: 'maybe' });
      const badTime = spooled({ time: 'yesterday' });
      const cut = JSON.stringify(spooled()).slice(0, 60); // no longer JSON; its id is still readable
      const noId = '{"time":"x"';
      const foreign = spooled({ nodeId: 'nod_victim' });
      const res = await nodeClient(g).ingest({ nodeId: 'nod_audit', spooledEvents: [bytes(badShape), bytes(badTime), bytes(cut), bytes(noId), bytes(foreign), bytes(good)] });
      expect(res.acks.map((a) => [a.eventId, a.status, a.errorCode])).toEqual([
        [badShape.id, AuditAckStatus.REJECTED, 'VALIDATION_FAILED'],
        [badTime.id, AuditAckStatus.REJECTED, 'VALIDATION_FAILED'],
        [JSON.parse(`${cut.slice(0, cut.indexOf('","'))}"}`).id, AuditAckStatus.REJECTED, 'VALIDATION_FAILED'],
        [foreign.id, AuditAckStatus.REJECTED, 'AUDIT_NODE_MISMATCH'],
        [good.id, AuditAckStatus.STORED, ''],
      ]);
      expect(res.acks[0]?.errorMessage).toMatch(/outcome/);
      expect(h.logs.some((l) => l.includes('without a readable id'))).toBe(true);
      expect(await rowsById([String(badShape.id), String(badTime.id), String(foreign.id)])).toHaveLength(0);
      expect(await rowsById([String(good.id)])).toHaveLength(1);
    });

    it('refuses a batch that does not say which node sent it, and stores none of it', async () => {
      const e = event({ connectionId, nodeId: '' });
      const f = await grpcFailure(nodeClient(g).ingest({ nodeId: '', events: [e] }));
      expect([f.code, f.errorCode]).toEqual([status.INVALID_ARGUMENT, 'VALIDATION_FAILED']);
      expect(await rowsById([e.eventId as string])).toHaveLength(0);
    });

    it('makes ingested events searchable by connection and action', async () => {
      const e = event({ connectionId, action: 'http.request', protocol: Protocol.HTTP, outcome: AuditOutcome.ALLOWED, decisionJson: JSON.stringify({ method: 'GET', target: '/api/x' }) });
      await nodeClient(g).ingest({ nodeId: 'nod_audit', events: [e] });
      const res = await h.request.get(`/api/v1/audit/events?connection=${connectionId}&action=http.request`).set(bearer(admin));
      expect(res.status).toBe(200);
      expect(res.body.items.map((x: { id: string }) => x.id)).toEqual([e.eventId]);
      expect(res.body.items[0]).toMatchObject({ nodeId: 'nod_audit', grantId: 'grt_00000000000000000000000001', details: { method: 'GET', target: '/api/x', protocol: 'http' } });
      const all = await h.request.get(`/api/v1/audit/events?connection=${connectionId}&action=sql.*&limit=500`).set(bearer(admin));
      expect(all.body.items.length).toBeGreaterThanOrEqual(2);
      expect(all.body.items.every((x: { action: string; connectionId: string }) => x.action.startsWith('sql.') && x.connectionId === connectionId)).toBe(true);
    });
  });

  it('WatchKeys drops a rotated key from the set its nodes hold once the overlap has passed', async () => {
    // Its own control plane, re-reading its key rings every 50 ms as a deployment does every 30 s.
    const h2 = await createHarness();
    try {
      const g2 = await startGrpc(h2, { keyPollMs: 50 });
      const watch = nodeClient(g2).watch('nod_overlap');
      try {
        const first = await nextKeySet(watch);
        const old = first.grantVerificationKeys.map((k) => k.kid);
        expect(old).toHaveLength(1);
        const rot = await h2.request.post('/api/v1/keys/rotate').set(bearer(await h2.adminToken())).send({ use: 'grant' });
        expect(rot.status).toBe(200);
        const during = await nextKeySetWhere(watch, (set) => set.grantVerificationKeys.some((k) => k.kid === rot.body.kid));
        expect(during.grantVerificationKeys.map((k) => k.kid).sort()).toEqual([...old, rot.body.kid].sort());
        // Grant keys overlap for the longest grant lifetime (an hour); after that the old key must go.
        h2.clock.advance(3601);
        const after = await nextKeySetWhere(watch, (set) => !set.grantVerificationKeys.some((k) => k.kid === old[0]));
        expect(after.grantVerificationKeys.map((k) => k.kid)).toEqual([rot.body.kid]);
        expect(after.version).toBeGreaterThan(during.version);
      } finally {
        watch.cancel();
      }
    } finally {
      await h2.close();
    }
  });

  it('GET /api/v1/info names the version and the gRPC listener (no TLS here), without authentication', async () => {
    const res = await h.request.get('/api/v1/info');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), grpc: { url: g.address, tls: false } });
    expect(g.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(g.address).not.toBe('127.0.0.1:0');
  });
});
