import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The node's Prometheus metrics (served on the admin port at /metrics). */
export interface Metrics {
  registry: Registry;
  tunnelsOpen: Gauge<'protocol'>;
  tunnelsRefused: Counter<'code'>;
  bytes: Counter<'direction' | 'protocol'>;
  handshakeSeconds: Histogram;
}

export const createMetrics = (): Metrics => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pa_dataplane_' });
  return {
    registry,
    tunnelsOpen: new Gauge({ name: 'pa_tunnels_open', help: 'Tunnels open on this node.', labelNames: ['protocol'], registers: [registry] }),
    tunnelsRefused: new Counter({ name: 'pa_tunnels_refused_total', help: 'Tunnels refused, by error code.', labelNames: ['code'], registers: [registry] }),
    bytes: new Counter({ name: 'pa_tunnel_bytes_total', help: 'Bytes relayed through tunnels.', labelNames: ['direction', 'protocol'], registers: [registry] }),
    handshakeSeconds: new Histogram({
      name: 'pa_tunnel_handshake_seconds',
      help: 'Time to admit a tunnel (grant verification, Redis checks, audit).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
  };
};
