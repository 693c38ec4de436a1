import type { Logger } from 'pino';
import { nameKey, type NameRecord } from '../control/protocol/index.js';
import type { Endpoint, EndpointStats, Message } from './endpoint.js';
import { EndpointClosedError } from './errors.js';
import { callId, CALL_SEQ_MAX, parseId, responseId, type ParsedId } from './request-id.js';
import type { TimerHandle, Timers } from '../ports/types.js';
import {
  BufferConsumedError,
  CallsPendingFullError,
  CallTimeoutError,
  CrossNodeTargetError,
  RemoteHandlerError,
  UnknownTargetError,
  type CallOptions,
  type DataHandler,
  type DataMessage,
  type LocalDataPathApi,
  type DataReply,
  type EndpointAddress,
  type PoolBuffer,
  type Target,
} from '../proc/data.js';

/** Reads a name record of this realm from named; undefined when there is none. */
export type NameLookup = (key: string) => Promise<NameRecord | undefined>;

export const DEFAULT_CALL_TIMEOUT_MS = 5_000;
/** Calls of one proc waiting for answers at once. */
export const CALLS_PENDING_MAX = 4_096;
/** Resolved names kept per proc (a bounded cache: cleared when full). */
export const NAME_CACHE_ENTRIES_MAX = 1_024;
/**
 * Granularity of call timeouts. One timer per proc ticks while calls wait (never one timer per call:
 * arming and clearing a Node timer per call was a visible share of a round trip); a call times out
 * between timeoutMs and timeoutMs + 2 ticks after it was made.
 */
export const CALL_TIMEOUT_TICK_MS = 10;

const fromUtf8 = new TextDecoder();

/** A pool buffer this proc owns: allocated, or a received message it retained. */
class OwnedBuffer implements PoolBuffer {
  consumed = false;
  constructor(
    private readonly ep: Endpoint,
    readonly offset: number,
    readonly generation: number,
    readonly bytes: Uint8Array,
    /** The request this buffer carried when received (kept when it is forwarded). */
    readonly requestId: bigint,
  ) {}

  /** Marks it handed on; throws if it already was. */
  consume(what: string): void {
    if (this.consumed) throw new BufferConsumedError(what);
    this.consumed = true;
  }

  release(): void {
    if (this.consumed) return;
    this.consumed = true;
    this.ep.pool.free(this.ep.id, this.offset, this.generation);
  }
}

/** The handler's view of a received request. */
class Received implements DataMessage {
  state: 'held' | 'retained' | 'forwarded' | 'released' = 'held';
  retained: OwnedBuffer | undefined;
  constructor(
    readonly m: Message,
    private readonly ep: Endpoint,
    readonly id: ParsedId,
  ) {}

  get bytes(): Uint8Array {
    return this.m.bytes;
  }
  get src(): number {
    return this.m.src;
  }
  get expectsReply(): boolean {
    return !this.id.oneWay;
  }

  retain(): PoolBuffer {
    if (this.retained !== undefined) return this.retained;
    if (this.state !== 'held') throw new BufferConsumedError('retain');
    const ref = this.m.take();
    this.state = 'retained';
    this.retained = new OwnedBuffer(this.ep, ref.offset, ref.generation, this.m.bytes, this.m.requestId);
    return this.retained;
  }

  /** After the handler: free the buffer unless it was kept or handed on. */
  done(): void {
    if (this.state !== 'held') return;
    this.state = 'released';
    this.m.release();
  }
}

/** A call waiting for its answer: `read` runs on the answer in place, then the buffer is freed. */
interface Pending {
  dst: number;
  /** The timeout tick at which the call fails (CALL_TIMEOUT_TICK_MS). */
  expiresTick: number;
  timeoutMs: number;
  read: (answer: Uint8Array) => unknown;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

/** The `read` of callRetained: the answer's buffer is handed to the caller instead of freed. */
const KEEP_ANSWER = (answer: Uint8Array): Uint8Array => answer;

/** Settles a call with its answer (or the remote handler's error) and frees the answer's buffer. */
function settleAnswer(p: Pending, m: Message, error: boolean, ep: Endpoint): void {
  try {
    if (error) p.reject(new RemoteHandlerError(m.src, fromUtf8.decode(m.bytes)));
    else if (p.read === KEEP_ANSWER) {
      const ref = m.take();
      return p.resolve(new OwnedBuffer(ep, ref.offset, ref.generation, m.bytes, 0n));
    } else p.resolve(p.read(m.bytes));
  } catch (e) {
    p.reject(e);
  } finally {
    m.release();
  }
}

/**
 * One proc's data-path API (what ProcContext delegates to): names resolved through named (realm-scoped
 * keys, cached), calls correlated by the request id (src/datapath/request-id.ts), answers from the
 * handler, zero-copy forwarding. Failures are typed errors on plain promises; a bad request never takes
 * the proc down (a throwing handler becomes an error answer).
 */
export class ProcData implements LocalDataPathApi {
  readonly endpoint: EndpointAddress;
  readonly #ep: Endpoint;
  readonly #o: { node: string; realm: string; timers: Timers; lookup: NameLookup; log: Logger; crossNode?: boolean };
  readonly #pending = new Map<number, Pending>();
  readonly #names = new Map<string, number>();
  #handler: DataHandler | undefined;
  #seq = 0;
  #closed = false;
  /**
   * Call timeouts: seqs by the tick they expire at, one timer ticking while any call waits. An answered
   * call's seq stays filed until its tick (checked against #pending then), so this holds at most the
   * calls made within one timeout, and is dropped whole whenever no call waits.
   */
  readonly #expiries = new Map<number, number[]>();
  #tick = 0;
  #ticker: TimerHandle | undefined;
  readonly counts = { unserved: 0, lateAnswers: 0, answerFailures: 0, handlerErrors: 0 };

  constructor(o: { endpoint: Endpoint; node: string; realm: string; timers: Timers; lookup: NameLookup; log: Logger; crossNode?: boolean }) {
    this.#ep = o.endpoint;
    this.#o = o;
    this.endpoint = { node: o.node, endpoint: o.endpoint.id };
    this.#ep.onMessage((m) => this.#onMessage(m));
  }

  serve(handler: DataHandler): void {
    this.#handler = handler;
  }

  alloc(lengthBytes: number): PoolBuffer {
    const a = this.#ep.alloc(Math.max(1, lengthBytes));
    if (a._tag === 'Left') throw a.left;
    return new OwnedBuffer(this.#ep, a.right.offset, a.right.generation, this.#ep.pool.bytes(a.right.offset, lengthBytes), 0n);
  }

  async send(target: Target, payload: Uint8Array | string | PoolBuffer, options: CallOptions = {}): Promise<void> {
    const dst = await this.#resolve(target);
    await this.#transmit(dst, payload, 0n, options.timeoutMs);
  }

  async call(target: Target, payload: Uint8Array | string | PoolBuffer, options: CallOptions = {}): Promise<Uint8Array> {
    return this.callWith(target, payload, (answer) => answer.slice(), options);
  }

  callWith<R>(target: Target, payload: Uint8Array | string | PoolBuffer, read: (answer: Uint8Array) => R, options: CallOptions = {}): Promise<R> {
    // A cached local name and a credit at hand: the descriptor is written in this call, no promise hop.
    const dst = this.#resolveCached(target);
    if (dst !== undefined) return this.#callLocal(dst, payload, read, options);
    return this.#resolve(target).then((d) => this.#callLocal(d, payload, read, options));
  }

  callRetained(target: Target, payload: Uint8Array | string | PoolBuffer, options: CallOptions = {}): Promise<PoolBuffer> {
    return this.callWith(target, payload, KEEP_ANSWER, options) as unknown as Promise<PoolBuffer>;
  }

  #callLocal<R>(dst: number, payload: Uint8Array | string | PoolBuffer, read: (answer: Uint8Array) => R, options: CallOptions): Promise<R> {
    if (this.#pending.size >= CALLS_PENDING_MAX) return Promise.reject(new CallsPendingFullError(CALLS_PENDING_MAX));
    const seq = this.#nextSeq();
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    let p!: Pending;
    const answer = new Promise<R>((resolve, reject) => {
      p = { dst, expiresTick: 0, timeoutMs, read, resolve: resolve as (r: unknown) => void, reject };
    });
    this.#pending.set(seq, p);
    this.#expireAt(seq, p);
    const cancel = (e: unknown): Promise<R> => {
      if (this.#pending.get(seq) === p) this.#pending.delete(seq);
      this.#unname(dst);
      void answer.catch(() => {});
      return Promise.reject(e);
    };
    let sent: Promise<void> | undefined;
    try {
      sent = this.#transmitNow(dst, payload, callId(this.#ep.id, seq), options.timeoutMs);
    } catch (e) {
      return cancel(e);
    }
    if (sent === undefined) return answer;
    return sent.then(() => answer, cancel);
  }

  async forward(next: Target, msg: DataMessage | PoolBuffer, options: CallOptions = {}): Promise<void> {
    let buf: OwnedBuffer;
    if (msg instanceof Received) {
      if (msg.state === 'held') {
        const ref = msg.m.take();
        msg.state = 'forwarded';
        buf = new OwnedBuffer(this.#ep, ref.offset, ref.generation, msg.m.bytes, msg.m.requestId);
      } else if (msg.retained !== undefined) {
        buf = msg.retained;
        msg.state = 'forwarded';
      } else throw new BufferConsumedError('forward');
    } else if (msg instanceof OwnedBuffer) buf = msg;
    else throw new TypeError('forward takes a message received by this proc or a buffer from ctx.alloc');
    let dst: number;
    try {
      dst = await this.#resolve(next);
    } catch (e) {
      buf.release();
      throw e;
    }
    await this.#transmit(dst, buf, buf.requestId, options.timeoutMs);
  }

  endpointStats(): EndpointStats {
    return this.#ep.stats();
  }

  /** `error`: why, when it is not that the proc exited (its node went away, say). */
  destinationGone(endpoint: number, error?: Error): void {
    this.#ep.closeDestination(endpoint);
    this.#unname(endpoint);
    for (const [seq, p] of this.#pending) {
      if (p.dst !== endpoint) continue;
      this.#pending.delete(seq);
      p.reject(error ?? new RemoteHandlerError(endpoint, 'the target proc exited before answering'));
    }
  }

  /** The call `seq` was refused on its way to another node (the node manager heard it): it fails now, typed. */
  callRefused(seq: number, error: Error): void {
    const p = this.#pending.get(seq);
    if (p === undefined) return;
    this.#pending.delete(seq);
    this.#unname(p.dst);
    p.reject(error);
  }

  /**
   * Names cached for `endpoint` are resolved again at their next use. After any failed call: an endpoint
   * that does not answer may be one of a node's earlier incarnation, which nothing announces gone (a
   * chaos run's gateway path called a restarted node's dead id for a minute while the name had moved).
   */
  #unname(endpoint: number): void {
    for (const [name, ep] of this.#names) if (ep === endpoint) this.#names.delete(name);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ticker?.cancel();
    this.#ticker = undefined;
    this.#expiries.clear();
    for (const p of this.#pending.values()) p.reject(new EndpointClosedError(this.#ep.id));
    this.#pending.clear();
    this.#ep.close();
  }

  /** Sends `payload` (copied, or the buffer itself) with `requestId`; a send consumes a PoolBuffer, delivered or not. */
  async #transmit(dst: number, payload: Uint8Array | string | PoolBuffer, requestId: bigint, timeoutMs: number | undefined): Promise<void> {
    const waiting = this.#transmitNow(dst, payload, requestId, timeoutMs);
    if (waiting !== undefined) await waiting;
  }

  /**
   * The same, written now when a credit is at hand (undefined: sent; it throws what fails at once), else
   * a promise that waits for the credit. Most sends never wait, so most never allocate a promise.
   */
  #transmitNow(dst: number, payload: Uint8Array | string | PoolBuffer, requestId: bigint, timeoutMs: number | undefined): Promise<void> | undefined {
    if (payload instanceof OwnedBuffer) {
      payload.consume('send');
      const now = this.#ep.trySendBuffer(dst, payload, payload.bytes.length, requestId);
      if (now._tag === 'Right') return undefined;
      if (now.left.type !== 'credits-exhausted') {
        this.#ep.pool.free(this.#ep.id, payload.offset, payload.generation);
        throw now.left;
      }
      const opts = { requestId, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
      return this.#ep.sendBuffer(dst, payload, payload.bytes.length, opts).then((r) => {
        if (r._tag === 'Left') {
          this.#ep.pool.free(this.#ep.id, payload.offset, payload.generation);
          throw r.left;
        }
      });
    }
    if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) throw new TypeError('a payload is a Uint8Array, a string or a buffer from ctx.alloc');
    const now = this.#ep.trySend(dst, payload, requestId);
    if (now._tag === 'Right') return undefined;
    if (now.left.type !== 'credits-exhausted') throw now.left;
    const opts = { requestId, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
    return this.#ep.send(dst, payload, opts).then((r) => {
      if (r._tag === 'Left') throw r.left;
    });
  }

  /** Files the call under the tick it expires at, and keeps the one ticker running while calls wait. */
  #expireAt(seq: number, p: Pending): void {
    // +1: the current tick is partly gone already.
    p.expiresTick = this.#tick + Math.ceil(p.timeoutMs / CALL_TIMEOUT_TICK_MS) + 1;
    const bucket = this.#expiries.get(p.expiresTick);
    if (bucket === undefined) this.#expiries.set(p.expiresTick, [seq]);
    else bucket.push(seq);
    this.#ticker ??= this.#o.timers.setTimeout(() => this.#onTick(), CALL_TIMEOUT_TICK_MS);
  }

  #onTick(): void {
    this.#ticker = undefined;
    const tick = ++this.#tick;
    const due = this.#expiries.get(tick);
    this.#expiries.delete(tick);
    for (const seq of due ?? []) {
      const p = this.#pending.get(seq);
      if (p === undefined || p.expiresTick !== tick) continue; // answered (its seq may be reused by a later call)
      this.#pending.delete(seq);
      this.#unname(p.dst);
      p.reject(new CallTimeoutError(p.dst, p.timeoutMs));
    }
    if (this.#pending.size > 0) this.#ticker = this.#o.timers.setTimeout(() => this.#onTick(), CALL_TIMEOUT_TICK_MS);
    else this.#expiries.clear(); // nothing waits: whatever is filed is stale
  }

  /** A local endpoint id known without a lookup, or undefined. */
  #resolveCached(target: Target): number | undefined {
    if (typeof target !== 'string') return target.node !== undefined && target.node !== this.#o.node ? undefined : target.endpoint;
    return this.#names.get(target);
  }

  /**
   * The endpoint id of a target. Ids are cluster-unique, so a node with a node-to-node channel routes
   * another node's endpoint like a local one (src/node/datapath/cross.ts); without one (`crossNode`
   * off) a target on another node is a typed error.
   */
  async #resolve(target: Target): Promise<number> {
    if (typeof target !== 'string') {
      if (target.node !== undefined && target.node !== this.#o.node && this.#o.crossNode !== true) throw new CrossNodeTargetError(target.node, target.endpoint);
      return target.endpoint;
    }
    const cached = this.#names.get(target);
    if (cached !== undefined) return cached;
    const rec = await this.#lookup(target);
    if (rec.endpoint === undefined || rec.node === undefined) throw new UnknownTargetError(target, 'the service has no data-path endpoint (its node runs without a data path)');
    if (rec.node !== this.#o.node && this.#o.crossNode !== true) throw new CrossNodeTargetError(rec.node, rec.endpoint);
    if (this.#names.size >= NAME_CACHE_ENTRIES_MAX) this.#names.clear();
    this.#names.set(target, rec.endpoint);
    return rec.endpoint;
  }

  /** `name` in this proc's realm, or `realm/name`: a service another realm exported to this one (spec.exports). */
  async #lookup(target: string): Promise<NameRecord> {
    const { realm, name, key } = nameKey(this.#o.realm, target);
    const rec = await this.#o.lookup(key);
    if (rec === undefined) throw new UnknownTargetError(target, `no service of that name in realm ${realm}`);
    if (realm !== this.#o.realm && rec.exports?.includes(this.#o.realm) !== true) throw new UnknownTargetError(target, `realm ${realm} does not export ${name} to realm ${this.#o.realm}`);
    return rec;
  }

  #nextSeq(): number {
    for (;;) {
      this.#seq = this.#seq >= CALL_SEQ_MAX ? 1 : this.#seq + 1;
      if (!this.#pending.has(this.#seq)) return this.#seq;
    }
  }

  #onMessage(m: Message): void {
    const id = parseId(m.requestId);
    if (id.response) {
      const p = this.#pending.get(id.seq);
      if (p === undefined) {
        this.counts.lateAnswers++;
        return m.release();
      }
      this.#pending.delete(id.seq);
      return settleAnswer(p, m, id.error, this.#ep);
    }
    const handler = this.#handler;
    if (handler === undefined) {
      this.counts.unserved++;
      if (!id.oneWay) this.#answerError(m.requestId, id.replyTo, 'it serves no data-path messages (no onData handler)');
      return m.release();
    }
    const msg = new Received(m, this.#ep, id);
    let result: DataReply | Promise<DataReply>;
    try {
      result = handler(msg);
    } catch (e) {
      return this.#failed(msg, e);
    }
    if (result instanceof Promise) result.then((r) => this.#answered(msg, r), (e: unknown) => this.#failed(msg, e));
    else this.#answered(msg, result);
  }

  #answered(msg: Received, r: DataReply): void {
    if (msg.state === 'forwarded' || msg.id.oneWay) {
      if (r instanceof OwnedBuffer && r !== msg.retained) r.release();
      return msg.done();
    }
    const requestId = responseId(msg.m.requestId, false);
    let payload: Uint8Array | string | PoolBuffer;
    if (r === msg) payload = msg.retain();
    else if (r === undefined) payload = new Uint8Array(0);
    else if (r instanceof Received) payload = r.bytes;
    else payload = r as Uint8Array | string | PoolBuffer;
    const failed = (e: unknown): void => {
      this.counts.answerFailures++;
      this.#o.log.warn({ err: e, to: msg.id.replyTo }, 'data path: could not send an answer');
    };
    let reply: Promise<void> | undefined;
    try {
      reply = this.#transmitNow(msg.id.replyTo, payload, requestId, undefined);
    } catch (e) {
      failed(e);
    }
    msg.done(); // a copied answer is in the pool already; the request's buffer can go
    reply?.catch(failed);
  }

  #failed(msg: Received, e: unknown): void {
    this.counts.handlerErrors++;
    if (!msg.id.oneWay && msg.state !== 'forwarded') this.#answerError(msg.m.requestId, msg.id.replyTo, e instanceof Error ? e.message : String(e));
    msg.done();
  }

  #answerError(requestId: bigint, replyTo: number, reason: string): void {
    void this.#ep.send(replyTo, reason.slice(0, 1024), { requestId: responseId(requestId, true) }).then((r) => {
      if (r._tag === 'Left') this.counts.answerFailures++;
    });
  }
}
