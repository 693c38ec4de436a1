import { Ownership } from '../datapath/ownership.js';
import { Pool, type Allocation } from '../datapath/pool.js';

/** Bytes of each simulated (node, realm) pool: small, since sim procs hold a few small buffers. */
export const SIM_POOL_BYTES = 384 * 1024;
const LAYOUT = { classes: [{ sizeBytes: 256, slots: 256 }, { sizeBytes: 4096, slots: 48 }], largeBytes: 64 * 1024 };
/** Problems kept from pools freed with buffers still live (one bug tends to repeat). */
export const POOL_PROBLEMS_MAX = 50;

/** A buffer the pool still counts as live, with the owner the pool itself names. */
export interface LiveBuffer {
  pool: string;
  offset: number;
  owner: number;
  pid: string | undefined;
}

/**
 * One (node, realm) pool of the simulated data path: the real src/datapath Pool and Ownership over an
 * in-process ArrayBuffer (no memfd). Owners are the endpoint ids the node manager assigned; `owners`
 * maps them to the pid whose host said it runs there, so invariants can name who holds what.
 */
export class SimPool {
  readonly own: Ownership;
  /** The latest allocation at each offset, so the pool can be asked about each (the pool has no iterator); bounded by its slots. */
  readonly allocs = new Map<number, Allocation>();
  readonly owners = new Map<number, string>();

  constructor(readonly key: string) {
    const p = Pool.format(new ArrayBuffer(SIM_POOL_BYTES), LAYOUT);
    if (p._tag === 'Left') throw p.left;
    this.own = new Ownership(p.right);
  }

  get pool(): Pool {
    return this.own.pool;
  }

  alloc(owner: number, lengthBytes: number): Allocation | undefined {
    const a = this.pool.alloc(owner, lengthBytes);
    if (a._tag === 'Left') return undefined;
    this.allocs.set(a.right.offset, a.right);
    return a.right;
  }

  free(owner: number, a: Allocation): boolean {
    return this.own.release({ offset: a.offset, length: a.lengthBytes, generation: a.generation }, owner)._tag === 'Right';
  }

  /** Live buffers as the pool itself reports them (owner and generation read from its tables). */
  live(): LiveBuffer[] {
    const out: LiveBuffer[] = [];
    // Nothing counted live: no need to ask about every offset (a freed one is answered with an error).
    if (this.pool.unitsLive() === 0) return out;
    for (const a of this.allocs.values()) {
      const i = this.pool.inspect(a.offset, a.lengthBytes);
      if (i._tag === 'Right' && i.right.owner !== 0) out.push({ pool: this.key, offset: a.offset, owner: i.right.owner, pid: this.owners.get(i.right.owner) });
    }
    return out;
  }
}

/**
 * Every pool of a run, across nodes and node incarnations: the simulated data paths (src/sim/datapath.ts)
 * create and free them as the node managers decide; the invariants ask them, at the end, who still
 * holds what, and what a pool held when its node freed it (a realm's last host gone).
 */
export class SimPools {
  readonly #pools = new Set<SimPool>();
  /** Pools freed by their node while buffers were still live in them: a reclamation that missed. */
  readonly freedLive: string[] = [];
  freedLiveCount = 0;

  create(node: string, realm: string): SimPool {
    const p = new SimPool(`${node}/${realm}`);
    this.#pools.add(p);
    return p;
  }

  /** The node freed the pool (`audit`), or it vanished with its crashed node process (nothing to check). */
  retire(p: SimPool, audit: boolean): void {
    if (!this.#pools.delete(p) || !audit) return;
    const live = p.live();
    if (live.length === 0) return;
    this.freedLiveCount++;
    if (this.freedLive.length < POOL_PROBLEMS_MAX) this.freedLive.push(`pool ${p.key} was freed with ${live.length} buffers still live (first owned by ${live[0]!.pid ?? `endpoint ${live[0]!.owner}`})`);
  }

  /** Every buffer still live in a pool that exists, and each pool's own consistency audit. */
  live(): { buffers: LiveBuffer[]; problems: string[] } {
    const buffers: LiveBuffer[] = [];
    const problems: string[] = [];
    for (const p of this.#pools) {
      const mine = p.live();
      buffers.push(...mine);
      const s = p.pool.stats();
      const used = s.classes.reduce((n, c) => n + c.live, 0) + s.large.pagesLive;
      if (used < mine.length) problems.push(`pool ${p.key}: stats count ${used} live buffers, ${mine.length} found`);
      for (const a of p.pool.audit()) problems.push(`pool ${p.key}: ${a}`);
    }
    return { buffers, problems };
  }
}
