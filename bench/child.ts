/**
 * Entry of the bench's child processes (`bench/child.ts <role>`), each driven
 * by bench/run.ts over IPC so that the load generator, the proxy under test
 * and the backends never share an event loop:
 *
 *   servers  TCP sink, TCP source, TCP echo, HTTP backend (1 KiB responses)
 *   node     a data-plane node (startNode, no control plane) that also signs grants
 *   relay    a plain Node.js pipe relay (reference: the cheapest possible hop in Node)
 *   connect  a `pa connect`-style local listener: one tunnel per accepted connection
 */
import type { RpcRequest, RpcResponse } from './lib';
import { errText } from './lib';
import { nodeHost } from './node-host';
import { servers } from './servers';
import { connectListener, pipeRelay } from './relays';

export type Handler = (cmd: string, arg: unknown) => Promise<unknown>;

const role = process.argv[2];
const handlers: Record<string, () => Handler> = { servers, node: nodeHost, relay: pipeRelay, connect: connectListener };
const make = role ? handlers[role] : undefined;
if (!make || !process.send) {
  process.stderr.write(`usage (over IPC only): child.ts ${Object.keys(handlers).join('|')}\n`);
  process.exit(2);
}
const handle = make();
const reply = (m: RpcResponse): void => {
  if (process.connected) process.send?.(m);
};

process.on('message', (m: RpcRequest) => {
  void (async () => {
    try {
      const result = m.cmd === 'ping' ? 'pong' : await handle(m.cmd, m.arg);
      reply({ id: m.id, ok: true, result });
      if (m.cmd === 'stop') setTimeout(() => process.exit(0), 50);
    } catch (err) {
      process.stderr.write(`${role} ${m.cmd}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      reply({ id: m.id, ok: false, error: errText(err) });
    }
  })();
});
process.on('disconnect', () => {
  void handle('stop', null)
    .catch(() => undefined)
    .finally(() => process.exit(0));
});
