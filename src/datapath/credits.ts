import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { TimerHandle, Timers } from '../ports/types.js';
import { CreditsExhaustedError, CreditTimeoutError, CreditWaitersFullError, CreditWindowClosedError, InvalidArgumentError, stackless } from './errors.js';
import { assert } from '../assert.js';

/**
 * Credit-based flow control per (sender, destination). A redirected socket gives the sender no
 * backpressure (sk_msg puts the bytes straight into the receiver's queue), and a descriptor pins a pool
 * buffer until consumed, so a fast sender could fill the receiver's queue and the pool. Here a sender
 * spends one credit per message and gets credits back from the receiver, in batches, as it consumes:
 * at most `inFlightMax` messages per destination are sent and not yet consumed.
 *
 * Pure: time only through the injected Timers, so the simulator can drive it.
 */

export const DEFAULT_IN_FLIGHT_MAX = 64;
export const DEFAULT_WAITERS_MAX = 1024;
export const DEFAULT_WINDOWS_MAX = 4096;
export const DEFAULT_RETURN_BATCH = 16;
export const DEFAULT_RETURN_FLUSH_DELAY_MS = 1;
export const DEFAULT_RETURN_SOURCES_MAX = 4096;

export interface CreditGateOptions {
  /** Messages sent to one destination and not yet returned. */
  inFlightMax: number;
  /** Sends waiting for credit towards one destination. */
  waitersMax: number;
  /** Destinations tracked at once (idle windows are forgotten first). */
  windowsMax: number;
}

export type CreditWaitError = CreditTimeoutError | CreditWaitersFullError | CreditWindowClosedError | CreditsExhaustedError;

interface Waiter {
  resolve: (r: Either<CreditWaitError, void>) => void;
  timer: TimerHandle | undefined;
  done: boolean;
}

interface Window {
  inFlight: number;
  /** FIFO; entries that timed out stay until they reach the front (`waiting` counts the live ones). */
  queue: Waiter[];
  waiting: number;
}

const RIGHT: Either<never, void> = right(undefined);

/** The sender's side: one window per destination endpoint. */
export class CreditGate {
  readonly options: CreditGateOptions;
  readonly #windows = new Map<number, Window>();
  #overGrants = 0;
  #timeouts = 0;

  constructor(readonly timers: Timers, options: Partial<CreditGateOptions> = {}) {
    this.options = { inFlightMax: DEFAULT_IN_FLIGHT_MAX, waitersMax: DEFAULT_WAITERS_MAX, windowsMax: DEFAULT_WINDOWS_MAX, ...options };
    for (const k of ['inFlightMax', 'waitersMax', 'windowsMax'] as const) {
      const v = this.options[k];
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`credits.${k}`, `must be a positive integer, got ${v}`);
    }
  }

  /** Spends a credit now, or fails (also when others are already waiting: no overtaking). */
  tryAcquire(dst: number): Either<CreditsExhaustedError, void> {
    const w = this.#window(dst);
    if (w === undefined || w.waiting > 0 || w.inFlight >= this.options.inFlightMax) return left(this.#exhausted(dst));
    w.inFlight++;
    return RIGHT;
  }

  /** Spends a credit, waiting up to `timeoutMs` for the receiver to return one. Waiters are served FIFO. */
  acquire(dst: number, timeoutMs: number): Promise<Either<CreditWaitError, void>> {
    const w = this.#window(dst);
    if (w === undefined) return Promise.resolve(left(this.#exhausted(dst)));
    if (w.waiting === 0 && w.inFlight < this.options.inFlightMax) {
      w.inFlight++;
      return Promise.resolve(RIGHT);
    }
    if (w.waiting >= this.options.waitersMax) return Promise.resolve(left(stackless(() => new CreditWaitersFullError(dst, this.options.waitersMax))));
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve, timer: undefined, done: false };
      waiter.timer = this.timers.setTimeout(() => {
        if (waiter.done) return;
        waiter.done = true;
        w.waiting--;
        this.#timeouts++;
        resolve(left(stackless(() => new CreditTimeoutError(dst, timeoutMs))));
      }, timeoutMs);
      w.queue.push(waiter);
      w.waiting++;
    });
  }

  /** The receiver consumed `credits` messages from us: refill the window and wake waiters in order. */
  grant(dst: number, credits: number): void {
    const w = this.#windows.get(dst);
    if (w === undefined || !(credits > 0)) return;
    const n = Math.min(Math.floor(credits), w.inFlight);
    if (n < credits) this.#overGrants += credits - n; // more than we sent: a duplicate or a forged return
    w.inFlight -= n;
    assert(w.inFlight >= 0, `credits in flight to ${dst} went negative`);
    while (w.inFlight < this.options.inFlightMax && w.queue.length > 0) {
      const waiter = w.queue.shift()!;
      if (waiter.done) continue;
      waiter.done = true;
      waiter.timer?.cancel();
      w.waiting--;
      assert(w.waiting >= 0, `waiters for ${dst} went negative`);
      w.inFlight++;
      waiter.resolve(RIGHT);
    }
  }

  /** Forgets a destination (it went away): waiters fail with CreditWindowClosedError. */
  close(dst: number): void {
    const w = this.#windows.get(dst);
    if (w === undefined) return;
    this.#windows.delete(dst);
    for (const waiter of w.queue) {
      if (waiter.done) continue;
      waiter.done = true;
      waiter.timer?.cancel();
      waiter.resolve(left(new CreditWindowClosedError(dst)));
    }
  }

  closeAll(): void {
    for (const dst of [...this.#windows.keys()]) this.close(dst);
  }

  inFlight(dst: number): number {
    return this.#windows.get(dst)?.inFlight ?? 0;
  }

  stats(): { windows: number; inFlight: number; waiting: number; overGrants: number; timeouts: number } {
    let inFlight = 0;
    let waiting = 0;
    for (const w of this.#windows.values()) {
      inFlight += w.inFlight;
      waiting += w.waiting;
    }
    return { windows: this.#windows.size, inFlight, waiting, overGrants: this.#overGrants, timeouts: this.#timeouts };
  }

  #window(dst: number): Window | undefined {
    let w = this.#windows.get(dst);
    if (w !== undefined) return w;
    if (this.#windows.size >= this.options.windowsMax) {
      for (const [k, v] of this.#windows) if (v.inFlight === 0 && v.waiting === 0) this.#windows.delete(k);
      if (this.#windows.size >= this.options.windowsMax) return undefined;
    }
    w = { inFlight: 0, queue: [], waiting: 0 };
    this.#windows.set(dst, w);
    return w;
  }

  #exhausted(dst: number): CreditsExhaustedError {
    return stackless(() => new CreditsExhaustedError(dst, this.options.inFlightMax));
  }
}

export interface CreditReturnOptions {
  /** Credits returned in one message once this many were consumed from a source. */
  batch: number;
  /** A partial batch is returned after this delay, so a sender is never left waiting on a quiet receiver. */
  flushDelayMs: number;
  /** Sources with credits pending at once; beyond it everything pending is returned at once. */
  sourcesMax: number;
}

/**
 * The receiver's side: counts consumed messages per source and returns credits in batches (one message
 * per `batch` consumed, or after `flushDelayMs`). `batch` should not exceed the senders' inFlightMax
 * (the flush timer rescues it if it does, at the cost of `flushDelayMs`).
 */
export class CreditReturner {
  readonly options: CreditReturnOptions;
  readonly #pending = new Map<number, number>();
  #timer: TimerHandle | undefined;
  #returned = 0;

  constructor(readonly timers: Timers, readonly send: (src: number, credits: number) => void, options: Partial<CreditReturnOptions> = {}) {
    this.options = { batch: DEFAULT_RETURN_BATCH, flushDelayMs: DEFAULT_RETURN_FLUSH_DELAY_MS, sourcesMax: DEFAULT_RETURN_SOURCES_MAX, ...options };
    if (!Number.isInteger(this.options.batch) || this.options.batch < 1) throw new InvalidArgumentError('credits.batch', `must be a positive integer, got ${this.options.batch}`);
    if (!(this.options.flushDelayMs >= 0)) throw new InvalidArgumentError('credits.flushDelayMs', `must be >= 0, got ${this.options.flushDelayMs}`);
  }

  /** `n` messages from `src` were consumed. */
  consumed(src: number, n = 1): void {
    const p = (this.#pending.get(src) ?? 0) + n;
    if (p >= this.options.batch) {
      this.#pending.delete(src);
      this.#emit(src, p);
      return;
    }
    this.#pending.set(src, p);
    if (this.#pending.size > this.options.sourcesMax) {
      this.flush();
      return;
    }
    this.#timer ??= this.timers.setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, this.options.flushDelayMs);
  }

  /** Returns every pending credit now. */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const all = [...this.#pending];
    this.#pending.clear();
    for (const [src, n] of all) this.#emit(src, n);
  }

  /**
   * Called as a message is written to `src`: once half a batch is pending for it, the credits travel in
   * the same write (one syscall, one wakeup of the peer) instead of waiting for a batch or the flush
   * timer, which would each cost a write and a wakeup of their own. Below that, a credit frame on every
   * message would double the frames the verdict and the peer handle.
   */
  flushTo(src: number): void {
    const n = this.#pending.get(src);
    if (n === undefined || 2 * n < this.options.batch) return;
    this.#pending.delete(src);
    if (this.#pending.size === 0) {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
    this.#emit(src, n);
  }

  /** Forgets a source that went away (its credits no longer matter). */
  forget(src: number): void {
    this.#pending.delete(src);
  }

  pending(src: number): number {
    return this.#pending.get(src) ?? 0;
  }

  get returned(): number {
    return this.#returned;
  }

  #emit(src: number, n: number): void {
    this.#returned += n;
    this.send(src, n);
  }
}
