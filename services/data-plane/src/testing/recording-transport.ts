import type { AuditEvent, AuditTransport } from '../audit';

/** An audit transport for tests: the control plane stand-in that keeps every event in `shipped` and acknowledges it. */
export const recordingTransport = (shipped: AuditEvent[]): AuditTransport => ({
  send: async (events) => {
    shipped.push(...events);
    return { acked: events.map((e) => e.id) };
  },
});
