/**
 * Adaptive busy polling of a process's event loop, for the data path's sockets.
 *
 * A descriptor costs the kernel little; what costs is waking the receiver. A Node process blocked in
 * epoll_wait sleeps its CPU, and on this kind of VM a sleeping vCPU takes tens of microseconds to wake
 * (measured: a 32-byte ping-pong over loopback TCP between two Node processes, 83 µs round trip when both
 * block, 14 µs when both keep their loop spinning). So for a short window after each frame it sends or
 * receives, a process keeps its loop turning with setImmediate: libuv then polls its sockets with a zero
 * timeout and picks a redirected descriptor up within a loop turn, with no wakeup. When the window passes
 * with no traffic, the loop blocks again (event-driven, SPRIGHT's point: no CPU spent when idle).
 *
 * The cost is bounded: at most a window of CPU after the last frame, and the window adapts. A window in
 * which no more traffic came halves the next one (down to an eighth of `windowUs`); a window that caught
 * traffic doubles it back (up to `windowUs`), and traffic that comes within `windowUs` of a window's end
 * (a near miss: the full window would have caught it) restores the full window at once. Without that, a
 * ping-pong slower than the shrunken window never got caught again: every round trip paid two wakeups,
 * which kept it slower than the window (measured: a host stuck at 25 µs windows with 60-130 µs gaps). So
 * a host with one message every 10 ms spins ~25 µs per message (0.25 % of a core), a ping-pong keeps the
 * whole window, and under load the spinning replaces wakeups that cost more. The default, 200 µs, spans a three-process hop (userspace mode: host, hub,
 * host: 208 -> 97 µs at 64 B against a 50 µs window; the bpf path was the same with either). `windowUs` 0
 * turns it off. Nothing is delivered through it: it only changes when the loop looks.
 *
 * Each spinning turn yields the CPU (sched_yield). A ping-pong pair woken by each other is placed on one
 * CPU by the scheduler (wake-affine); once both spin they no longer wake, so nothing moves them apart, and
 * without the yield each hand-over waited for the other's time slice to end (measured: batches at 90-120 µs
 * instead of 20). With it, co-located spinners hand the CPU over at once, and anything else runnable
 * there (the node manager, another host) runs ahead of a spinner.
 *
 * A window that catches traffic — a ping-pong, not a lone message — also pins the process to its home
 * CPU (src/node/datapath/cpu-homes.ts) until it has been idle for PIN_LINGER_MS: yielding makes two spinners on
 * one CPU take turns quickly, but they still take turns (47-50 µs p50 at 64 B against 31-33 µs on two
 * CPUs, measured between two procs). Lone messages never pin, so they pay no migration.
 */

export const DEFAULT_BUSY_POLL_US = 200;
/** A window longer than this is a misconfiguration (a host would spin for most of a scheduler tick). */
export const BUSY_POLL_US_MAX = 10_000;

/**
 * A pinned process stays pinned until no ping-pong has kept it spinning for this long. Pinned while idle
 * costs nothing (it is blocked), and the traffic of a service comes in bursts: unpinning at the end of
 * every window would migrate it back home at the start of the next burst (50-100 µs of a round trip).
 */
export const PIN_LINGER_MS = 1_000;

/** Unproductive windows shrink the window down to `windowUs` divided by this. */
export const WINDOW_FLOOR_DIVISOR = 8;

export interface BusyPollPorts {
  /** Monotonic time in milliseconds, fractional (performance.now resolution). */
  nowMs(): number;
  /** Runs `fn` on the next turn of the event loop, after I/O (setImmediate). */
  immediate(fn: () => void): void;
  /** Lets another runnable task on this CPU run (sched_yield), once per spinning turn. */
  relax(): void;
  /** Keeps this process on its home CPU (src/node/datapath/cpu-homes.ts) while a ping-pong keeps it spinning. */
  pin?(): void;
  /** Lets it run anywhere again, once the loop has been idle for PIN_LINGER_MS. */
  unpin?(): void;
  /** Runs `fn` in `ms` unless the returned function is called first (an unref'd timer). Needed with `pin`. */
  later?(fn: () => void, ms: number): () => void;
}

export class BusyPoll {
  /** The configured window, and the one the next poke uses (between it / WINDOW_FLOOR_DIVISOR and it). */
  #windowMs = 0;
  #currentMs = 0;
  readonly #ports: BusyPollPorts;
  #until = 0;
  #spinning = false;
  /** Traffic came while this window was open. */
  #caught = false;
  /** When the last window ended. */
  #endedMs = -Infinity;
  #pinned = false;
  #cancelUnpin: (() => void) | undefined;
  #turns = 0;
  #windows = 0;
  #pins = 0;
  readonly #turn = (): void => {
    if (this.#ports.nowMs() >= this.#until) return this.#end();
    this.#turns++;
    this.#ports.relax();
    this.#ports.immediate(this.#turn);
  };

  #end(): void {
    this.#spinning = false;
    this.#endedMs = this.#ports.nowMs();
    if (!this.#caught) this.#currentMs = Math.max(this.#windowMs / WINDOW_FLOOR_DIVISOR, this.#currentMs / 2);
    if (this.#pinned && this.#cancelUnpin === undefined) this.#cancelUnpin = this.#ports.later?.(this.#unpin, PIN_LINGER_MS);
  }

  readonly #unpin = (): void => {
    this.#cancelUnpin = undefined;
    if (!this.#pinned) return;
    this.#pinned = false;
    this.#ports.unpin?.();
  };

  constructor(windowUs: number, ports: BusyPollPorts) {
    this.#ports = ports;
    this.setWindow(windowUs);
  }

  get windowUs(): number {
    return this.#windowMs * 1000;
  }

  /** Changes the window from the next poke on (0: off, the loop blocks as soon as the current window ends). */
  setWindow(windowUs: number): void {
    if (!Number.isFinite(windowUs) || windowUs < 0 || windowUs > BUSY_POLL_US_MAX) throw new RangeError(`busy-poll window must be in [0, ${BUSY_POLL_US_MAX}] µs, got ${windowUs}`);
    this.#windowMs = windowUs / 1000;
    this.#currentMs = this.#windowMs;
  }

  /** Traffic now: keep the loop turning for the current window from now. */
  poke(): void {
    if (this.#windowMs === 0) return;
    if (this.#spinning && !this.#caught) {
      this.#caught = true;
      this.#currentMs = Math.min(this.#windowMs, this.#currentMs * 2);
      this.#pin();
    }
    const now = this.#ports.nowMs();
    if (!this.#spinning && now - this.#endedMs < this.#windowMs) this.#currentMs = this.#windowMs; // a near miss
    this.#until = now + this.#currentMs;
    if (this.#spinning) return;
    this.#spinning = true;
    this.#caught = false;
    this.#windows++;
    this.#ports.immediate(this.#turn);
  }

  /** Stops spinning now and unpins (shutdown); a later poke starts again. */
  stop(): void {
    this.#until = 0;
    this.#cancelUnpin?.();
    this.#unpin();
  }

  /** A ping-pong: pinned home until the loop has been idle for PIN_LINGER_MS (with `pin` and `later` ports). */
  #pin(): void {
    if (this.#ports.pin === undefined || this.#ports.later === undefined) return;
    this.#cancelUnpin?.();
    this.#cancelUnpin = undefined;
    if (this.#pinned) return;
    this.#pinned = true;
    this.#pins++;
    this.#ports.pin();
  }

  /** `windows`: times the loop started spinning; `turns`: empty loop turns it spent doing so; `pins`: windows that pinned the process home; `currentUs`: the window now. */
  stats(): { windows: number; turns: number; pins: number; pinned: boolean; currentUs: number } {
    return { windows: this.#windows, turns: this.#turns, pins: this.#pins, pinned: this.#pinned, currentUs: this.#currentMs * 1000 };
  }
}
