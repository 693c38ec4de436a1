import { SeededRandom } from './random.js';
import type { Clock, Ports, TimerHandle, Timers } from './types.js';

interface VirtualEvent {
  atMs: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Default bound on events one `run` may execute: a runaway feedback loop fails loudly instead of hanging. */
export const DEFAULT_RUN_EVENTS_MAX = 10_000_000;

/**
 * Virtual time: a discrete-event loop. Timers fire in (time, insertion order), time jumps to the next
 * event, and between two events every pending promise continuation runs (see flushMicrotasks), so async actor code sees exactly the interleaving it would see for real.
 * The same seed and the same inputs give the same order of events every time.
 */
export class VirtualTime implements Clock, Timers {
  #now = 0;
  #seq = 0;
  #heap: VirtualEvent[] = [];
  #executed = 0;

  nowMs(): number {
    return this.#now;
  }

  get eventsExecuted(): number {
    return this.#executed;
  }

  get pending(): number {
    return this.#heap.length;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const ev: VirtualEvent = { atMs: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#push(ev);
    return { cancel: () => { ev.cancelled = true; } };
  }

  defer(fn: () => void): void {
    this.setTimeout(fn, 0);
  }

  /** Runs events until none is left (or `untilMs` is reached, or `eventsMax` ran). Returns events run. */
  async run(options: { untilMs?: number; eventsMax?: number } = {}): Promise<number> {
    const until = options.untilMs ?? Infinity;
    const max = options.eventsMax ?? DEFAULT_RUN_EVENTS_MAX;
    let ran = 0;
    // Every run turns the real loop at least once: callers that pump time in a loop (advance(1) until
    // something happens) must not starve the process's own I/O and timers.
    await yieldToLoop();
    for (;;) {
      const ev = this.#peek();
      if (ev === undefined || ev.atMs > until) break;
      if (ran >= max) throw new Error(`virtual time: more than ${max} events in one run (a feedback loop?)`);
      this.#pop();
      if (ev.cancelled) continue;
      this.#now = ev.atMs;
      ran++;
      this.#executed++;
      ev.fn();
      await (ran % EVENTS_PER_LOOP_TURN === 0 ? yieldToLoop() : flushMicrotasks());
    }
    if (until !== Infinity && until > this.#now) this.#now = until;
    return ran;
  }

  /** Advances virtual time by `ms`, running everything due on the way. */
  advance(ms: number): Promise<number> {
    return this.run({ untilMs: this.#now + ms });
  }

  #peek(): VirtualEvent | undefined {
    return this.#heap[0];
  }

  // A binary min-heap on (atMs, seq): O(log n) per timer, and ties keep insertion order. Sift with a
  // hole instead of swapping pairs (a destructuring swap allocates on this hot path).
  #push(ev: VirtualEvent): void {
    const h = this.#heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!before(ev, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = ev;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      if (!before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

function before(a: VirtualEvent, b: VirtualEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

/**
 * Resolves after every microtask queued so far (and those they queue) has run. A nextTick queued from
 * a microtask runs only once V8's microtask queue is empty (Node drains it before the tick queue), so
 * this costs no turn of the real event loop — a setImmediate per event cost a third of a simulation.
 */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

/** Like flushMicrotasks, and lets the real event loop turn once (I/O, signals, progress bars). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Events run between two real event-loop turns: the simulation never starves the process's own I/O. */
export const EVENTS_PER_LOOP_TURN = 256;

export interface VirtualPorts extends Ports {
  time: VirtualTime;
  random: SeededRandom;
}

export function virtualPorts(seed: number): VirtualPorts {
  const time = new VirtualTime();
  return { time, clock: time, timers: time, random: new SeededRandom(seed) };
}
