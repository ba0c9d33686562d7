import { AppError } from '@pa/kit';
import type { Revocation } from '@pa/state';

interface Live {
  grantId: string;
  userId: string;
  sessionId: string;
  protocol: string;
  abort: AbortController;
}

/**
 * The tunnels this node holds open, indexed so a revocation (of a grant, a
 * session or a user) closes every affected one at once.
 */
export class LiveSessions {
  private readonly byTunnel = new Map<string, Live>();

  add(tunnelId: string, live: Live): void {
    this.byTunnel.set(tunnelId, live);
  }

  remove(tunnelId: string): void {
    this.byTunnel.delete(tunnelId);
  }

  get size(): number {
    return this.byTunnel.size;
  }

  countByProtocol(): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.byTunnel.values()) out.set(l.protocol, (out.get(l.protocol) ?? 0) + 1);
    return out;
  }

  /** Aborts every tunnel the revocation covers; returns how many. */
  revoke(r: Revocation): number {
    let n = 0;
    for (const l of this.byTunnel.values()) {
      const hit = (r.kind === 'grant' && l.grantId === r.id) || (r.kind === 'session' && l.sessionId === r.id) || (r.kind === 'user' && l.userId === r.id);
      if (hit && !l.abort.signal.aborted) {
        l.abort.abort(new AppError('GRANT_REVOKED', { message: `Access was revoked: ${r.reason}.` }));
        n += 1;
      }
    }
    return n;
  }

  /** Aborts every tunnel (drain deadline reached). */
  abortAll(reason: AppError): void {
    for (const l of this.byTunnel.values()) if (!l.abort.signal.aborted) l.abort.abort(reason);
  }
}
