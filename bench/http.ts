/**
 * 4. HTTP keep-alive requests/s and p99: wrk (BENCH_HTTP_CONNECTIONS
 * connections, one thread per CPU, BENCH_HTTP_SECONDS) against a node:http
 * backend answering 1 KiB bodies:
 *
 *   direct                      wrk ──▶ backend
 *   nginx                       wrk ──▶ nginx (reverse proxy, keep-alive upstream) ──▶ backend
 *   Node.js pipe relay          wrk ──▶ relay ──▶ backend                      (one raw hop, reference)
 *   pa connect → node (tcp)     wrk ──▶ local listener ══tunnel══▶ node, tcp grant ──▶ backend
 *   pa connect → node (http)    wrk ──▶ local listener ══tunnel══▶ node, http grant, every request
 *                                       policy-checked and audited ──▶ backend
 *
 * The `pa connect` rows are two hops (the local listener a user runs, and the
 * node); wrk cannot speak the tunnel protocol itself. The http-grant row needs
 * the HTTP handler in services/data-plane/src/protocols/registry.ts.
 */
import { availableParallelism } from 'node:os';
import type { BenchConfig } from './config';
import { errText, pct, round, run, startChild, table, type BenchContext, type StepResult } from './lib';
import { MISSING, startNginx, type Tools } from './peers';
import { fsyncNote, startNodes, type LoadPath, type RunningNodeChild } from './node-paths';

export interface WrkResult {
  requestsPerSec: number;
  p50ms: number | null;
  p99ms: number | null;
  requests: number;
  errors: number;
  non2xx: number;
}

const toMs = (v: string, unit: string): number => {
  const n = Number(v);
  if (unit === 'us') return n / 1000;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  return n;
};

export const parseWrk = (text: string): WrkResult => {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`wrk printed no Requests/sec: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  const lat = (p: string): number | null => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1] as string, m[2] as string) : null;
  };
  const reqs = /(\d+) requests in/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requestsPerSec: Number(rps[1]),
    p50ms: lat('50'),
    p99ms: lat('99'),
    requests: reqs ? Number(reqs[1]) : 0,
    errors: sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
    non2xx: non ? Number(non[1]) : 0,
  };
};

export const runHttp = async (cfg: BenchConfig, ctx: BenchContext, tools: Tools): Promise<StepResult> => {
  const notes: string[] = [];
  if (!tools.wrk) {
    return { step: 'http', title: '4. HTTP keep-alive requests/s', table: MISSING('wrk'), rows: [], notes: [MISSING('wrk')], goals: [] };
  }
  const wrk = tools.wrk;
  const cleanups: Array<() => Promise<void>> = [];
  const paths: LoadPath[] = [{ name: 'direct', port: ctx.servers.http }];
  try {
    if (tools.nginx) {
      try {
        const ng = await startNginx(tools.nginx, ctx.servers.http, ctx.logDir);
        cleanups.push(() => ng.stop());
        paths.push({ name: 'nginx (reverse proxy)', port: ng.ports.http as number });
      } catch (err) {
        paths.push({ name: 'nginx (reverse proxy)', port: null, skipped: `did not start: ${errText(err)}` });
      }
    } else paths.push({ name: 'nginx (reverse proxy)', port: null, skipped: MISSING('nginx') });

    const relay = await startChild('relay', `${ctx.logDir}/relay-http.log`);
    cleanups.push(() => relay.stop());
    paths.push({ name: 'Node.js pipe relay', port: (await relay.call<{ port: number }>('start', { targetPort: ctx.servers.http })).port });

    const set = await startNodes(cfg, ctx, 'http');
    cleanups.push(async () => {
      notes.push(...(await set.stop()));
    });
    const target = { host: '127.0.0.1', port: ctx.servers.http, maxConnections: 1000 };
    const first = set.nodes[0] as RunningNodeChild;
    paths.push(await set.path(first, { protocol: 'tcp', ...target }, `pa connect → node (tcp grant, ${first.label} state)`));
    for (const n of set.nodes) paths.push(await set.path(n, { protocol: 'http', ...target }, `pa connect → node (http grant, ${n.label} state)`));

    const threads = Math.max(1, Math.min(availableParallelism(), cfg.http.connections));
    const args = (port: number, seconds: number): string[] => ['-t', String(threads), '-c', String(cfg.http.connections), '-d', `${seconds}s`, '--timeout', '5s', '--latency', `http://127.0.0.1:${port}/`];
    const results = new Map<string, WrkResult>();
    for (const p of paths) {
      if (p.port === null) continue;
      try {
        await run(wrk, args(p.port, 1), 20_000); // warm-up
        const m0 = (await p.metrics?.().catch(() => null)) ?? null;
        const r = await run(wrk, args(p.port, cfg.http.seconds), cfg.http.seconds * 1000 + 30_000);
        if (r.timedOut) throw new Error('wrk did not finish in time');
        const w = parseWrk(r.stdout);
        results.set(p.name, w);
        const m1 = (await p.metrics?.().catch(() => null)) ?? null;
        const fs = fsyncNote(m0, m1, w.requests, 'requests');
        if (fs) notes.push(`${p.name}: ${fs}`);
        if (w.errors || w.non2xx) notes.push(`${p.name}: ${w.errors} socket errors, ${w.non2xx} non-2xx responses`);
      } catch (err) {
        p.skipped = `failed: ${errText(err)}`;
      }
      const extra = await p.after?.().catch(() => null);
      if (extra) notes.push(`${p.name}: ${extra}`);
    }
    const direct = results.get('direct');
    const rows = paths.map((p) => {
      const w = results.get(p.name);
      const ratio = w && direct ? w.requestsPerSec / direct.requestsPerSec : null;
      return {
        path: p.name,
        requestsPerSec: w ? Math.round(w.requestsPerSec) : null,
        p50ms: w?.p50ms ?? null,
        p99ms: w?.p99ms ?? null,
        ratio: ratio === null ? null : round(ratio, 3),
        errors: w ? w.errors + w.non2xx : null,
        note: p.skipped ?? null,
      };
    });
    const f = (n: number | null, d = 2): string => (n === null ? '-' : n.toFixed(d));
    const text = table(
      ['path', 'req/s', 'vs direct', 'p50 ms', 'p99 ms', 'note'],
      rows.map((r) => [r.path, r.requestsPerSec === null ? '-' : String(r.requestsPerSec), pct(r.ratio), f(r.p50ms), f(r.p99ms), r.note ?? '']),
    );
    const ng = rows.find((r) => r.path.startsWith('nginx'));
    notes.push(`wrk -t${threads} -c${cfg.http.connections} -d${cfg.http.seconds}s (after a 1 s warm-up), 1 KiB responses, keep-alive; rate-limit windows raised so they never bind (each check still runs)`);
    return {
      step: 'http',
      title: '4. HTTP keep-alive requests/s',
      table: text,
      rows,
      notes,
      goals: rows
        .filter((r) => r.path.includes('(http grant'))
        .map((hop) => ({
          name: `HTTP: ${hop.path} ratio ≥ nginx ratio`,
          target: ng?.ratio != null ? `≥ ${pct(ng.ratio)} (nginx, this run)` : '≥ nginx (~65%)',
          measured: hop.ratio != null ? pct(hop.ratio) : (hop.note ?? '-'),
          met: hop.ratio != null && ng?.ratio != null ? hop.ratio >= ng.ratio : null,
        })),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
};
