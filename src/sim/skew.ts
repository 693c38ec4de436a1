import type { Clock, Ports, Random, TimerHandle, Timers } from '../ports/types.js';

/** Bound on how far a skewed clock may run fast or slow (rate 1 ± this). Past it, leases cannot hold. */
export const SKEW_RATE_DEVIATION_MAX = 0.5;

/**
 * One node's view of time: the world's virtual clock seen through an offset and a rate, so each node
 * can be skewed on its own (fault 'clock-skew'). Its timers run on the same clock: a timer of `d` ms
 * on a clock running at rate r fires after d / r world ms. Monotonic: a rate change keeps the reading
 * continuous and an offset may only jump forward.
 */
export class SkewedClock implements Clock, Timers {
  #baseWorldMs: number;
  #baseMs: number;
  #rate = 1;

  constructor(
    private readonly world: Clock & Timers,
    offsetMs = 0,
  ) {
    this.#baseWorldMs = world.nowMs();
    this.#baseMs = this.#baseWorldMs + offsetMs;
  }

  get rate(): number {
    return this.#rate;
  }

  nowMs(): number {
    const w = this.world.nowMs();
    return this.#rate === 1 ? w + (this.#baseMs - this.#baseWorldMs) : this.#baseMs + (w - this.#baseWorldMs) * this.#rate;
  }

  /** Jumps `offsetMs` (>= 0) forward and runs at `rate` from now on. */
  skew(offsetMs: number, rate: number): void {
    if (!(offsetMs >= 0)) throw new RangeError(`a clock may only jump forward, got offset ${offsetMs} ms`);
    if (!(Math.abs(rate - 1) <= SKEW_RATE_DEVIATION_MAX)) throw new RangeError(`clock rate must be within 1 ± ${SKEW_RATE_DEVIATION_MAX}, got ${rate}`);
    this.#baseMs = this.nowMs() + offsetMs;
    this.#baseWorldMs = this.world.nowMs();
    this.#rate = rate;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    return this.world.setTimeout(fn, this.#rate === 1 ? delayMs : delayMs / this.#rate);
  }

  defer(fn: () => void): void {
    this.world.defer(fn);
  }

  ports(random: Random): Ports {
    return { clock: this, timers: this, random };
  }
}
