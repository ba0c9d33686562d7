import { GrantKeeper, type GrantEnd, type KeptGrant, type Timers } from './grant-keeper';
import { LocalListener, type ListenerEvent, type LocalListenerOptions, type TunnelGrant } from './local-listener';

/** How a connect session ended: stopped by the user (signal), or on its own. */
export type SessionEnd<TGrant> = { kind: 'stopped' } | GrantEnd<TGrant>;

export interface ConnectSessionOptions<TGrant extends KeptGrant & TunnelGrant> {
  /** The grant just issued. */
  grant: TGrant;
  renew: (current: TGrant) => Promise<TGrant>;
  isRetryable: (err: unknown) => boolean;
  address?: string;
  port?: number;
  /** CAs to trust for https:// nodes (Node's default list when absent). */
  ca?: readonly string[];
  /** Aborting it (SIGINT/SIGTERM) closes the listener and every tunnel. */
  signal: AbortSignal;
  onListenerEvent?: (event: ListenerEvent) => void;
  onRenewed?: (grant: TGrant) => void;
  onRetry?: (err: unknown, delayMs: number) => void;
  now?: () => number;
  timers?: Timers;
  openTunnel?: LocalListenerOptions['openTunnel'];
}

/** A running `pa connect`: the listener, the grant keeper, and a promise of how it ends. */
export interface ConnectSession<TGrant> {
  listener: LocalListener;
  current(): TGrant;
  /** Resolves once the listener and every tunnel are closed. */
  ended: Promise<SessionEnd<TGrant>>;
}

/**
 * Binds the loopback listener and keeps the grant renewed. The session ends
 * when the signal aborts, when renewal is refused, or when the grant runs out
 * (renewal kept failing, or the session reached its absolute end); in every
 * case the listener and all tunnels are closed before `ended` resolves.
 */
export const startConnectSession = async <TGrant extends KeptGrant & TunnelGrant>(
  options: ConnectSessionOptions<TGrant>,
): Promise<ConnectSession<TGrant>> => {
  let finish: (end: SessionEnd<TGrant>) => void = () => {};
  const ended = new Promise<SessionEnd<TGrant>>((resolve) => {
    finish = resolve;
  });
  let listener: LocalListener | null = null;
  let done = false;
  const keeper = new GrantKeeper<TGrant>({
    initial: options.grant,
    renew: options.renew,
    isRetryable: options.isRetryable,
    ...(options.onRenewed ? { onRenewed: options.onRenewed } : {}),
    ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
    onEnded: (end) => void stop(end),
  });
  const stop = async (end: SessionEnd<TGrant>): Promise<void> => {
    if (done) return;
    done = true;
    keeper.stop();
    await listener?.close();
    finish(end);
  };
  listener = await LocalListener.start({
    grant: () => keeper.current,
    ...(options.address !== undefined ? { address: options.address } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.onListenerEvent ? { onEvent: options.onListenerEvent } : {}),
    ...(options.openTunnel ? { openTunnel: options.openTunnel } : {}),
  });
  if (options.signal.aborted) void stop({ kind: 'stopped' });
  else options.signal.addEventListener('abort', () => void stop({ kind: 'stopped' }), { once: true });
  keeper.start();
  return { listener, current: () => keeper.current, ended };
};
