/**
 * 1. TCP bulk throughput, one connection at a time, both directions:
 *
 *   upload    client ──bytes──▶ [hop] ──▶ sink      (sink answers the count after the client's end)
 *   download  client ◀──bytes── [hop] ◀── source    (source streams, then ends)
 *
 * Each transfer is bounded by bytes (BENCH_TCP_MAX_MIB) and time
 * (BENCH_TCP_SECONDS) and timed until the last byte is acknowledged (upload)
 * or received (download). Hops: none (direct), the data-plane node (the
 * client speaks the tunnel protocol: openTunnel, then writes), haproxy in
 * mode tcp, and a plain Node.js pipe relay. Best of BENCH_TCP_ROUNDS rounds,
 * hops interleaved within a round.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { openTunnel } from '../packages/tunnel/src/index';
import type { BenchConfig } from './config';
import { errText, pct, round, startChild, table, type BenchChild, type BenchContext, type StepResult } from './lib';
import type { NodeInfo } from './node-host';
import { MISSING, startHaproxy, type Peer, type Tools } from './peers';
import { CHUNK } from './servers';

type Dir = 'upload' | 'download';

interface Hop {
  name: string;
  /** Opens a connection to the sink or the source through this hop. */
  open(dir: Dir): Promise<Socket>;
}

const tcpConnect = async (port: number): Promise<Socket> => {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  s.setNoDelay(true);
  return s;
};

/** Resolves with the next `n` bytes of `s` (rejects when it closes first). */
const readExactly = (s: Socket, n: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        cleanup();
        resolve(Buffer.concat(chunks));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection ended after ${got} of ${n} bytes`));
    };
    const cleanup = (): void => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
  });

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });

/** Sends until `maxBytes` or `maxMs`, ends, waits for the sink's count. Returns bytes/s. */
const upload = async (s: Socket, maxBytes: number, maxMs: number): Promise<number> => {
  s.on('error', () => undefined);
  const ack = readExactly(s, 8);
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (sent < maxBytes && performance.now() - t0 < maxMs) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
      resolve();
    };
    pump();
  });
  const counted = Number((await withTimeout(ack, maxMs + 30_000, 'upload acknowledgement')).readBigUInt64BE(0));
  const seconds = (performance.now() - t0) / 1000;
  s.destroy();
  if (counted !== sent) throw new Error(`sink counted ${counted} bytes, client sent ${sent}`);
  return sent / seconds;
};

/** Asks the source for `maxBytes` / `maxMs`, reads until its end. Returns bytes/s. */
const download = async (s: Socket, maxBytes: number, maxMs: number): Promise<number> => {
  s.on('error', () => undefined);
  let got = 0;
  s.on('data', (c: Buffer) => (got += c.length));
  const ended = once(s, 'end');
  const head = Buffer.alloc(12);
  head.writeBigUInt64BE(BigInt(maxBytes), 0);
  head.writeUInt32BE(Math.round(maxMs), 8);
  const t0 = performance.now();
  s.write(head);
  await withTimeout(ended, maxMs + 30_000, 'download');
  const seconds = (performance.now() - t0) / 1000;
  s.destroy();
  if (got === 0) throw new Error('the source sent nothing');
  return got / seconds;
};

export const runTcp = async (cfg: BenchConfig, ctx: BenchContext, tools: Tools): Promise<StepResult> => {
  const notes: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const hops: Hop[] = [{ name: 'direct', open: (d) => tcpConnect(d === 'upload' ? ctx.servers.sink : ctx.servers.source) }];
  try {
    // The data-plane node: one tcp grant per backend, a tunnel per transfer.
    const node: BenchChild = await startChild('node', `${ctx.logDir}/node-tcp.log`);
    cleanups.push(() => node.stop());
    const info = await node.call<NodeInfo>('start', { redis: null });
    const grants = {
      upload: await node.call<string>('sign', { protocol: 'tcp', host: '127.0.0.1', port: ctx.servers.sink }),
      download: await node.call<string>('sign', { protocol: 'tcp', host: '127.0.0.1', port: ctx.servers.source }),
    };
    hops.push({ name: 'data-plane node (tunnel)', open: async (d) => (await openTunnel({ url: info.tunnelUrl, grant: grants[d] })).socket });

    if (tools.haproxy) {
      try {
        const hp: Peer = await startHaproxy(tools.haproxy, { sink: ctx.servers.sink, source: ctx.servers.source }, ctx.logDir);
        cleanups.push(() => hp.stop());
        hops.push({ name: 'haproxy (mode tcp)', open: (d) => tcpConnect(hp.ports[d === 'upload' ? 'sink' : 'source'] as number) });
      } catch (err) {
        notes.push(`haproxy did not start: ${errText(err)}`);
      }
    } else notes.push(MISSING('haproxy'));

    const relay = await startChild('relay', `${ctx.logDir}/relay.log`);
    cleanups.push(() => relay.stop());
    const relayPorts = {
      upload: (await relay.call<{ port: number }>('start', { targetPort: ctx.servers.sink })).port,
      download: (await relay.call<{ port: number }>('start', { targetPort: ctx.servers.source })).port,
    };
    hops.push({ name: 'Node.js pipe relay', open: (d) => tcpConnect(relayPorts[d]) });

    const maxMs = cfg.tcp.seconds * 1000;
    const best = new Map<string, Record<Dir, number>>();
    const errors = new Map<string, string>();
    const measure = async (hop: Hop, dir: Dir, ms: number, maxBytes: number): Promise<number> => {
      const s = await hop.open(dir);
      return dir === 'upload' ? upload(s, maxBytes, ms) : download(s, maxBytes, ms);
    };
    // Warm-up (JIT, TCP windows, pools), not recorded.
    for (const hop of hops) {
      for (const dir of ['upload', 'download'] as const) {
        await measure(hop, dir, 300, 256 * 1024 * 1024).catch((err: unknown) => errors.set(hop.name, errText(err)));
      }
    }
    for (let r = 0; r < cfg.tcp.rounds; r += 1) {
      for (const hop of hops) {
        for (const dir of ['upload', 'download'] as const) {
          try {
            const bps = await measure(hop, dir, maxMs, cfg.tcp.maxBytes);
            const b = best.get(hop.name) ?? { upload: 0, download: 0 };
            b[dir] = Math.max(b[dir], bps);
            best.set(hop.name, b);
          } catch (err) {
            errors.set(hop.name, errText(err));
          }
        }
      }
    }
    const direct = best.get('direct');
    const rows = hops.map((h) => {
      const b = best.get(h.name);
      const ratio = (dir: Dir): number | null => (b && direct && direct[dir] > 0 && b[dir] > 0 ? b[dir] / direct[dir] : null);
      return {
        path: h.name,
        uploadMBps: b ? round(b.upload / 1e6, 1) : null,
        uploadRatio: ratio('upload') === null ? null : round(ratio('upload') as number, 3),
        downloadMBps: b ? round(b.download / 1e6, 1) : null,
        downloadRatio: ratio('download') === null ? null : round(ratio('download') as number, 3),
        error: errors.get(h.name) ?? null,
      };
    });
    for (const [name, e] of errors) notes.push(`${name}: ${e}`);
    const fmt = (n: number | null): string => (n === null ? '-' : n.toFixed(0));
    const text = table(
      ['path', 'upload MB/s', 'vs direct', 'download MB/s', 'vs direct'],
      rows.map((r) => [r.path, fmt(r.uploadMBps), pct(r.uploadRatio), fmt(r.downloadMBps), pct(r.downloadRatio)]),
    );
    const nodeRow = rows.find((r) => r.path.startsWith('data-plane'));
    const hpRow = rows.find((r) => r.path.startsWith('haproxy'));
    const mean = (r: (typeof rows)[number] | undefined): number | null =>
      r && r.uploadRatio !== null && r.downloadRatio !== null ? (r.uploadRatio + r.downloadRatio) / 2 : null;
    const nodeMean = mean(nodeRow);
    const hpMean = mean(hpRow);
    const goals = [
      {
        name: 'TCP: data-plane hop ratio ≥ haproxy ratio (mean of both directions)',
        target: hpMean === null ? '≥ haproxy (~52%)' : `≥ ${pct(hpMean)} (haproxy, this run)`,
        measured: pct(nodeMean),
        met: nodeMean === null || hpMean === null ? null : nodeMean >= hpMean,
      },
    ];
    notes.push(
      `one connection, ${cfg.tcp.seconds} s or ${cfg.tcp.maxBytes / 1024 / 1024} MiB per transfer, best of ${cfg.tcp.rounds}; MB = 10^6 bytes; node state: ${info.stateMode}`,
    );
    return { step: 'tcp', title: '1. TCP bulk throughput', table: text, rows, notes, goals };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
};
