import { Registry } from 'prom-client';
import { registerAuditMetrics } from './audit-metrics';
import { AuditShipper } from './audit-shipper';
import { AuditSpool } from './audit-spool';
import { FakeControlPlane, makeEvent, makeTempDir } from './audit-test-support';

describe('registerAuditMetrics', () => {
  it('exposes the spool and shipper numbers on the injected registry', async () => {
    const { dir, cleanup } = await makeTempDir();
    const spool = await AuditSpool.open({ dir, groupCommitWindowMs: 0 });
    const shipper = new AuditShipper({ spool, transport: new FakeControlPlane() });
    try {
      await spool.append([makeEvent(), makeEvent(), makeEvent()]);
      const registry = new Registry();
      registerAuditMetrics(registry, { spool, shipper });
      let text = await registry.metrics();
      expect(text).toMatch(/^pa_audit_spool_pending_events 3$/m);
      expect(text).toMatch(/^pa_audit_spool_fsyncs_total 1$/m);
      expect(text).toMatch(/^pa_audit_spool_writable 1$/m);
      expect(text).toMatch(/^pa_audit_shipped_events_total 0$/m);

      await shipper.flush(60_000);
      text = await registry.metrics();
      expect(text).toMatch(/^pa_audit_spool_pending_events 0$/m);
      expect(text).toMatch(/^pa_audit_shipped_events_total 3$/m);
      expect(text).toMatch(/^pa_audit_ship_failures_total 0$/m);
    } finally {
      await shipper.stop();
      await spool.close();
      await cleanup();
    }
  });
});
