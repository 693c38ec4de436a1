import { cpuAffinity } from '../../native/index.js';
import { assert } from '../../assert.js';

/**
 * Home CPUs for a node's proc hosts. A host pins itself to its home while a ping-pong keeps its busy poll
 * spinning (src/datapath/busy-poll.ts): the scheduler's wake-affine placement puts exactly the two ends of
 * a ping-pong on one CPU, and two spinners on one CPU take turns instead of running (measured here, a
 * 64 B round trip between two procs: 47-50 µs p50 left to the scheduler, 31-33 µs on two CPUs). Homes go
 * to the CPU with the fewest live hosts (the lowest-numbered among equals), so hosts started one after
 * the other get different CPUs and a freed CPU is reused first. A node with one CPU gives no homes.
 */
export class CpuHomes {
  readonly #cpus: readonly number[];
  readonly #load = new Map<number, number>();
  readonly #homes = new Map<string, number>();

  /** `cpus`: the CPUs the node may use (its own affinity). */
  constructor(cpus: readonly number[]) {
    this.#cpus = cpus.length > 1 ? [...new Set(cpus)].sort((a, b) => a - b) : [];
    for (const c of this.#cpus) this.#load.set(c, 0);
  }

  /** The home of host `hostId` (the same one when asked again), or undefined on a one-CPU node. */
  take(hostId: string): number | undefined {
    const known = this.#homes.get(hostId);
    if (known !== undefined || this.#cpus.length === 0) return known;
    let best = this.#cpus[0]!;
    for (const c of this.#cpus) if (this.#load.get(c)! < this.#load.get(best)!) best = c;
    this.#load.set(best, this.#load.get(best)! + 1);
    this.#homes.set(hostId, best);
    return best;
  }

  /** The host is gone: its CPU counts one host fewer. */
  release(hostId: string): void {
    const c = this.#homes.get(hostId);
    if (c === undefined) return;
    this.#homes.delete(hostId);
    const load = this.#load.get(c)! - 1;
    assert(load >= 0, `CPU ${c} has a negative host count`);
    this.#load.set(c, load);
  }

  /** Live hosts per CPU. */
  load(): Record<number, number> {
    return Object.fromEntries(this.#load);
  }
}

/** The CPUs this process may use; none without the addon (then no host gets a home). */
export function nodeCpus(): number[] {
  try {
    return cpuAffinity();
  } catch {
    return [];
  }
}
