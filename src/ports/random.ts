import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Random } from './types.js';

/**
 * A seeded PRNG (xoroshiro128+ from pure-rand). The same seed yields the same sequence on every
 * machine, which is what lets a simulation seed replay a run event for event.
 */
export class SeededRandom implements Random {
  readonly #rng: ReturnType<typeof xoroshiro128plus>;

  constructor(readonly seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.#rng = xoroshiro128plus(seed);
  }

  next(): number {
    // 32 random bits scaled to [0, 1); next() mutates the generator in place, so no allocation per draw.
    return (this.#rng.next() >>> 0) / 4294967296;
  }

  int(n: number): number {
    if (!(n > 0) || !Number.isInteger(n)) throw new RangeError(`int(n) needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** An independent stream derived from this one, for giving each node its own PRNG in a simulation. */
  fork(): SeededRandom {
    return new SeededRandom(this.int(0x7fffffff));
  }
}
