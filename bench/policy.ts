/**
 * 6. The policy engine bench (packages/policy/bench/policy-bench.ts), run as
 * a step in its own process; its lines are kept as printed and the decision
 * rates are picked out for the JSON file.
 */
import { join } from 'node:path';
import { run, type StepResult } from './lib';

const SCRIPT = join(__dirname, '..', 'packages', 'policy', 'bench', 'policy-bench.ts');

export const runPolicy = async (): Promise<StepResult> => {
  const r = await run(process.execPath, [...process.execArgv, SCRIPT], 120_000);
  const text = r.stdout.trimEnd();
  if (r.code !== 0 || !text) {
    const why = r.timedOut ? 'timed out' : `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
    return { step: 'policy', title: '6. Policy engine', table: `failed: ${why}`, rows: [], notes: [`policy bench failed: ${why}`], goals: [] };
  }
  const rows: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    const m = /^(.*?):\s+([\d,]+) decisions\/s/.exec(line);
    if (m) rows.push({ metric: (m[1] as string).trim(), decisionsPerSec: Number((m[2] as string).replace(/,/g, '')) });
    const b = /blocks the event loop for (\d+) ms/.exec(line);
    if (b) rows.push({ metric: 'inline 1 MiB parse blocks the event loop (ms)', value: Number(b[1]) });
    const w = /decided in (\d+) ms .*longest event-loop stall ([\d.]+) ms/.exec(line);
    if (w) rows.push({ metric: 'worker-pool 1 MiB parse (ms, longest stall ms)', value: Number(w[1]), stallMs: Number(w[2]) });
  }
  return { step: 'policy', title: '6. Policy engine', table: text, rows: [...rows, { output: text.split('\n') }], notes: ['npx tsx packages/policy/bench/policy-bench.ts, run as is'], goals: [] };
};
