/**
 * The data path as a proc author sees it (ctx.send / ctx.call / ctx.forward, data handlers). Plain
 * promises; every failure is one of the typed errors below (or a data-path error from src/datapath:
 * PoolExhaustedError, AllocTooLargeError, CreditTimeoutError, ... — all carry a `type`).
 */

/** A service name in the proc's own realm (resolved through named, cached), or an endpoint. */
export type Target = string | EndpointAddress;

/** A proc's data-path address: the node it runs on and its endpoint id there. */
export interface EndpointAddress {
  node?: string;
  endpoint: number;
}

/** A buffer in the realm's shared-memory pool, owned by this proc: fill `bytes`, then send it (no copy). */
export interface PoolBuffer {
  /** Writable view of the buffer (valid until it is sent, forwarded or released). */
  readonly bytes: Uint8Array;
  readonly offset: number;
  readonly generation: number;
  /** Gives the buffer back to the pool (a send or forward does that for you). Idempotent. */
  release(): void;
}

/**
 * What a data handler receives. `bytes` is a view straight into shared memory: valid while the handler
 * runs (until its promise settles), unless `retain()` keeps it, or `ctx.forward` hands it on.
 */
export interface DataMessage {
  readonly bytes: Uint8Array;
  /** The sender's endpoint (vouched for by the kernel or the hub, never the sender's claim). */
  readonly src: number;
  /** True when the sender waits for an answer (ctx.call); the handler's return value is the answer. */
  readonly expectsReply: boolean;
  /** Keeps the buffer past the handler: it becomes a PoolBuffer this proc owns. */
  retain(): PoolBuffer;
}

/** What a data handler may answer with: bytes (copied into the pool), a string (UTF-8), a PoolBuffer or the request itself (sent back without a copy). */
export type DataReply = Uint8Array | string | PoolBuffer | DataMessage | undefined | void;

export type DataHandler = (msg: DataMessage) => DataReply | Promise<DataReply>;

export interface CallOptions {
  timeoutMs?: number;
}

/** What ProcContext offers on the data path. */
export interface DataPathApi {
  /** This proc's endpoint, or undefined when its host has no data path. */
  readonly endpoint: EndpointAddress | undefined;
  /** One-way: resolves once the descriptor is on its way (a credit was available in time). */
  send(target: Target, payload: Uint8Array | string | PoolBuffer, options?: CallOptions): Promise<void>;
  /** Request and response: resolves with a copy of the answer. */
  call(target: Target, payload: Uint8Array | string | PoolBuffer, options?: CallOptions): Promise<Uint8Array>;
  /** Request and response without copying the answer: `read` sees it in place; its result is returned. */
  callWith<R>(target: Target, payload: Uint8Array | string | PoolBuffer, read: (answer: Uint8Array) => R, options?: CallOptions): Promise<R>;
  /** Hands a received message's buffer (or a retained one) to the next stage, no copy. The next stage answers the original caller. */
  forward(next: Target, msg: DataMessage | PoolBuffer, options?: CallOptions): Promise<void>;
  /** A pool buffer of `lengthBytes` to fill and send without a copy. */
  alloc(lengthBytes: number): PoolBuffer;
  /** Serves data-path messages (a ServiceProc's `onData` method is registered for you). */
  serve(handler: DataHandler): void;
}

/** The node process's own endpoint of a realm (the gateway's, `sigma call`'s): DataPathApi and one more call. */
export interface LocalDataPathApi extends DataPathApi {
  /**
   * Request and response, the answer kept in the pool: the caller owns the returned buffer and must
   * release() it (the gateway writes a response straight from it, then releases it).
   */
  callRetained(target: Target, payload: Uint8Array | string | PoolBuffer, options?: CallOptions): Promise<PoolBuffer>;
}

export abstract class ProcDataError extends Error {
  abstract readonly type: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The proc's host has no data path (a host started without one, or the simulator). */
export class DataPathUnavailableError extends ProcDataError {
  readonly type = 'datapath-unavailable';
  constructor(detail: string) {
    super(`the data path is not available to this proc: ${detail}`);
  }
}

/** No such name in this realm, or it names a proc without an endpoint. */
export class UnknownTargetError extends ProcDataError {
  readonly type = 'unknown-target';
  constructor(readonly target: string, detail: string) {
    super(`cannot reach "${target}": ${detail}`);
  }
}

/** The target lives on another node; the node-to-node channel is not plugged in. */
export class CrossNodeTargetError extends ProcDataError {
  readonly type = 'cross-node-target';
  constructor(readonly node: string, readonly endpoint: number) {
    super(`endpoint ${endpoint} lives on node ${node}; cross-node data-path messages need the node-to-node channel, which this node does not have yet`);
  }
}

/** No answer within the timeout (the target is slow, gone, or dropped the request). */
export class CallTimeoutError extends ProcDataError {
  readonly type = 'call-timeout';
  constructor(readonly endpoint: number, readonly timeoutMs: number) {
    super(`no answer from endpoint ${endpoint} within ${timeoutMs} ms; the target is slow or gone — retry or raise timeoutMs`);
  }
}

/** The target's handler failed (threw, or it has no handler); `message` carries its reason. */
export class RemoteHandlerError extends ProcDataError {
  readonly type = 'remote-handler';
  constructor(readonly endpoint: number, reason: string) {
    super(`endpoint ${endpoint} could not answer: ${reason}`);
  }
}

/** Too many calls of this proc are waiting for answers. */
export class CallsPendingFullError extends ProcDataError {
  readonly type = 'calls-pending-full';
  constructor(readonly callsPendingMax: number) {
    super(`${callsPendingMax} calls are already waiting for answers; await some before calling again`);
  }
}

/** The buffer was already sent, forwarded or released. */
export class BufferConsumedError extends ProcDataError {
  readonly type = 'buffer-consumed';
  constructor(what: string) {
    super(`${what}: the buffer was already sent, forwarded or released; a buffer is handed on once`);
  }
}
