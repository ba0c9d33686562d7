import { checkGrant as defaultCheckGrant, TunnelRefusedError, type CheckGrantOptions } from '@pa/tunnel';
import { GrantKeeper, realTimers, type GrantEnd, type KeptGrant, type Timers } from './grant-keeper';
import { LocalListener, type ListenerEvent, type LocalListenerOptions, type TunnelGrant } from './local-listener';

/** Refusals that mean the grant itself was revoked (by grant, session or user): worth asking the control plane at once. */
const REVOCATION_CODES: ReadonlySet<string> = new Set(['GRANT_REVOKED', 'AUTH_SESSION_REVOKED']);

const isRevocation = (err: unknown): boolean => err instanceof TunnelRefusedError && REVOCATION_CODES.has(err.code);

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
  /** Replaceable for tests (the node's grant status check). */
  checkGrant?: (options: CheckGrantOptions) => Promise<void>;
  /** Least time between two status checks after tunnels the node closed (default 1 s). */
  checkIntervalMs?: number;
  /**
   * Ask a node every this many ms whether the grant still stands, tunnels or
   * not, so a revocation ends an idle session too (0 or absent: only after
   * tunnels the node closed, or at the next tunnel or renewal).
   */
  watchIntervalMs?: number;
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
 *
 * A revocation ends it at once, not at the next renewal: when a node refuses
 * a tunnel as revoked, or closes one (it closes a revoked grant's tunnels
 * within a second) and its grant status check then says revoked, the keeper
 * renews now, and the control plane's refusal ends the session. With
 * `watchIntervalMs`, a node is also asked periodically, so a session with no
 * tunnel open ends within that interval of a revocation.
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
  const timers = options.timers ?? realTimers;
  let watchTimer: unknown = null;
  const stop = async (end: SessionEnd<TGrant>): Promise<void> => {
    if (done) return;
    done = true;
    keeper.stop();
    if (watchTimer !== null) timers.clear(watchTimer);
    await listener?.close();
    finish(end);
  };
  const check = options.checkGrant ?? defaultCheckGrant;
  const now = options.now ?? Date.now;
  let checking = false;
  let lastCheck = Number.NEGATIVE_INFINITY;
  /** Ask a node (at most one check at a time, one per interval) whether the grant still stands; a revocation renews now. */
  const checkStatus = (url: string): void => {
    if (done || checking || now() - lastCheck < (options.checkIntervalMs ?? 1000)) return;
    checking = true;
    lastCheck = now();
    check({ url, grant: keeper.current.token, ...(options.ca ? { ca: options.ca } : {}), timeoutMs: 5000 }).then(
      () => undefined,
      (err: unknown) => {
        if (isRevocation(err)) keeper.checkNow();
      },
    ).finally(() => {
      checking = false;
    });
  };
  const onEvent = (event: ListenerEvent): void => {
    options.onListenerEvent?.(event);
    if (event.type === 'refused' && isRevocation(event.error)) keeper.checkNow();
    else if (event.type === 'closed' && event.endedBy === 'node') checkStatus(event.url);
  };
  /** The periodic check: the grant's first node (another node's answer would be the same: revocations are shared). */
  const watch = (): void => {
    const every = options.watchIntervalMs ?? 0;
    if (done || every <= 0) return;
    watchTimer = timers.set(() => {
      const url = keeper.current.tunnelUrls[0];
      if (url !== undefined) checkStatus(url);
      watch();
    }, every);
  };
  listener = await LocalListener.start({
    grant: () => keeper.current,
    ...(options.address !== undefined ? { address: options.address } : {}),
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.ca ? { ca: options.ca } : {}),
    onEvent,
    ...(options.openTunnel ? { openTunnel: options.openTunnel } : {}),
  });
  if (options.signal.aborted) void stop({ kind: 'stopped' });
  else options.signal.addEventListener('abort', () => void stop({ kind: 'stopped' }), { once: true });
  keeper.start();
  watch();
  return { listener, current: () => keeper.current, ended };
};
