import { loadConfig as loadControlPlaneConfig, startControlPlane, type RunningControlPlane } from '@pa/control-plane';
import { loadConfig as loadNodeConfig, startNode, type RunningNode } from '@pa/data-plane';
import type { Env, Logger } from '@pa/kit';
import { createState } from '@pa/state';
import { startDemoBackends, type DemoBackends } from './demo-backends';
import { seedDemo } from './demo-seed';

export interface Embedded {
  controlPlane: RunningControlPlane;
  node: RunningNode;
  demo: { backends: DemoBackends; connections: string[] } | null;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  env: Env;
  logger: Logger;
  demo: boolean;
  /** Overrides for tests: ports 0, a temporary data directory… */
  controlPlane?: Parameters<typeof loadControlPlaneConfig>[1];
  node?: Parameters<typeof loadNodeConfig>[1];
}

/**
 * The embedded default: the control plane (embedded PostgreSQL unless
 * DATABASE_URL is set) and one data-plane node in one process, sharing one
 * in-process revocation/rate-limit state (or Redis when REDIS_URL is set), plus
 * the demo backends. It composes the two services from outside them, so the
 * services keep their rule of never importing each other.
 */
export const startEmbedded = async (o: EmbeddedOptions): Promise<Embedded> => {
  const cpConfig = loadControlPlaneConfig(o.env, o.controlPlane ?? {});
  const state = createState({ ...(cpConfig.redis.url ? { redis: cpConfig.redis.url } : {}), keyPrefix: cpConfig.redis.keyPrefix, logger: o.logger });
  await state.revocations.start();
  const stops: Array<() => Promise<void>> = [() => state.close()];
  try {
    const controlPlane = await startControlPlane(cpConfig, o.logger.child({ service: 'control-plane' }), { state });
    stops.push(() => controlPlane.stop());
    let demo: Embedded['demo'] = null;
    if (o.demo) {
      const backends = await startDemoBackends();
      stops.push(() => backends.close());
      const connections = await seedDemo(controlPlane.cp, backends, controlPlane.embedded ? controlPlane.databaseUrl : null, o.logger);
      demo = { backends, connections };
    }
    const nodeConfig = loadNodeConfig(o.env, {
      dataDir: cpConfig.dataDir,
      ...o.node,
      controlPlane: { grpcAddress: controlPlane.grpcAddress, token: controlPlane.nodeToken, issuer: cpConfig.auth.issuer, ...(o.node?.controlPlane ?? {}) },
    });
    const node = await startNode(nodeConfig, o.logger.child({ service: 'data-plane' }), { state });
    stops.push(() => node.stop());
    await node.keysReady;
    return {
      controlPlane,
      node,
      demo,
      stop: async () => {
        for (const s of stops.reverse()) await s().catch((err: unknown) => o.logger.warn('Shutdown step failed.', { err }));
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
};
