/**
 * Ports: everything an actor takes from the outside world. Production binds them to the real world
 * (real.ts); the simulator binds them to a discrete-event loop with virtual time and a seeded PRNG
 * (virtual.ts). Actor code never reads Date.now, Math.random or setTimeout directly — replay depends on it.
 */

/** Wall-clock-ish time in milliseconds (fractional allowed). Monotonic in both bindings. */
export interface Clock {
  nowMs(): number;
}

/** A cancellable one-shot timer. */
export interface TimerHandle {
  cancel(): void;
}

/** Timers and deferred work. `defer` runs after already-queued work (a macrotask), never re-entrantly. */
export interface Timers {
  setTimeout(fn: () => void, delayMs: number): TimerHandle;
  defer(fn: () => void): void;
}

/** Seedable randomness. `next` is uniform in [0, 1). */
export interface Random {
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/** Every port a system needs, bundled so one object can be injected. */
export interface Ports {
  clock: Clock;
  timers: Timers;
  random: Random;
}
