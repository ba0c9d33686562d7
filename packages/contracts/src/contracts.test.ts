import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AuditEvent,
  AuditOutcome,
  GrantServiceService,
  IngestAuditRequest,
  KeySet,
  NodeServiceService,
  Protocol,
  RenewGrantRequest,
  SECRET_FIELDS,
  dateFromTimestamp,
  redactSecrets,
  timestampFromDate,
} from './index';

const protoDir = join(__dirname, '../../../proto/portauth/v1');

describe('generated messages', () => {
  const event: AuditEvent = AuditEvent.fromPartial({
    eventId: 'evt_01hzz0000000000000000000000',
    time: { seconds: 1_750_000_000, nanos: 123_000_000 },
    nodeId: 'nod_01hzz0000000000000000000000',
    actorUserId: 'usr_01hzz0000000000000000000000',
    actorUserName: 'alice',
    action: 'sql.statement',
    protocol: Protocol.POSTGRES,
    outcome: AuditOutcome.DENIED,
    decisionJson: '{"rule":"no-writes"}',
    request: {
      clientAddress: '203.0.113.7:51234',
      sql: 'DELETE FROM accounts',
      sqlStatementKinds: ['delete'],
      metadata: { application_name: 'psql' },
    },
    bytesUp: 2 ** 40, // beyond 32 bits: int64 maps to number (forceLong=number)
    durationMs: 12,
  });

  it('round-trips an audit event through the wire encoding', () => {
    const bytes = AuditEvent.encode(event).finish();
    expect(bytes.length).toBeGreaterThan(0);
    expect(AuditEvent.decode(bytes)).toEqual(event);
  });

  it('round-trips a batch with nested messages and enums', () => {
    const batch = IngestAuditRequest.fromPartial({ nodeId: 'nod_x', events: [event, { ...event, eventId: 'evt_2' }] });
    const decoded = IngestAuditRequest.decode(IngestAuditRequest.encode(batch).finish());
    expect(decoded.events).toHaveLength(2);
    expect(decoded.events[1]?.eventId).toBe('evt_2');
    expect(decoded.events[0]?.outcome).toBe(AuditOutcome.DENIED);
    expect(decoded.events[0]?.bytesUp).toBe(2 ** 40);
  });

  it('encodes a oneof as a tagged union', () => {
    const req = RenewGrantRequest.fromPartial({ current: { $case: 'grantId', grantId: 'grt_1' }, requestedTtlSeconds: 300 });
    expect(RenewGrantRequest.decode(RenewGrantRequest.encode(req).finish())).toEqual(req);
  });

  it('uses field numbers in steps of ten on the wire (grant_id is field 10)', () => {
    const bytes = RenewGrantRequest.encode({ current: { $case: 'grantId', grantId: 'g' }, requestedTtlSeconds: 0 }).finish();
    // tag = (10 << 3) | wire type 2 (length-delimited) = 82
    expect(Array.from(bytes)).toEqual([82, 1, 'g'.charCodeAt(0)]);
  });

  it('converts timestamps to and from Date', () => {
    const date = new Date('2025-06-15T12:34:56.789Z');
    expect(timestampFromDate(date)).toEqual({ seconds: 1_749_990_896, nanos: 789_000_000 });
    expect(dateFromTimestamp(timestampFromDate(date)).toISOString()).toBe(date.toISOString());
  });
});

describe('service definitions', () => {
  it('GrantService has the expected method paths and streaming flags', () => {
    expect(GrantServiceService.issueGrant.path).toBe('/portauth.v1.GrantService/IssueGrant');
    expect(GrantServiceService.renewGrant.path).toBe('/portauth.v1.GrantService/RenewGrant');
    expect(GrantServiceService.issueGrant.responseStream).toBe(false);
  });

  it('NodeService has the expected method paths, WatchKeys server-streaming', () => {
    const paths = Object.values(NodeServiceService).map((m) => m.path).sort();
    expect(paths).toEqual([
      '/portauth.v1.NodeService/DeregisterNode',
      '/portauth.v1.NodeService/Heartbeat',
      '/portauth.v1.NodeService/IngestAudit',
      '/portauth.v1.NodeService/RegisterNode',
      '/portauth.v1.NodeService/WatchKeys',
    ]);
    expect(NodeServiceService.watchKeys.requestStream).toBe(false);
    expect(NodeServiceService.watchKeys.responseStream).toBe(true);
  });

  it('serialises requests with the message codecs', () => {
    const { requestSerialize, requestDeserialize } = NodeServiceService.ingestAudit;
    const msg = IngestAuditRequest.fromPartial({ nodeId: 'nod_x' });
    expect(requestDeserialize(requestSerialize(msg))).toEqual(msg);
  });
});

describe('secret fields', () => {
  const tagged = readdirSync(protoDir)
    .filter((f) => f.endsWith('.proto'))
    .flatMap((file) => {
      // Top-level messages only (the contracts nest none); a oneof's fields belong to its message.
      const found: string[] = [];
      let message = '?';
      for (const line of readFileSync(join(protoDir, file), 'utf8').split('\n')) {
        const open = /^message\s+(\w+)\s*\{/.exec(line);
        if (open?.[1]) message = open[1];
        const field = /^\s*(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+;\s*\/\/\s*secret\s*$/.exec(line);
        if (field?.[1]) found.push(`portauth.v1.${message}.${field[1]}`);
      }
      return found;
    })
    .sort();

  it('lists exactly the fields tagged `// secret` in proto/', () => {
    expect(tagged.length).toBeGreaterThan(0);
    expect(SECRET_FIELDS.map((f) => `${f.message}.${f.field}`).sort()).toEqual(tagged);
  });

  it('redacts secrets in a decoded message tree', () => {
    const keys = KeySet.fromPartial({
      version: 3,
      credentialDecryptionKeys: [{ kid: 'k1', kty: 'OKP', crv: 'X25519', x: 'pub', d: 'private-bytes' }],
      grantVerificationKeys: [{ kid: 'k2', kty: 'OKP', crv: 'Ed25519', x: 'pub2' }],
    });
    const out = JSON.stringify(redactSecrets({ keySet: keys, grant: { grantToken: 'eyJ.secret.sig', grantId: 'grt_1' } }));
    expect(out).not.toContain('private-bytes');
    expect(out).not.toContain('eyJ.secret.sig');
    expect(out).toContain('grt_1');
    expect(out).toContain('pub2');
  });
});
