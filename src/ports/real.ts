import { SeededRandom } from './random.js';
import type { Clock, Ports, Random, TimerHandle, Timers } from './types.js';

/**
 * The real world: Node timers, Math.random unless a seed is given, and a clock that is monotonic
 * within a process (performance.now) yet comparable across processes of one machine (offset by the
 * process's time origin) — times written into shared records by one leader mean something to the next.
 */
export const realClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
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
