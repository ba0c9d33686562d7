import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError, isAppError } from '@pa/kit';
import type { HttpDecision, RuleRef } from '@pa/policy';
import type { Session, SessionContext, SessionResult } from '../handler';
import type { DecisionMemo } from './decision-memo';
import { Exchange, UpgradeExchange, type ExchangeResult, type ForwardSpec, type UpgradeOwner } from './exchange';
import { buildUpstreamHead, filterRequestTrailers, requestHeadWithoutUpgrade, type UpstreamHeaderPlan } from './headers';
import { closeAfterFlush, rawProblemResponse, sendProblem } from './problem';
import type { Upstream } from './upstream';

/** Where a session's socket is parsed: the handler's private HTTP server. */
export interface FrontDoor {
  /** Hands `socket` to the HTTP parser; requests on it are routed to `session`. */
  attach(socket: Duplex, session: HttpSession): void;
}

/** Per-session settings resolved by the handler. */
export interface HttpSessionOptions {
  /** Close the tunnel after this long with no request in flight. */
  readonly idleMs: number;
  /** Requests a client may pipeline ahead of the one in flight. */
  readonly maxPipelined: number;
  /** On drain, how long the request in flight may take before it is cut. */
  readonly drainGraceMs: number;
}

type Pending =
  | { readonly kind: 'request'; readonly req: IncomingMessage; readonly res: ServerResponse; readonly expectContinue: boolean }
  | { readonly kind: 'upgrade'; readonly req: IncomingMessage; readonly head: Buffer };

/** Audit form of the rule that decided (plain JSON: no undefined members). */
const ruleJson = (r: RuleRef | undefined): Record<string, string | null> | null =>
  r === undefined ? null : { policyId: r.policyId, policyName: r.policyName, ruleId: r.ruleId, ruleName: r.ruleName ?? null };

/** Longest raw (refused) target kept in an audit event: it is client input. */
const MAX_AUDITED_RAW_TARGET = 2048;

/**
 * Node's parser stops collecting header fields once its flat list holds 2000
 * entries (it collects in batches, so a longer head is cut somewhere past that):
 * a list this long may be missing fields that were sent.
 */
const NODE_MAX_RAW_HEADERS = 2000;

/** The abort reason as a short SessionResult reason (as the tcp handler reports it). */
const abortReason = (err: AppError): string => {
  if (err.code === 'GRANT_REVOKED') return 'revoked';
  if (err.code === 'GRANT_EXPIRED') return 'grant_expired';
  if (err.code === 'NOT_READY') return 'draining';
  return err.code.toLowerCase();
};

/**
 * One tunnel carrying HTTP/1.1. Requests are taken one at a time in arrival
 * order (pipelined ones wait their turn, so their side effects keep the
 * client's order and Node writes the answers in order): rate limit → shape
 * checks → policy on the normalised target → durable audit decision →
 * forward exactly the judged target → outcome audit, fired without waiting.
 * A refusal answers that one request and keeps the connection.
 */
export class HttpSession implements Session, UpgradeOwner {
  private readonly queue: Pending[] = [];
  private busy = false;
  private seq = 0;
  private current: { readonly exchange: Exchange | UpgradeExchange; readonly spec: ForwardSpec; readonly t0: number } | null = null;
  private closing: AppError | null = null;
  private hardClose = false;
  private reason: string | null = null;
  private clientClosed = false;
  private finished = false;
  private resolveRun: ((r: SessionResult) => void) | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly readBase: number;
  private readonly writeBase: number;
  private countedIn = 0;
  private countedOut = 0;
  // WebSocket relay, once the backend switched protocols.
  private upstreamSocket: Duplex | null = null;
  private upstreamClosed = false;
  private relayIn = 0;
  private relayOut = 0;
  private lastActivity = 0;
  private upgradeHead: Buffer = Buffer.alloc(0);
  /** The newest response handed to Node: the connection closes only after it is written. */
  private lastRes: ServerResponse | null = null;

  constructor(
    private readonly client: Duplex,
    private readonly ctx: SessionContext,
    private readonly front: FrontDoor,
    private readonly upstream: Upstream,
    private readonly plan: UpstreamHeaderPlan,
    private readonly options: HttpSessionOptions,
    private readonly memo: DecisionMemo,
  ) {
    const sock = client as Partial<Socket>;
    // Bytes already read but unshifted back (the first request, pipelined after the tunnel's 101) count as this session's.
    this.readBase = typeof sock.bytesRead === 'number' ? sock.bytesRead - client.readableLength : 0;
    this.writeBase = typeof sock.bytesWritten === 'number' ? sock.bytesWritten : 0;
  }

  run(): Promise<SessionResult> {
    return new Promise((resolve) => {
      this.resolveRun = resolve;
      const c = this.client;
      c.on('close', this.onClientClose);
      // Socket errors end in 'close'; without a listener, one after an upgrade (Node's parser gone) would be thrown.
      c.on('error', () => undefined);
      if (typeof (c as Partial<Socket>).bytesRead !== 'number') c.on('data', (d: Buffer) => (this.countedIn += d.length));
      this.idleTimer = setTimeout(this.onIdle, this.options.idleMs);
      this.idleTimer.unref();
      if (c.destroyed) {
        this.onClientClose();
        return;
      }
      if (this.ctx.signal.aborted) {
        this.onAbort();
        return;
      }
      this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
      this.front.attach(c, this);
    });
  }

  isClosing(): boolean {
    return this.closing !== null;
  }

  /** A request parsed by Node (`expectContinue`: it waits for `100 Continue` before sending its body). */
  enqueueRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    if (this.closing !== null) {
      this.answer(res, this.closing, true);
      return;
    }
    if (this.queue.length >= this.options.maxPipelined) {
      // Answered in order after those ahead of it; Node then closes the connection.
      this.answer(res, new AppError('HTTP_PROTOCOL_VIOLATION', { message: 'Too many pipelined requests; the connection is closed after the ones before it.' }), true);
      return;
    }
    this.queue.push({ kind: 'request', req, res, expectContinue });
    if (!this.busy) this.next();
  }

  /** An Upgrade (or CONNECT) request: Node has detached the socket from its parser. */
  enqueueUpgrade(req: IncomingMessage, head: Buffer): void {
    this.queue.push({ kind: 'upgrade', req, head });
    if (!this.busy) this.next();
  }

  /** A request Node could not parse, or a header/request timeout. */
  onClientError(err: Error & { code?: string }): void {
    const code = err.code ?? '';
    if (this.clientClosed || !this.client.writable || code === 'ECONNRESET' || code === 'EPIPE') {
      this.client.destroy();
      return;
    }
    const e =
      code === 'HPE_HEADER_OVERFLOW'
        ? new AppError('HTTP_HEADERS_TOO_LARGE')
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new AppError('HTTP_REQUEST_TIMEOUT')
          : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? new AppError('PAYLOAD_TOO_LARGE')
            : new AppError('HTTP_PROTOCOL_VIOLATION', { message: 'The request is not valid HTTP/1.1.' });
    this.reason ??= code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'protocol_error';
    this.ctx.logger.debug('HTTP request refused by the parser.', { code: e.code, parserCode: code });
    if (e.code !== 'HTTP_REQUEST_TIMEOUT') this.auditDenied({ request: this.seq + 1, method: null, target: null, rule: null, reason: `malformed request (${code || 'parse error'})` });
    // With a response in progress nothing can be said in-band: cut.
    if (this.busy) this.destroyAll();
    else closeAfterFlush(this.client, rawProblemResponse(e, true));
  }

  exchangeDone(r: ExchangeResult): void {
    const cur = this.current;
    if (cur === null) return;
    this.current = null;
    this.countedOut += r.bytesOut;
    const details = {
      request: cur.spec.seq,
      method: cur.spec.method,
      target: cur.spec.target,
      status: r.status,
      bytesIn: r.bytesIn,
      bytesOut: r.bytesOut,
      durationMs: Date.now() - cur.t0,
      ...(r.errorCode !== undefined ? { errorCode: r.errorCode } : {}),
    };
    this.ctx.audit.outcome('http.response', r.outcome, details).then(undefined, this.onOutcomeLost);
    if (r.outcome === 'error' && r.errorCode !== 'CLIENT_CLOSED') this.ctx.logger.debug('HTTP request failed.', { code: r.errorCode, request: cur.spec.seq });
    this.next();
  }

  startRelay(upstream: Duplex, responseHead: string): void {
    this.upstreamSocket = upstream;
    const c = this.client;
    this.lastActivity = Date.now();
    c.write(responseHead);
    if (this.upgradeHead.length > 0) {
      this.relayIn += this.upgradeHead.length;
      upstream.write(this.upgradeHead);
    }
    c.on('data', (d: Buffer) => {
      this.relayIn += d.length;
      this.lastActivity = Date.now();
    });
    upstream.on('data', (d: Buffer) => {
      this.relayOut += d.length;
      this.lastActivity = Date.now();
    });
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      this.upstreamClosed = true;
      this.reason ??= 'upstream_closed';
      closeAfterFlush(c);
      this.maybeFinish();
    });
    c.pipe(upstream);
    upstream.pipe(c);
    c.resume();
  }

  /** Takes the next request, or goes idle. */
  private next(): void {
    const p = this.queue.shift();
    if (p === undefined) {
      this.busy = false;
      if (this.clientClosed) this.maybeFinish();
      else if (this.closing !== null) this.closeWhenWritten();
      else this.idleTimer?.refresh();
      return;
    }
    if (this.clientClosed || this.closing !== null) {
      // Pipelined requests not started yet are dropped with the connection (Node aborts their responses).
      this.queue.length = 0;
      this.next();
      return;
    }
    this.busy = true;
    const work = p.kind === 'request' ? this.handleRequest(p.req, p.res, p.expectContinue) : this.handleUpgrade(p.req, p.head);
    work.catch(this.onInternalError);
  }

  /** A request after the session stopped: answered with the reason (if anyone is listening), then closed. */
  private stopped(res: ServerResponse | null): boolean {
    if (!this.clientClosed && !this.hardClose) return false;
    if (this.clientClosed) {
      this.next();
      return true;
    }
    const err = this.closing ?? new AppError('NOT_READY');
    if (res !== null) this.answer(res, err, true);
    else closeAfterFlush(this.client, rawProblemResponse(err, true));
    this.next();
    return true;
  }

  private async handleRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const seq = ++this.seq;
    const t0 = Date.now();
    const limit = await this.ctx.consumeRequest();
    if (this.stopped(res)) return;
    if (!limit.allowed) {
      this.answer(res, new AppError('RATE_LIMITED', { meta: { retryAfterSeconds: limit.retryAfterMs / 1000 } }), false);
      this.next();
      return;
    }
    const method = req.method ?? 'GET';
    const target = req.url ?? '';
    // Origin-form only: absolute-form would let the client name another host; "*" (OPTIONS) names none.
    if (target.charCodeAt(0) !== 0x2f) return this.refuse(res, seq, method, target, 'only origin-form request targets are accepted');
    const head = buildUpstreamHead(req.rawHeaders, req.headers.connection, this.plan, `${this.ctx.tunnelId}.${seq}`);
    if (!head.ok) return this.refuse(res, seq, method, target, head.reason);
    const d = this.memo.judge(this.ctx.engine, this.ctx.policy, { method, target, headers: head.judged });
    if (!d.allowed || d.target === null) return this.refuseDecision(res, seq, method, target, d);
    if (!(await this.recordAllowed(seq, d))) {
      if (this.stopped(res)) return;
      this.answer(res, this.auditRefusal, false);
      this.next();
      return;
    }
    if (this.stopped(res)) return;
    if (expectContinue) res.writeContinue();
    const spec: ForwardSpec = { seq, method, target: d.target, headers: head.headers, hasBody: head.hasBody, backend: this.upstream.name };
    // A chunked body may end in trailers: those requests go through the client that can send them.
    const chunked = head.hasBody && req.headers['transfer-encoding'] !== undefined;
    const exchange = new Exchange(this, spec, req, res, chunked ? (raw) => filterRequestTrailers(raw, req.headers.connection, this.plan) : null);
    this.current = { exchange, spec, t0 };
    this.lastRes = res;
    exchange.start(chunked ? this.upstream.chunked : this.upstream.pool);
  }

  private async handleUpgrade(req: IncomingMessage, head: Buffer): Promise<void> {
    if (req.method !== 'CONNECT' && (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return this.ignoreUpgrade(req, head);
    const seq = ++this.seq;
    const t0 = Date.now();
    const method = req.method ?? 'GET';
    const target = req.url ?? '';
    if (method === 'CONNECT') {
      this.auditDenied({ request: seq, method, target: null, rawTarget: target.slice(0, MAX_AUDITED_RAW_TARGET), rule: null, reason: 'CONNECT is refused' });
      closeAfterFlush(this.client, rawProblemResponse(new AppError('HTTP_PROTOCOL_VIOLATION', { message: 'CONNECT is not accepted through this proxy.' }), true));
      this.next();
      return;
    }
    const limit = await this.ctx.consumeRequest();
    if (this.stopped(null)) return;
    if (!limit.allowed) return this.refuseUpgrade(new AppError('RATE_LIMITED', { meta: { retryAfterSeconds: limit.retryAfterMs / 1000 } }), head);
    const denied = async (reason: string, d?: HttpDecision): Promise<void> => {
      await this.recordDenied(seq, method, target, reason, d);
      return this.refuseUpgrade(
        d !== undefined && d.target !== null ? new AppError('POLICY_DENIED', { message: reason }) : new AppError('HTTP_PROTOCOL_VIOLATION', { message: `The request is refused: ${reason}.` }),
        head,
      );
    };
    if (target.charCodeAt(0) !== 0x2f) return denied('only origin-form request targets are accepted');
    if (method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return denied('only WebSocket upgrades of a GET are relayed');
    const built = buildUpstreamHead(req.rawHeaders, req.headers.connection, this.plan, `${this.ctx.tunnelId}.${seq}`);
    if (!built.ok) return denied(built.reason);
    if (built.hasBody) return denied('an upgrade request must not carry a body');
    const d = this.ctx.engine.evaluateHttp(this.ctx.policy, { method, target, headers: built.judged });
    if (!d.allowed || d.target === null) return denied(d.reason, d);
    if (!(await this.recordAllowed(seq, d, 'websocket'))) {
      if (this.stopped(null)) return;
      return this.refuseUpgrade(this.auditRefusal, head);
    }
    if (this.stopped(null)) return;
    this.upgradeHead = head;
    const spec: ForwardSpec = { seq, method, target: d.target, headers: built.headers, hasBody: false, backend: this.upstream.name };
    const exchange = new UpgradeExchange(this, spec, this.client);
    this.current = { exchange, spec, t0 };
    exchange.start(this.upstream.pool);
  }

  /**
   * An upgrade to anything but WebSocket (`h2c`, the HTTP/2 cleartext upgrade,
   * or any other) is ignored, as RFC 9110 §7.8 lets a server do: Node's parser
   * handed the socket over as an upgrade, so the head is written back without
   * `Upgrade`, `HTTP2-Settings` and the `Connection` options naming them, in
   * front of the bytes that followed it (the body, pipelined requests), and the
   * socket goes back to the parser. The request is then served like any other
   * — rate limit, checks, policy, audit, forward — and answered in HTTP/1.1.
   */
  private async ignoreUpgrade(req: IncomingMessage, head: Buffer): Promise<void> {
    if (this.clientClosed || this.client.destroyed) {
      this.next();
      return;
    }
    if (req.rawHeaders.length >= NODE_MAX_RAW_HEADERS) {
      // Node dropped fields beyond its limit: the head cannot be rebuilt as sent (its framing might be among them).
      const seq = ++this.seq;
      const target = req.url ?? '';
      await this.recordDenied(seq, req.method ?? 'GET', target, 'too many header fields in an upgrade request');
      closeAfterFlush(this.client, rawProblemResponse(new AppError('HTTP_PROTOCOL_VIOLATION', { message: 'The request is refused: too many header fields.' }), true));
      this.next();
      return;
    }
    const rebuilt = requestHeadWithoutUpgrade(req.method ?? 'GET', req.url ?? '', req.httpVersion, req.rawHeaders);
    this.client.unshift(head.length > 0 ? Buffer.concat([Buffer.from(rebuilt, 'latin1'), head]) : Buffer.from(rebuilt, 'latin1'));
    this.front.attach(this.client, this);
    this.next();
  }

  /** Answers a refused upgrade on the raw socket, then hands the socket back to the parser: the session stays usable. */
  private refuseUpgrade(err: AppError, head: Buffer): void {
    if (this.clientClosed || this.client.destroyed) {
      this.next();
      return;
    }
    this.client.write(rawProblemResponse(err, false));
    if (head.length > 0) this.client.unshift(head);
    this.front.attach(this.client, this);
    this.next();
  }

  /** Refuses a request the proxy will not judge (its form), as a denial. */
  private async refuse(res: ServerResponse, seq: number, method: string, target: string, reason: string): Promise<void> {
    await this.recordDenied(seq, method, target, reason);
    if (this.stopped(res)) return;
    this.answer(res, new AppError('HTTP_PROTOCOL_VIOLATION', { message: `The request is refused: ${reason}.` }), false);
    this.next();
  }

  /** A policy denial (403), or a target the normaliser refused (400). */
  private async refuseDecision(res: ServerResponse, seq: number, method: string, target: string, d: HttpDecision): Promise<void> {
    await this.recordDenied(seq, method, target, d.reason, d);
    if (this.stopped(res)) return;
    this.answer(
      res,
      d.target === null ? new AppError('HTTP_PROTOCOL_VIOLATION', { message: `The request is refused: ${d.reason}.` }) : new AppError('POLICY_DENIED', { message: d.reason }),
      false,
    );
    this.next();
  }

  /** Answers one request with a problem document (in order, through Node). */
  private answer(res: ServerResponse, err: AppError, close: boolean): void {
    this.lastRes = res;
    sendProblem(res, err, close);
  }

  /** Closes the tunnel once the last response handed to Node is written (or abandoned). */
  private closeWhenWritten(): void {
    const last = this.lastRes;
    if (last !== null && !last.writableFinished && !last.destroyed) last.once('close', () => closeAfterFlush(this.client));
    else closeAfterFlush(this.client);
  }

  /** Why the last allowed request could not be audited (set by recordAllowed). */
  private auditRefusal: AppError = new AppError('AUDIT_UNAVAILABLE');

  /** The durable decision record before forwarding; false → refuse (503) rather than run unaudited. */
  private async recordAllowed(seq: number, d: HttpDecision, upgrade?: string): Promise<boolean> {
    if (!this.ctx.audit.canAccept()) {
      this.auditRefusal = new AppError('AUDIT_UNAVAILABLE');
      return false;
    }
    try {
      await this.ctx.audit.decision('http.request', 'allowed', {
        request: seq,
        method: d.method,
        target: d.target,
        rule: ruleJson(d.rule),
        reason: d.reason,
        ...(upgrade !== undefined ? { upgrade } : {}),
      });
      return true;
    } catch (err) {
      const code = isAppError(err) && (err.code === 'AUDIT_SPOOL_FULL' || err.code === 'AUDIT_UNAVAILABLE') ? err.code : 'AUDIT_UNAVAILABLE';
      this.ctx.logger.warn('HTTP request refused: audit unavailable.', { code, request: seq });
      this.auditRefusal = new AppError(code, { cause: err });
      return false;
    }
  }

  /** Records a denial. Nothing runs, so an audit failure is logged and the denial still answered. */
  private async recordDenied(seq: number, method: string, rawTarget: string, reason: string, d?: HttpDecision): Promise<void> {
    const details: Record<string, unknown> = { request: seq, method, target: d?.target ?? null, rule: ruleJson(d?.rule), reason };
    if (d?.target == null) details.rawTarget = rawTarget.slice(0, MAX_AUDITED_RAW_TARGET);
    try {
      await this.ctx.audit.decision('http.request', 'denied', details);
    } catch (err) {
      this.ctx.logger.warn('HTTP denial could not be audited.', { code: isAppError(err) ? err.code : 'INTERNAL', request: seq });
    }
  }

  private auditDenied(details: Record<string, unknown>): void {
    this.ctx.audit.decision('http.request', 'denied', details).then(undefined, (err: unknown) => {
      this.ctx.logger.warn('HTTP denial could not be audited.', { code: isAppError(err) ? err.code : 'INTERNAL' });
    });
  }

  private readonly onOutcomeLost = (err: unknown): void => {
    this.ctx.logger.error('HTTP outcome could not be audited.', { code: isAppError(err) ? err.code : 'INTERNAL' });
  };

  private readonly onInternalError = (err: unknown): void => {
    this.ctx.logger.error('HTTP session failed.', { err });
    this.reason ??= 'internal_error';
    this.destroyAll();
    this.busy = false;
    this.maybeFinish();
  };

  private readonly onClientClose = (): void => {
    this.clientClosed = true;
    this.reason ??= 'client_closed';
    this.queue.length = 0;
    if (this.current?.exchange instanceof UpgradeExchange && this.upstreamSocket === null) this.current.exchange.abandon();
    this.upstreamSocket?.destroy();
    this.maybeFinish();
  };

  private readonly onIdle = (): void => {
    if (this.finished) return;
    if (this.upstreamSocket !== null) {
      const quiet = Date.now() - this.lastActivity;
      if (quiet < this.options.idleMs) {
        this.idleTimer = setTimeout(this.onIdle, this.options.idleMs - quiet);
        this.idleTimer.unref();
        return;
      }
    } else if (this.busy) {
      this.idleTimer?.refresh();
      return;
    }
    this.reason ??= 'idle_timeout';
    this.destroyAll();
  };

  /**
   * Revocation and the grant's end cut the request in flight (answered with the
   * reason when its response has not started); a drain lets it finish, up to
   * `drainGraceMs`. Either way nothing new starts and the tunnel closes.
   */
  private readonly onAbort = (): void => {
    const r: unknown = this.ctx.signal.reason;
    const err = r instanceof AppError ? r : new AppError('NOT_READY', { message: 'The session was ended.' });
    this.closing = err;
    this.hardClose = err.code !== 'NOT_READY';
    this.reason ??= r instanceof AppError ? abortReason(err) : 'aborted';
    const cur = this.current;
    if (this.upstreamSocket !== null || !this.busy) {
      this.destroyAll();
      return;
    }
    if (!this.hardClose) {
      this.graceTimer = setTimeout(() => this.destroyAll(), this.options.drainGraceMs);
      this.graceTimer.unref();
      return;
    }
    // Still deciding (rate limit, audit): handleRequest answers with the reason when it resumes.
    if (cur !== null) cur.exchange.cancel(err);
  };

  private destroyAll(): void {
    this.client.destroy();
    this.upstreamSocket?.destroy();
  }

  private maybeFinish(): void {
    if (this.finished || !this.clientClosed) return;
    if (this.upstreamSocket !== null ? !this.upstreamClosed : this.busy) return;
    this.finished = true;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    const cur = this.current;
    if (cur !== null && this.upstreamSocket !== null) {
      // The WebSocket relay's outcome: the switch happened; bytes are what crossed it.
      this.current = null;
      this.countedOut += this.relayOut;
      this.ctx.audit
        .outcome('http.response', 'success', { request: cur.spec.seq, method: cur.spec.method, target: cur.spec.target, status: 101, bytesIn: this.relayIn, bytesOut: this.relayOut, durationMs: Date.now() - cur.t0, upgrade: 'websocket' })
        .then(undefined, this.onOutcomeLost);
    }
    const sock = this.client as Partial<Socket>;
    this.resolveRun?.({
      bytesFromClient: typeof sock.bytesRead === 'number' ? sock.bytesRead - this.readBase : this.countedIn,
      bytesToClient: typeof sock.bytesWritten === 'number' ? sock.bytesWritten - this.writeBase : this.countedOut,
      reason: this.reason ?? 'client_closed',
      requests: this.seq,
    });
  }
}
