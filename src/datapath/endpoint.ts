import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { TimerHandle, Timers } from '../ports/types.js';
import { CreditGate, CreditReturner, type CreditGateOptions, type CreditReturnOptions, type CreditWaitError } from './credits.js';
import { EndpointClosedError, LinkBackloggedError, stackless, type CreditsExhaustedError } from './errors.js';
import { encodeFrame, F_DST, F_FLAGS, F_GENERATION, F_LENGTH, F_OFFSET, F_REQUEST_ID, F_SRC, FLAG_CREDIT, FRAME_BYTES, type FrameLink } from './frames.js';
import { onOtherNode } from './endpoint-ids.js';
import { Ownership, type BufferRef, type RejectCounts } from './ownership.js';
import type { AllocError, Allocation, Pool } from './pool.js';

/**
 * A proc's data-path address, the same in both modes: it writes descriptors to its link and reads the
 * descriptors addressed to it from the same link. In userspace mode the other end is the hub; in BPF mode
 * the kernel redirects each descriptor straight into the destination's socket.
 *
 * Sending spends a credit towards the destination (credits.ts) and gives the buffer away. Receiving moves
 * the buffer's ownership from the (transport-vouched) sender to this endpoint; `release()` frees it and
 * returns the credit, `take()` keeps it (to forward it, zero-copy) and returns the credit.
 */

export const DEFAULT_SEND_TIMEOUT_MS = 1000;
const CREDIT_RETRY_DELAY_MS = 1;
const SENT: Either<never, void> = right(undefined);
const UTF8 = new TextEncoder();

export interface EndpointOptions {
  id: number;
  pool: Pool;
  link: FrameLink;
  timers: Timers;
  credits?: Partial<CreditGateOptions>;
  returns?: Partial<CreditReturnOptions>;
  sendTimeoutMs?: number;
}

export interface Message {
  src: number;
  requestId: bigint;
  flags: number;
  lengthBytes: number;
  /** The payload, in place in the pool (no copy). Valid until release(). */
  bytes: Uint8Array;
  /** Done: frees the buffer and returns the credit. Idempotent. */
  release(): void;
  /** Keeps the buffer (now owned by this endpoint; send it on or free it later) and returns the credit. */
  take(): BufferRef;
}

export type SendError = AllocError | CreditWaitError | LinkBackloggedError | EndpointClosedError;

export interface EndpointStats {
  sent: number;
  received: number;
  misrouted: number;
  handlerErrors: number;
  rejected: RejectCounts;
  credits: ReturnType<CreditGate['stats']>;
}

interface SentRing {
  offsets: number[];
  generations: number[];
  next: number;
}

export class Endpoint {
  readonly id: number;
  readonly pool: Pool;
  readonly #link: FrameLink;
  readonly #timers: Timers;
  readonly #own: Ownership;
  readonly #gate: CreditGate;
  readonly #returner: CreditReturner;
  readonly #sendTimeoutMs: number;
  /** The last inFlightMax buffers sent to each destination: all that can still be unaccepted there. */
  readonly #sent = new Map<number, SentRing>();
  readonly #owed = new Map<number, number>();
  #owedTimer: TimerHandle | undefined;
  #handler: (m: Message) => void = (m) => m.release();
  #closed = false;
  #stats = { sent: 0, received: 0, misrouted: 0, handlerErrors: 0 };

  constructor(options: EndpointOptions) {
    this.id = options.id;
    this.pool = options.pool;
    this.#link = options.link;
    this.#timers = options.timers;
    this.#own = new Ownership(options.pool);
    this.#gate = new CreditGate(options.timers, options.credits);
    this.#returner = new CreditReturner(options.timers, (src, n) => this.#returnCredits(src, n), options.returns);
    this.#sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.#link.onFrames((frames) => this.#onFrames(frames));
    this.#link.onClose(() => this.close());
  }

  onMessage(handler: (m: Message) => void): void {
    this.#handler = handler;
  }

  /** A buffer owned by this endpoint, to fill through `pool.bytes(offset, length)` and send. */
  alloc(lengthBytes: number): Either<AllocError, Allocation> {
    return this.pool.alloc(this.id, lengthBytes);
  }

  /** Copies `payload` into the pool and sends it, waiting up to `timeoutMs` for a credit. */
  async send(dst: number, payload: Uint8Array | string, options: { requestId?: bigint; timeoutMs?: number } = {}): Promise<Either<SendError, void>> {
    if (this.#closed) return left(new EndpointClosedError(this.id));
    const credit = await this.#gate.acquire(dst, options.timeoutMs ?? this.#sendTimeoutMs);
    if (credit._tag === 'Left') return credit;
    return this.#copyAndWrite(dst, payload, options.requestId ?? 0n);
  }

  /**
   * `send` without a promise when a credit is at hand now (most sends): copies `payload` into the pool
   * (a string is encoded straight into it: no intermediate buffer) and writes its descriptor. Left with
   * `credits-exhausted` means nothing happened: wait in `send`.
   */
  trySend(dst: number, payload: Uint8Array | string, requestId = 0n): Either<CreditsExhaustedError | SendError, void> {
    if (this.#closed) return left(new EndpointClosedError(this.id));
    const credit = this.#gate.tryAcquire(dst);
    if (credit._tag === 'Left') return credit;
    return this.#copyAndWrite(dst, payload, requestId);
  }

  /** With a credit for `dst` taken: the payload into a new pool buffer, and its descriptor out (the credit refunded on failure). */
  #copyAndWrite(dst: number, payload: Uint8Array | string, requestId: bigint): Either<SendError, void> {
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const a = this.pool.alloc(this.id, Math.max(1, length));
    if (a._tag === 'Left') {
      this.#gate.grant(dst, 1);
      return a;
    }
    const view = this.pool.bytes(a.right.offset, length);
    if (typeof payload === 'string') UTF8.encodeInto(payload, view);
    else view.set(payload);
    const r = this.#writeData(dst, a.right, length, requestId);
    if (r._tag === 'Left') this.pool.free(this.id, a.right.offset, a.right.generation);
    return r;
  }

  /**
   * Zero-copy send of a buffer this endpoint owns, if a credit is available now. On failure the buffer
   * is still the caller's.
   */
  trySendBuffer(dst: number, buffer: { offset: number; generation: number }, lengthBytes: number, requestId = 0n): Either<CreditsExhaustedError | LinkBackloggedError | EndpointClosedError, void> {
    if (this.#closed) return left(new EndpointClosedError(this.id));
    const credit = this.#gate.tryAcquire(dst);
    if (credit._tag === 'Left') return credit;
    return this.#writeData(dst, buffer, lengthBytes, requestId);
  }

  /** Zero-copy send, waiting up to `timeoutMs` for a credit. On failure the buffer is still the caller's. */
  async sendBuffer(dst: number, buffer: { offset: number; generation: number }, lengthBytes: number, options: { requestId?: bigint; timeoutMs?: number } = {}): Promise<Either<SendError, void>> {
    if (this.#closed) return left(new EndpointClosedError(this.id));
    const credit = await this.#gate.acquire(dst, options.timeoutMs ?? this.#sendTimeoutMs);
    if (credit._tag === 'Left') return credit;
    return this.#writeData(dst, buffer, lengthBytes, options.requestId ?? 0n);
  }

  /**
   * `dst` is gone (its proc exited, or its node says so): fail waiting sends and, for a destination on
   * this node, free what we sent it that it never accepted (the frames died in its socket). Buffers it
   * did accept are its own, reclaimed with it. What went to another node's endpoint is not ours to free:
   * the node's channel frees each such buffer when its send settles (src/datapath/remote.ts), and may
   * still be writing it to the socket then. Freeing it here too made the channel's own free a stale one,
   * and every refused forward in a chain brings such a notice.
   */
  closeDestination(dst: number): number {
    this.#gate.close(dst);
    this.#returner.forget(dst);
    const ring = this.#sent.get(dst);
    this.#sent.delete(dst);
    let freed = 0;
    if (ring !== undefined && !onOtherNode(this.id, dst)) {
      for (let i = 0; i < ring.offsets.length; i++) if (this.pool.free(this.id, ring.offsets[i]!, ring.generations[i]!)._tag === 'Right') freed++;
    }
    return freed;
  }

  stats(): EndpointStats {
    return { ...this.#stats, rejected: this.#own.rejected(), credits: this.#gate.stats() };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#returner.flush();
    this.#owedTimer?.cancel();
    this.#gate.closeAll();
    this.#link.close();
  }

  #writeData(dst: number, buffer: { offset: number; generation: number }, lengthBytes: number, requestId: bigint): Either<LinkBackloggedError, void> {
    const frame = encodeFrame({ dstEp: dst, srcEp: this.id, offset: buffer.offset, length: lengthBytes, generation: buffer.generation, flags: 0, requestId });
    if (!this.#link.write(frame)) {
      this.#gate.grant(dst, 1); // never sent: refund
      return left(stackless(() => new LinkBackloggedError(this.id)));
    }
    this.#remember(dst, buffer.offset, buffer.generation);
    this.#stats.sent++;
    // Credits owed to dst ride along (the link coalesces writes of one turn into one writev).
    this.#returner.flushTo(dst);
    return SENT;
  }

  #remember(dst: number, offset: number, generation: number): void {
    let ring = this.#sent.get(dst);
    if (ring === undefined) {
      if (this.#sent.size >= this.#gate.options.windowsMax) {
        // Forget destinations with nothing in flight: everything sent there was accepted.
        for (const d of [...this.#sent.keys()]) if (this.#gate.inFlight(d) === 0) this.#sent.delete(d);
      }
      ring = { offsets: [], generations: [], next: 0 };
      this.#sent.set(dst, ring);
    }
    const cap = this.#gate.options.inFlightMax;
    ring.offsets[ring.next] = offset;
    ring.generations[ring.next] = generation;
    ring.next = (ring.next + 1) % cap;
  }

  #onFrames(frames: Buffer): void {
    for (let at = 0; at < frames.length; at += FRAME_BYTES) {
      if (frames.readUInt32LE(at + F_DST) !== this.id) {
        this.#stats.misrouted++;
        continue;
      }
      const src = frames.readUInt32LE(at + F_SRC);
      const flags = frames.readUInt32LE(at + F_FLAGS);
      const length = frames.readUInt32LE(at + F_LENGTH);
      if ((flags & FLAG_CREDIT) !== 0) {
        this.#gate.grant(src, length);
        continue;
      }
      const ref = { offset: frames.readUInt32LE(at + F_OFFSET), length, generation: frames.readUInt32LE(at + F_GENERATION) };
      if (this.#own.accept(ref, src, this.id)._tag === 'Left') {
        this.#returner.consumed(src); // the sender spent a credit on it all the same
        continue;
      }
      this.#stats.received++;
      this.#deliver(src, ref, flags, frames.readBigUInt64LE(at + F_REQUEST_ID));
    }
  }

  #deliver(src: number, ref: BufferRef, flags: number, requestId: bigint): void {
    let settled = false;
    const settle = (free: boolean): void => {
      if (settled) return;
      settled = true;
      if (free) this.#own.release(ref, this.id);
      this.#returner.consumed(src);
    };
    const m: Message = {
      src,
      requestId,
      flags,
      lengthBytes: ref.length,
      bytes: this.pool.bytes(ref.offset, ref.length),
      release: () => settle(true),
      take: () => {
        settle(false);
        return ref;
      },
    };
    try {
      this.#handler(m);
    } catch {
      this.#stats.handlerErrors++;
      settle(true);
    }
  }

  #returnCredits(src: number, n: number): void {
    const owed = (this.#owed.get(src) ?? 0) + n;
    this.#owed.delete(src);
    const frame = encodeFrame({ dstEp: src, srcEp: this.id, offset: 0, length: owed, generation: 0, flags: FLAG_CREDIT, requestId: 0n });
    if (this.#closed || this.#link.write(frame)) return;
    // The link is backlogged: keep the credits and retry, or the sender would stall for good.
    this.#owed.set(src, owed);
    this.#owedTimer ??= this.#timers.setTimeout(() => {
      this.#owedTimer = undefined;
      for (const [s] of [...this.#owed]) this.#returnCredits(s, 0);
    }, CREDIT_RETRY_DELAY_MS);
  }
}
