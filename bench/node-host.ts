/**
 * A data-plane node on real sockets in its own process (bench/child.ts node),
 * as node.int.test.ts starts one: keys from createGrantFactory (no control
 * plane), an audit transport that acknowledges every batch (spooled, as the
 * node's gRPC transport ships), the audit spool
 * on disk (so each tunnel.open decision is fsync'd as in production), and
 * shared state in Redis (own key prefix) or in process.
 *
 * The rate-limit windows are raised so they never bind during a load run (the
 * checks themselves still run: a Redis round trip per tunnel, request and
 * statement in Redis mode). The process also signs grants on request and
 * reports its own memory (after a forced GC; start it with --expose-gc).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../packages/kit/src/index';
import type { BackendCredentials } from '../packages/grants/src/index';
import { createState, type State } from '../packages/state/src/index';
import { createTestPki, type TestPki } from '../packages/testing/src/certificates';
import { loadConfig, PROTOCOL_HANDLERS, startNode, type RunningNode } from '../services/data-plane/src/index';
import { createGrantFactory, type GrantSpec } from '../services/data-plane/src/testing/grant-factory';
import type { Handler } from './child';

export interface NodeStartOptions {
  /** Redis URL and a key prefix of the bench's own; null for in-process state. */
  redis: { url: string; prefix: string } | null;
  /** Also listen for direct PostgreSQL connections (TLS with a throwaway certificate; the grant is the password). */
  postgresDirect?: boolean;
}

export interface NodeInfo {
  tunnelUrl: string;
  adminUrl: string;
  stateMode: 'redis' | 'memory';
  /** The protocols this build's registry serves. */
  protocols: string[];
  /** host:port of the direct PostgreSQL listener, when asked for. */
  postgresDirect: string | null;
  pid: number;
}

export interface SignRequest {
  protocol: 'tcp' | 'http' | 'postgres';
  host: string;
  port: number;
  database?: string | null;
  credentials?: BackendCredentials | null;
  maxConnections?: number;
}

export interface NodeMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  liveTunnels: number;
}

const HIGH = { points: 1_000_000_000, durationSeconds: 1 };

const collect = async (): Promise<void> => {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i += 1) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
};

export const nodeHost = (): Handler => {
  let factory: Awaited<ReturnType<typeof createGrantFactory>> | null = null;
  let node: RunningNode | null = null;
  let state: State | null = null;
  let dir: string | null = null;
  let pki: TestPki | null = null;
  let stopped = false;
  const logger = createLogger({ service: 'bench-node', level: 'warn' });

  return async (cmd, arg) => {
    if (cmd === 'start') {
      if (node) throw new Error('node already started');
      const opts = arg as NodeStartOptions;
      factory = await createGrantFactory();
      dir = mkdtempSync(join(tmpdir(), 'pa-bench-node-'));
      state = createState({
        ...(opts.redis ? { redis: opts.redis.url, keyPrefix: opts.redis.prefix } : {}),
        logger,
        rateLimits: { tunnelPerUser: HIGH, tunnelPerConnection: HIGH, requestPerUser: HIGH, requestPerConnection: HIGH },
      });
      await state.revocations.start();
      // Direct PostgreSQL connections need TLS: a throwaway CA and certificate (openssl, as the tests make them).
      pki = opts.postgresDirect ? createTestPki() : null;
      const cert = pki ? pki.issue(pki.ca('pa bench CA'), 'localhost', { dns: ['localhost'], ips: ['127.0.0.1'] }) : null;
      const config = loadConfig(
        {},
        {
          dataDir: dir,
          logLevel: 'warn',
          tunnel: { port: 0, maxTunnels: 100_000, ...(cert ? { tls: { certFile: cert.certFile, keyFile: cert.keyFile } } : {}) },
          ...(cert ? { postgresDirect: { port: 0 } } : {}),
          admin: { port: 0 },
          controlPlane: { issuer: factory.issuer },
          limits: { maxTunnelsPerUser: 100_000 },
          drainTimeoutSeconds: 0,
        },
      );
      node = await startNode(config, logger, {
        state,
        keys: factory.keys,
        // Acknowledges as the control plane would, taking events as spooled like the node's gRPC transport.
        transport: { send: async (events) => ({ acked: events.map((e) => e.id) }), sendSpooled: async (events) => ({ acked: events.map((e) => e.id) }) },
      });
      await node.keysReady;
      const info: NodeInfo = { tunnelUrl: node.tunnelUrl, adminUrl: node.adminUrl, stateMode: state.mode, protocols: Object.keys(PROTOCOL_HANDLERS), pid: process.pid, postgresDirect: node.postgresDirectAddress };
      return info;
    }
    if (cmd === 'sign') {
      if (!factory) throw new Error('node not started');
      const r = arg as SignRequest;
      const spec: GrantSpec = {
        protocol: r.protocol,
        host: r.host,
        port: r.port,
        database: r.database ?? null,
        credentials: r.credentials ?? null,
        maxConnections: r.maxConnections ?? 10_000,
        ttlSeconds: 900,
        sessionSeconds: 3600,
      };
      return (await factory.sign(spec)).token;
    }
    if (cmd === 'memory') {
      await collect();
      const m = process.memoryUsage();
      const result: NodeMemory = { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, liveTunnels: node?.live.size ?? 0 };
      return result;
    }
    if (cmd === 'live') return node?.live.size ?? 0;
    if (cmd === 'metrics') {
      // The node's own Prometheus counters, summed over labels.
      if (!node) throw new Error('node not started');
      const text = await (await fetch(`${node.adminUrl}/metrics`)).text();
      const sums: Record<string, number> = {};
      for (const line of text.split('\n')) {
        const m = /^([a-z_]+)(?:\{[^}]*\})?\s+([-\d.e+]+)$/.exec(line);
        if (m) sums[m[1] as string] = (sums[m[1] as string] ?? 0) + Number(m[2]);
      }
      return sums;
    }
    if (cmd === 'stop') {
      if (stopped) return null;
      stopped = true;
      await node?.stop();
      await state?.close();
      pki?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
      return null;
    }
    throw new Error(`node: unknown command ${cmd}`);
  };
};
