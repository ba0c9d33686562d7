import type { CompiledPolicy, HttpDecision, HttpRequestInput, PolicyEngine } from '@pa/policy';

/** Targets longer than this are judged every time (they are rarely repeated, and keys stay small). */
const MAX_MEMO_TARGET = 512;

/**
 * Remembers the engine's allowed decisions for repeated requests, as the
 * engine's own cache does for SQL. A decision is a pure function of the
 * policy (its content hash) and the request, so a remembered one is the one
 * the engine would give again; the engine stays the only place that decides.
 *
 * Only allowed decisions on requests without judged headers are kept: denials
 * are off the hot path, and keeping them could pin a transient refusal (engine
 * not ready). Bounded by entry count and key size; cleared when full.
 */
export class DecisionMemo {
  private readonly decisions = new Map<string, HttpDecision>();

  constructor(private readonly maxEntries = 4096) {}

  judge(engine: PolicyEngine, policy: CompiledPolicy, request: HttpRequestInput): HttpDecision {
    if (request.headers !== undefined || request.target.length > MAX_MEMO_TARGET) return engine.evaluateHttp(policy, request);
    const key = `${policy.hash} ${request.method} ${request.target}`;
    const hit = this.decisions.get(key);
    if (hit !== undefined) return hit;
    const d = engine.evaluateHttp(policy, request);
    if (d.allowed && d.policyHash === policy.hash) {
      if (this.decisions.size >= this.maxEntries) this.decisions.clear();
      this.decisions.set(key, d);
    }
    return d;
  }

  get size(): number {
    return this.decisions.size;
  }
}
