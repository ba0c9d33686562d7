/**
 * Worker-thread entry of the parser pool: parses and analyses SQL text off the
 * main thread and posts back only the (small) statement facts.
 */
import { parentPort } from 'node:worker_threads';
import { analyzeSqlText, initPolicyEngine, type PortableAnalyzeSqlOptions } from './parse';

/** A request to the worker. */
export interface ParseRequest {
  readonly id: number;
  readonly sql: string;
  readonly options: PortableAnalyzeSqlOptions;
}

const port = parentPort;
if (port) {
  // initPolicyEngine warms the parser up, so the first query's time budget is not spent on tier-up.
  const ready = initPolicyEngine();
  ready.then(
    () => port.postMessage({ ready: true }),
    () => port.postMessage({ ready: false }),
  );
  port.on('message', (req: ParseRequest) => {
    ready.then(
      () => port.postMessage({ id: req.id, analysis: analyzeSqlText(req.sql, req.options) }),
      () => port.postMessage({ id: req.id, analysis: { ok: false, failure: 'internal', reason: 'the SQL parser failed to load' } }),
    );
  });
}
