import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, isAppError } from '@pa/kit';
import { frontend, type FrontendDecoder, type Parse, type Query, type TransactionStatus, type TypedFrontendMessage } from '@pa/pgwire';
import type { SqlDecision } from '@pa/policy';
import type { RateLimitDecision } from '@pa/state';
import type { AuditResultOutcome } from '../../audit';
import type { Session, SessionContext, SessionResult } from '../handler';
import { BackendStream, type ActionEnd, type TrackedAction } from './backend-stream';
import { PreparedStatements } from './prepared-statements';
import { hashParameters, rowsOfTag, summarizeStatement, type StatementSummary } from './statement-audit';
import { abortReason, abortWords, errorFrame, parametersTooLargeError, parseMessage, poisonToken, policyDeniedError, rateLimitedError, statementTooLargeError, terminatedError } from './wire';

/**
 * One PostgreSQL session through the proxy, after startup: the message loop
 * of README.md. Client → backend: strict framing, each statement judged
 * (Query and Parse by their text, FunctionCall by policy) and audited before
 * it is forwarded; refusals replaced in place by a poison statement so the
 * backend applies PostgreSQL's own error semantics. Backend → client: a byte
 * pipe watched by {@link BackendStream}. Backpressure both ways, idle timeout,
 * statement rate limit, revocation through `ctx.signal`.
 *
 * @see https://www.postgresql.org/docs/current/protocol-flow.html
 */

/** Tunables of a session (defaults in {@link DEFAULT_SESSION_TUNING}). */
export interface SessionTuning {
  /** Prepared statements remembered for the audit trail. */
  readonly maxPreparedStatements: number;
  /** Named portals remembered to attribute Execute results. */
  readonly maxPortals: number;
  /** Client bytes queued while a batch waits (for its audit decisions) before the client is paused. */
  readonly maxQueuedClientBytes: number;
  /** After a FATAL, how long the client gets to read it before the sockets are destroyed. */
  readonly closeGraceMs: number;
  /** Texts above this size (UTF-8 bytes) are judged on the engine's worker pool. */
  readonly inlineJudgeBytes: number;
  /** Characters of SQL text whose decisions a session remembers, in front of the engine's own cache. */
  readonly sessionDecisionCache: number;
  /**
   * When a statement may run relative to its decision record:
   * - `durable` (default, SECURITY.md): only once the record is on disk (fsynced);
   * - `ordered`: once the record has its place in the spool (admission checked
   *   synchronously); a record that then fails to be written ends the session
   *   with FATAL 58000. A crash of the node can lose the records of the last
   *   statements (up to one group commit). Opt-in, for throughput.
   */
  readonly auditDurability: 'durable' | 'ordered';
  /**
   * An execution's outcome record waits up to this long to be appended with
   * the next statement's decision (one group commit for both instead of two);
   * it is never held past the session's end.
   */
  readonly outcomeDelayMs: number;
}

/** The defaults of {@link SessionTuning} (README.md, "Contract"). */
export const DEFAULT_SESSION_TUNING: SessionTuning = Object.freeze({
  maxPreparedStatements: 1_000,
  maxPortals: 1_000,
  maxQueuedClientBytes: 1024 * 1024,
  closeGraceMs: 500,
  inlineJudgeBytes: 8 * 1024,
  sessionDecisionCache: 64 * 1024,
  auditDurability: 'durable',
  outcomeDelayMs: 5,
});

/** What the handler's setup hands to the session. */
export interface PostgresSessionInit {
  readonly client: Duplex;
  readonly backend: Socket;
  /** Backend bytes that arrived with its first ReadyForQuery. */
  readonly leftover: Buffer;
  readonly decoder: FrontendDecoder;
  readonly pending: readonly TypedFrontendMessage[];
  readonly initialStatus: TransactionStatus;
  readonly ctx: SessionContext;
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  /** A backend error seen between setup and run. */
  readonly backendError: () => Error | null;
  readonly tuning: SessionTuning;
  /** Called once when the session ends (revokes the cancel key). */
  readonly onEnd: () => void;
}

type StatementMessage = 'Query' | 'Bind' | 'FunctionCall' | 'Parse';

/** An audited execution: its decision record's details, then its outcome. */
interface SessionAction extends TrackedAction {
  readonly message: StatementMessage;
  readonly details: Record<string, unknown>;
  /** A Bind's portal has had an Execute forwarded (its outcome then comes from the backend). */
  executed: boolean;
}

/** What to do with one client message. */
interface Step {
  readonly msg: TypedFrontendMessage;
  kind: 'forward' | 'action' | 'refuse' | 'terminate';
  /** Audited execution (Query, Bind, FunctionCall). */
  action: SessionAction | null;
  /** The refusal to send in place of the message. */
  refusal: AppError | null;
  /** Details of a refused statement's decision record. */
  deniedDetails: Record<string, unknown> | null;
  /** Whether a decision record 'allowed' was written for it. */
  recorded: boolean;
}

const isExtended = (m: TypedFrontendMessage): boolean =>
  m.type === 'OversizedStatement' ? m.messageType !== 'Query' : m.type !== 'Query' && m.type !== 'FunctionCall';

/** The refusal for a decision record the audit trail would not take. */
const auditError = (err: unknown): AppError =>
  isAppError(err) && (err.code === 'AUDIT_SPOOL_FULL' || err.code === 'AUDIT_UNAVAILABLE') ? err : new AppError('AUDIT_UNAVAILABLE', { cause: err });

const hrNow = (): bigint => process.hrtime.bigint();

const summaryDetails = (s: StatementSummary): Record<string, unknown> => ({
  sql: s.sql,
  sqlSha256: s.sqlSha256,
  sqlBytes: s.sqlBytes,
  ...(s.sqlTruncated ? { sqlTruncated: true } : {}),
  statements: s.statements,
  kinds: s.kinds,
  relations: s.relations,
  functions: s.functions,
  fingerprints: s.fingerprints,
  rule: s.rule,
  reason: s.reason,
  ...(s.failure ? { failure: s.failure } : {}),
});

/** See the file comment. */
export class PostgresSession implements Session {
  private readonly client: Duplex;
  private readonly backend: Socket;
  private readonly ctx: SessionContext;
  private readonly decoder: FrontendDecoder;
  private readonly stream: BackendStream;
  private readonly prepared: PreparedStatements;
  private readonly portals = new Map<string, SessionAction>();
  private readonly tuning: SessionTuning;
  private readonly init: PostgresSessionInit;
  private readonly nonce = randomBytes(6).toString('hex');

  private bytesFromClient: number;
  private bytesToClient: number;
  private requests = 0;
  private poisons = 0;
  private seq = 0;
  private lastActivity = Date.now();

  /** A batch is being judged/audited; later client chunks wait in `inbox`. */
  private busy = false;
  private readonly inbox: Buffer[] = [];
  private inboxBytes = 0;
  /** The backend's write buffer is full: stop taking client messages. */
  private backendBlocked = false;
  /** Skip-to-Sync after a refusal inside an extended-protocol unit (PostgreSQL's own rule). */
  private planSkipping = false;
  private emitSkipping = false;

  private finished = false;
  private reason = 'client_closed';
  private resolveRun: ((r: SessionResult) => void) | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private clientClosed = false;
  private backendClosed = false;
  private sawBackendFatal = false;

  constructor(init: PostgresSessionInit) {
    this.init = init;
    this.client = init.client;
    this.backend = init.backend;
    this.ctx = init.ctx;
    this.decoder = init.decoder;
    this.tuning = init.tuning;
    this.bytesFromClient = init.bytesFromClient;
    this.bytesToClient = init.bytesToClient;
    this.prepared = new PreparedStatements(init.tuning.maxPreparedStatements);
    this.stream = new BackendStream(
      {
        onActionEnd: (a, how) => this.recordOutcome(a as SessionAction, how),
        onBackendError: (severity) => {
          if (severity === 'FATAL' || severity === 'PANIC') this.sawBackendFatal = true;
        },
      },
      init.initialStatus,
    );
  }

  run(): Promise<SessionResult> {
    return new Promise<SessionResult>((resolve) => {
      this.resolveRun = resolve;
      const { client, backend, ctx } = this;
      client.on('data', this.onClientData);
      client.on('end', () => this.finish('client_closed'));
      client.on('error', () => this.finish('client_closed'));
      client.on('close', () => {
        this.clientClosed = true;
        this.finish('client_closed');
        this.settle();
      });
      client.on('drain', () => {
        if (!this.finished) backend.resume();
      });
      backend.on('data', this.onBackendData);
      backend.on('error', (err) => this.onBackendGone(err));
      backend.on('end', () => this.onBackendGone(null));
      backend.on('close', () => {
        this.backendClosed = true;
        this.onBackendGone(null);
        this.settle();
      });
      backend.on('drain', this.onBackendDrain);
      const idleMs = Math.min(ctx.settings.idleTimeoutMs, ctx.grant.limits.idleTimeoutSeconds * 1000);
      this.idleTimer = setInterval(() => {
        if (!this.busy && !this.stream.isBusy && Date.now() - this.lastActivity >= idleMs) {
          this.finish('idle_timeout', new AppError('PG_IDLE_TIMEOUT'));
        }
      }, Math.max(50, Math.min(idleMs / 4, 5000)));
      this.idleTimer.unref();
      if (ctx.signal.aborted) {
        this.onAbort();
        return;
      }
      ctx.signal.addEventListener('abort', this.onAbort, { once: true });
      const early = this.init.backendError();
      if (early) {
        this.onBackendGone(early);
        return;
      }
      if (this.init.leftover.length > 0) this.onBackendData(this.init.leftover);
      if (this.init.pending.length > 0) this.run1(this.processBatch([...this.init.pending], null));
      client.resume();
      backend.resume();
    });
  }

  // ── client → backend ────────────────────────────────────────────────

  private readonly onClientData = (chunk: Buffer): void => {
    this.bytesFromClient += chunk.length;
    this.lastActivity = Date.now();
    if (this.finished) return;
    if (this.busy || this.backendBlocked || this.inbox.length > 0) {
      this.inbox.push(chunk);
      this.inboxBytes += chunk.length;
      if (this.inboxBytes > this.tuning.maxQueuedClientBytes) this.client.pause();
      return;
    }
    this.consume(chunk);
  };

  /** Decodes one client read (messages are views into it) and processes them as one batch. */
  private consume(chunk: Buffer): void {
    const msgs: TypedFrontendMessage[] = [];
    const err = this.decoder.write(chunk, (m) => {
      msgs.push(m as TypedFrontendMessage);
    });
    this.run1(this.processBatch(msgs, err, chunk));
  }

  /** Marks the session busy while a batch waits (for large-text judging or audit decisions). */
  private run1(pending: Promise<void> | undefined): void {
    if (!pending) return;
    this.busy = true;
    pending.then(this.afterBatch, this.onInternalError);
  }

  private readonly afterBatch = (): void => {
    this.busy = false;
    this.drainInbox();
  };

  private drainInbox(): void {
    while (!this.finished && !this.busy && !this.backendBlocked && this.inbox.length > 0) {
      const chunk = this.inbox.shift() as Buffer;
      this.inboxBytes -= chunk.length;
      this.consume(chunk);
    }
    if (!this.finished && !this.backendBlocked && this.inboxBytes <= this.tuning.maxQueuedClientBytes && this.client.isPaused()) this.client.resume();
  }

  private readonly onBackendDrain = (): void => {
    if (!this.backendBlocked) return;
    this.backendBlocked = false;
    this.drainInbox();
  };

  private readonly onInternalError = (err: unknown): void => {
    this.ctx.logger.error('PostgreSQL session failed.', { err });
    this.finish('internal_error', new AppError('INTERNAL'));
  };

  /**
   * Judges, audits and forwards the messages of one client read. Synchronous
   * (no promise) when nothing needs to wait — COPY data, Describe, Sync…;
   * otherwise a promise the session waits for before the next read.
   */
  private processBatch(msgs: TypedFrontendMessage[], decodeError: AppError | null, chunk?: Buffer): Promise<void> | undefined {
    const planned = this.plan(msgs, 0, []);
    if (planned instanceof Promise) return planned.then((steps) => this.admitAndEmit(steps, decodeError, chunk));
    return this.admitAndEmit(planned, decodeError, chunk);
  }

  private admitAndEmit(steps: Step[], decodeError: AppError | null, chunk: Buffer | undefined): Promise<void> | undefined {
    if (this.finished) return undefined;
    let audited = false;
    for (const s of steps) if (s.kind === 'action' || s.kind === 'refuse') audited = true;
    if (!audited) {
      this.emitBatch(steps, decodeError, chunk);
      return undefined;
    }
    return this.admit(steps).then(() => this.emitBatch(steps, decodeError, chunk));
  }

  private emitBatch(steps: Step[], decodeError: AppError | null, chunk: Buffer | undefined): void {
    if (this.finished) {
      // The session ended while the batch waited for its audit decisions: nothing of it ran.
      for (const s of steps) if (s.kind === 'action' && s.action && s.recorded) this.recordOutcome(s.action, 'aborted');
      return;
    }
    this.emit(steps, chunk && !decodeError ? chunk : null);
    if (decodeError) this.finish('protocol_error', decodeError);
  }

  /**
   * The engine's decision on a text. The policy is fixed for the session, so
   * a decision is a pure function of the text: a small per-session map in
   * front of the engine's LRU saves its bookkeeping on the hot path
   * (pgbench's extended mode parses the same text for every statement).
   */
  private judge(sql: string, bytes: number): SqlDecision | Promise<SqlDecision> {
    const { engine, policy } = this.ctx;
    if (bytes > this.tuning.inlineJudgeBytes) return engine.evaluateSqlAsync(policy, sql);
    const memo = this.memo;
    const hit = memo.get(sql);
    if (hit) return hit;
    const d = engine.evaluateSql(policy, sql);
    if ((!d.failure || d.failure === 'parse_error') && sql.length <= this.tuning.sessionDecisionCache / 4) {
      if (this.memoChars + sql.length > this.tuning.sessionDecisionCache) {
        memo.clear();
        this.memoChars = 0;
      }
      memo.set(sql, d);
      this.memoChars += sql.length;
    }
    return d;
  }

  private readonly memo = new Map<string, SqlDecision>();
  private memoChars = 0;

  private newAction(message: StatementMessage, details: Record<string, unknown>): SessionAction {
    this.seq += 1;
    return { seq: this.seq, message, details: { seq: this.seq, message, ...details }, startedAt: 0n, tags: [], sqlstate: null, bytes: 0, done: false, executed: false };
  }

  private step(msg: TypedFrontendMessage, kind: Step['kind'], action: SessionAction | null = null): Step {
    return { msg, kind, action, refusal: null, deniedDetails: null, recorded: false };
  }

  private refuse(msg: TypedFrontendMessage, refusal: AppError, details: Record<string, unknown>): Step {
    this.seq += 1;
    const s = this.step(msg, 'refuse');
    s.refusal = refusal;
    s.deniedDetails = { seq: this.seq, message: msg.type, ...details };
    return s;
  }

  /**
   * Decides what to do with each message: the policy part. Synchronous unless
   * a large text goes to the engine's worker pool; then it continues after it.
   */
  private plan(msgs: TypedFrontendMessage[], from: number, steps: Step[]): Step[] | Promise<Step[]> {
    for (let i = from; i < msgs.length; i += 1) {
      const m = msgs[i] as TypedFrontendMessage;
      if (this.planSkipping) {
        if (m.type === 'Sync') this.planSkipping = false;
        else if (m.type !== 'Terminate') continue;
      }
      if (m.type === 'Query' || m.type === 'Parse') {
        const j = this.judge(m.sql, m.type === 'Query' ? m.raw.length - 6 : m.raw.length);
        if (j instanceof Promise) {
          return j.then((decision) => {
            this.planText(m, decision, steps);
            return this.plan(msgs, i + 1, steps);
          });
        }
        this.planText(m, j, steps);
        continue;
      }
      if (m.type === 'OversizedStatement') {
        // Its bytes were never read: refused like a denial (54000), and the session goes on.
        this.requests += 1;
        const bytes = m.length - 4;
        const refusal = m.messageType === 'Bind' ? parametersTooLargeError(bytes, this.decoder.maxBindLength - 4) : statementTooLargeError(bytes, this.decoder.maxQueryLength - 4);
        const reason = m.messageType === 'Bind' ? 'parameters too large' : 'statement too large';
        steps.push(this.refuse(m, refusal, { message: m.messageType, reason, bytes }));
        if (m.messageType !== 'Query') this.planSkipping = true;
        continue;
      }
      if (this.planOther(m, steps)) return steps;
    }
    return steps;
  }

  /** A Query or Parse, judged by its text. */
  private planText(m: Query | Parse, decision: SqlDecision, steps: Step[]): void {
    const summary = summarizeStatement(m.sql, decision);
    if (m.type === 'Query') {
      this.requests += 1;
      if (!decision.allowed) {
        steps.push(this.refuse(m, policyDeniedError(decision.reason), summaryDetails(summary)));
        return;
      }
      if (summary.kinds.some((k) => k === 'prepare' || k === 'deallocate' || k === 'discard')) this.prepared.forgetNamed();
      steps.push(this.step(m, 'action', this.newAction('Query', summaryDetails(summary))));
      return;
    }
    if (!decision.allowed) {
      this.requests += 1;
      steps.push(this.refuse(m, policyDeniedError(decision.reason), { statement: m.name, ...summaryDetails(summary) }));
      this.planSkipping = true;
      return;
    }
    this.prepared.set(m.name, summary);
    steps.push(this.step(m, 'forward'));
  }

  /** Every other message; true when nothing after it in the read is to be looked at. */
  private planOther(m: TypedFrontendMessage, steps: Step[]): boolean {
    switch (m.type) {
      case 'Bind': {
        const summary = this.prepared.get(m.statement);
        this.requests += 1;
        const action = this.newAction('Bind', {
          statement: m.statement,
          portal: m.portal,
          ...(summary ? summaryDetails(summary) : { sql: null, reason: 'statement prepared outside the protocol (SQL PREPARE) or no longer tracked; judged when it was prepared' }),
          parameters: { count: m.params.length, sha256: m.params.length > 0 ? hashParameters(m.params) : null },
        });
        steps.push(this.step(m, 'action', action));
        return false;
      }
      case 'FunctionCall': {
        const decision = this.ctx.engine.evaluateFunctionCall(this.ctx.policy);
        const summary = summarizeStatement('', decision);
        this.requests += 1;
        const details = { functionOid: m.functionOid, ...summaryDetails(summary), parameters: { count: m.args.length, sha256: hashParameters(m.args) } };
        if (!decision.allowed) steps.push(this.refuse(m, policyDeniedError(decision.reason), details));
        else steps.push(this.step(m, 'action', this.newAction('FunctionCall', details)));
        return false;
      }
      case 'Close':
        if (m.target === 'S') this.prepared.delete(m.name);
        steps.push(this.step(m, 'forward'));
        return false;
      case 'Terminate':
        steps.push(this.step(m, 'terminate'));
        return true;
      case 'AuthenticationResponse':
        // Never asked for: the client authenticated with its grant.
        steps.push(this.step(m, 'terminate'));
        this.violation = new AppError('PG_PROTOCOL_VIOLATION', { message: 'Unexpected authentication message.' });
        return true;
      default:
        // Execute, Describe, Sync, Flush, CopyData, CopyDone, CopyFail.
        steps.push(this.step(m, 'forward'));
        return false;
    }
  }

  /** A violation found while planning: the session ends once what came before it is forwarded. */
  private violation: AppError | null = null;

  /** Statement rate limit and audit decisions of a batch: one group commit for the whole read. */
  private async admit(steps: Step[]): Promise<void> {
    const { ctx } = this;
    let actions = 0;
    for (const s of steps) if (s.kind === 'action') actions += 1;
    if (actions === 1) {
      const s = steps.find((x) => x.kind === 'action') as Step;
      this.applyRateLimit(s, await ctx.consumeRequest());
    } else if (actions > 1) {
      const limited = steps.filter((x) => x.kind === 'action');
      const decisions = await Promise.all(limited.map(() => ctx.consumeRequest()));
      decisions.forEach((d, i) => this.applyRateLimit(limited[i] as Step, d));
    }
    // Earlier outcomes first: they share this batch's group commit and keep the session's order.
    this.flushOutcomes();
    const status = this.stream.transactionStatus;
    const ordered = this.tuning.auditDurability === 'ordered';
    let waits: Promise<void>[] | null = null;
    for (const s of steps) {
      if (s.kind === 'refuse' && s.deniedDetails) {
        // A denial is recorded too; it does not gate anything (the statement never runs).
        s.deniedDetails.transactionStatus = status;
        void ctx.audit.decision('sql.statement', 'denied', s.deniedDetails).catch((err: unknown) => {
          ctx.logger.warn('Audit of a denied statement failed.', { code: isAppError(err) ? err.code : 'INTERNAL' });
        });
        continue;
      }
      if (s.kind !== 'action' || !s.action) continue;
      s.action.details.transactionStatus = status;
      if (ordered) {
        if (!ctx.audit.canAccept()) {
          this.refuseUnaudited(s, new AppError('AUDIT_SPOOL_FULL'));
          continue;
        }
        s.recorded = true;
        ctx.audit.decision('sql.statement', 'allowed', s.action.details).catch((err: unknown) => {
          // The statement already ran: it cannot be refused any more, the session can.
          this.finish('audit_error', auditError(err));
        });
        continue;
      }
      const step = s;
      (waits ??= []).push(
        ctx.audit.decision('sql.statement', 'allowed', s.action.details).then(
          () => {
            step.recorded = true;
          },
          // Refuse rather than run unaudited (AUDIT_SPOOL_FULL / AUDIT_UNAVAILABLE → 58000).
          (err: unknown) => this.refuseUnaudited(step, auditError(err)),
        ),
      );
    }
    if (waits) await (waits.length === 1 ? waits[0] : Promise.all(waits));
  }

  private applyRateLimit(s: Step, d: RateLimitDecision): void {
    if (d.allowed) return;
    const a = s.action as SessionAction;
    s.kind = 'refuse';
    s.refusal = rateLimitedError(d.retryAfterMs);
    s.deniedDetails = { ...a.details, reason: 'statement rate limit exceeded', rateLimited: { scope: d.scope } };
    s.action = null;
  }

  private refuseUnaudited(s: Step, err: AppError): void {
    s.kind = 'refuse';
    s.refusal = err;
    s.deniedDetails = null;
    s.action = null;
  }

  /** Writes a batch to the backend in order, with poison statements in place of refusals. */
  private emit(steps: Step[], chunk: Buffer | null): void {
    const { backend, stream } = this;
    let whole = chunk !== null && !this.emitSkipping && steps.length > 0 && coversChunk(steps, chunk);
    for (const s of steps) if (s.kind === 'refuse' || s.kind === 'terminate') whole = false;
    if (!whole) backend.cork();
    for (const s of steps) {
      const m = s.msg;
      if (this.emitSkipping) {
        if (m.type === 'Sync') this.emitSkipping = false;
        else if (m.type !== 'Terminate') {
          if (s.action && s.recorded) this.recordOutcome(s.action, 'skipped');
          continue;
        }
      }
      switch (s.kind) {
        case 'terminate':
          if (!whole) backend.uncork();
          if (this.violation) this.finish('protocol_error', this.violation);
          else this.finish('client_closed', null, true);
          return;
        case 'refuse': {
          this.poisons += 1;
          const token = poisonToken(this.nonce, this.poisons);
          const simple = !isExtended(m);
          const replacement = errorFrame(s.refusal as AppError);
          stream.forwardedPoison(token, replacement, simple);
          backend.write(simple ? frontend.query(token) : parseMessage(token, token));
          if (!simple) this.emitSkipping = true;
          continue;
        }
        case 'action': {
          const a = s.action as SessionAction;
          (a as { startedAt: bigint }).startedAt = hrNow();
          if (m.type === 'Bind') {
            this.dropPortal(m.portal);
            this.portals.set(m.portal, a);
            if (this.portals.size > this.tuning.maxPortals) {
              const oldest = this.portals.keys().next();
              if (!oldest.done) this.dropPortal(oldest.value);
            }
          } else stream.forwardedQuery(a);
          break;
        }
        case 'forward':
          if (m.type === 'Execute') {
            const a = this.portals.get(m.portal) ?? null;
            if (a) a.executed = true;
            stream.forwardedExecute(a);
          } else if (m.type === 'Close' && m.target === 'P') this.dropPortal(m.name);
          else if (m.type === 'Sync') stream.forwardedSync();
          break;
      }
      if (!whole) backend.write(m.raw);
    }
    if (whole) backend.write(chunk as Buffer);
    else backend.uncork();
    this.planSkipping = this.emitSkipping;
    if (backend.writableNeedDrain) {
      this.backendBlocked = true;
      this.client.pause();
    }
  }

  // ── backend → client ────────────────────────────────────────────────

  private readonly out: Buffer[] = [];

  private readonly onBackendData = (chunk: Buffer): void => {
    this.lastActivity = Date.now();
    if (this.finished) return;
    const out = this.out;
    out.length = 0;
    const err = this.stream.push(chunk, out);
    this.toClient(out);
    if (err) {
      this.finish(err.code === 'PG_UNSAFE_PARAMETER_CHANGE' ? 'unsafe_parameter' : 'upstream_error', err);
      return;
    }
    if (this.client.writableNeedDrain) this.backend.pause();
  };

  private toClient(out: Buffer[]): void {
    const n = out.length;
    if (n === 0) return;
    const client = this.client;
    if (n === 1) {
      const b = out[0] as Buffer;
      this.bytesToClient += b.length;
      client.write(b);
      return;
    }
    client.cork();
    for (const b of out) {
      this.bytesToClient += b.length;
      client.write(b);
    }
    client.uncork();
  }

  /**
   * Forgets a portal (replaced by a Bind of the same name, closed, evicted, or
   * the session ended). A bound portal that was never executed still gets its
   * outcome record — `not_executed` — so every decision has one.
   */
  private dropPortal(name: string): void {
    const a = this.portals.get(name);
    if (a === undefined) return;
    this.portals.delete(name);
    if (!a.done && !a.executed) this.recordOutcome(a, 'not_executed');
  }

  private recordOutcome(a: SessionAction, how: ActionEnd | 'aborted' | 'not_executed'): void {
    a.done = true;
    let rows: number | null = null;
    for (const t of a.tags) {
      const r = rowsOfTag(t);
      if (r !== null) rows = (rows ?? 0) + r;
    }
    const outcome = how === 'completed' || how === 'suspended' ? 'success' : how === 'aborted' ? 'error' : 'failure';
    const durationMs = a.startedAt === 0n ? 0 : Number(hrNow() - a.startedAt) / 1e6;
    this.outcomes.push([
      outcome,
      {
        seq: a.seq,
        message: a.message,
        end: how,
        tags: a.tags,
        rows,
        ...(a.sqlstate ? { sqlstate: a.sqlstate } : {}),
        durationMs: Math.round(durationMs * 1000) / 1000,
        bytes: a.bytes,
      },
    ]);
    if (this.finished) this.flushOutcomes();
    else this.outcomeTimer ??= setTimeout(this.flushOutcomes, this.tuning.outcomeDelayMs);
  }

  /** Outcomes waiting to be appended (see {@link SessionTuning.outcomeDelayMs}). */
  private readonly outcomes: Array<[AuditResultOutcome, Record<string, unknown>]> = [];
  private outcomeTimer: NodeJS.Timeout | null = null;

  /** Appends the waiting outcomes, in order (before any later decision of the session). */
  private readonly flushOutcomes = (): void => {
    if (this.outcomeTimer) {
      clearTimeout(this.outcomeTimer);
      this.outcomeTimer = null;
    }
    if (this.outcomes.length === 0) return;
    const batch = this.outcomes.splice(0);
    for (const [outcome, details] of batch) void this.ctx.audit.outcome('sql.result', outcome, details);
  };

  private onBackendGone(err: Error | null): void {
    if (this.finished) return;
    // A FATAL the backend sent itself (administrator shutdown, its own timeouts) already reached the client.
    if (this.sawBackendFatal && !err) {
      this.finish('upstream_closed');
      return;
    }
    this.finish('upstream_error', new AppError('PG_BACKEND_CONNECTION_LOST', { ...(err ? { cause: err } : {}) }));
  }

  private readonly onAbort = (): void => {
    const r: unknown = this.ctx.signal.reason;
    this.finish(abortReason(r), terminatedError(abortWords(r)));
  };

  /**
   * Ends the session once: a FATAL to the client when there is one to say,
   * Terminate to the backend, outcomes for executions cut short; sockets are
   * destroyed after a short grace so a client that does not read cannot hold
   * the session open.
   */
  private finish(reason: string, fatal: AppError | null = null, graceful = false): void {
    if (this.finished) return;
    this.finished = true;
    this.reason = reason;
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    this.inbox.length = 0;
    for (const a of this.stream.pendingActions()) this.recordOutcome(a as SessionAction, 'aborted');
    for (const name of [...this.portals.keys()]) this.dropPortal(name);
    this.flushOutcomes();
    if (fatal && fatal.code === 'INTERNAL') this.ctx.logger.error('PostgreSQL session ended by an internal error.', { err: fatal.cause });
    else if (fatal) this.ctx.logger.info('PostgreSQL session ended.', { reason, code: fatal.code });
    const { client, backend } = this;
    if (!backend.destroyed) {
      if (backend.writable) backend.end(frontend.terminate());
      else backend.destroy();
    }
    if (!client.destroyed) {
      if (fatal && client.writable) {
        const bytes = errorFrame(fatal, 'FATAL');
        this.bytesToClient += bytes.length;
        client.end(bytes);
      } else client.end();
    }
    this.init.onEnd();
    this.graceTimer = setTimeout(
      () => {
        client.destroy();
        backend.destroy();
      },
      graceful ? this.tuning.closeGraceMs * 4 : this.tuning.closeGraceMs,
    );
    this.graceTimer.unref();
    backend.resume();
    this.settle();
  }

  private settle(): void {
    if (!this.finished || !this.resolveRun) return;
    if (!(this.clientClosed || this.client.destroyed) || !(this.backendClosed || this.backend.destroyed)) return;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    const resolve = this.resolveRun;
    this.resolveRun = null;
    resolve({ bytesFromClient: this.bytesFromClient, bytesToClient: this.bytesToClient, reason: this.reason, requests: this.requests });
  }
}

/** Whether the raw frames of `steps` are exactly the bytes of `chunk`, in order (so the read can be forwarded as one write). */
const coversChunk = (steps: readonly Step[], chunk: Buffer): boolean => {
  let at = chunk.byteOffset;
  for (const s of steps) {
    const raw = s.msg.raw;
    if (raw.buffer !== chunk.buffer || raw.byteOffset !== at) return false;
    at += raw.length;
  }
  return at === chunk.byteOffset + chunk.length;
};
