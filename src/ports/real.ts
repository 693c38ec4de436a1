import { SeededRandom } from './random.js';
import type { Clock, Ports, Random, TimerHandle, Timers } from './types.js';

/** The real world: performance.now (monotonic), Node timers, Math.random unless a seed is given. */
export const realClock: Clock = {
  nowMs: () => performance.now(),
};

export const realTimers: Timers = {
  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(t) };
  },
  defer(fn: () => void): void {
    setImmediate(fn);
  },
};

export const realRandom: Random = {
  next: () => Math.random(),
  int: (n: number) => Math.floor(Math.random() * n),
};

export function realPorts(options: { seed?: number } = {}): Ports {
  return {
    clock: realClock,
    timers: realTimers,
    random: options.seed === undefined ? realRandom : new SeededRandom(options.seed),
  };
}
