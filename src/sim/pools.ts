import { Ownership } from '../datapath/ownership.js';
import { Pool, type Allocation } from '../datapath/pool.js';

/** Bytes of each simulated (node, realm) pool: small, since sim procs hold a few small buffers. */
export const SIM_POOL_BYTES = 384 * 1024;
const LAYOUT = { classes: [{ sizeBytes: 256, slots: 256 }, { sizeBytes: 4096, slots: 48 }], largeBytes: 64 * 1024 };

/** A buffer the pool still counts as live, with the owner the pool itself names. */
export interface LiveBuffer {
  pool: string;
  offset: number;
  owner: number;
  pid: string | undefined;
}

/**
 * The data path's buffer ownership, run for real (src/datapath Pool and Ownership over an ArrayBuffer
 * instead of a memfd) for the simulated hosts: one pool per (node, realm); every sim proc gets an owner
 * id, allocates buffers as it starts and frees them as it ends; when a host dies, the node side
 * reclaims what its procs held. Invariants ask the pools, not this bookkeeping, who still owns what.
 */
export class SimPools {
  readonly #pools = new Map<string, Ownership>();
  /** owner id -> proc pid; owners are never reused within a run. */
  readonly #owners = new Map<number, string>();
  /** Every allocation ever made, per pool, so the pool can be asked about each one at the end. */
  readonly #allocs = new Map<string, Allocation[]>();
  #nextOwner = 1;
  /** Mutant 'leak-buffer': reclamation skips one dead owner (the first that holds something). */
  leakOne = false;
  allocated = 0;
  reclaimed = 0;

  pool(node: string, realm: string): Ownership {
    const key = `${node}/${realm}`;
    let o = this.#pools.get(key);
    if (o === undefined) {
      const p = Pool.format(new ArrayBuffer(SIM_POOL_BYTES), LAYOUT);
      if (p._tag === 'Left') throw p.left;
      o = new Ownership(p.right);
      this.#pools.set(key, o);
      this.#allocs.set(key, []);
    }
    return o;
  }

  owner(pid: string): number {
    const id = this.#nextOwner++;
    this.#owners.set(id, pid);
    return id;
  }

  alloc(node: string, realm: string, owner: number, lengthBytes: number): Allocation | undefined {
    const a = this.pool(node, realm).pool.alloc(owner, lengthBytes);
    if (a._tag === 'Left') return undefined;
    this.#allocs.get(`${node}/${realm}`)!.push(a.right);
    this.allocated++;
    return a.right;
  }

  free(node: string, realm: string, owner: number, a: Allocation): boolean {
    return this.pool(node, realm).release({ offset: a.offset, length: a.lengthBytes, generation: a.generation }, owner)._tag === 'Right';
  }

  /** Node-side reclamation of what dead owners held; returns the buffers given back. */
  reclaim(node: string, realm: string, owners: readonly number[]): number {
    const o = this.pool(node, realm);
    let n = 0;
    for (const id of owners) {
      if (this.leakOne && this.#holds(`${node}/${realm}`, id)) {
        this.leakOne = false;
        continue;
      }
      n += o.reclaim(id).buffers;
    }
    this.reclaimed += n;
    return n;
  }

  #holds(key: string, owner: number): boolean {
    const pool = this.#pools.get(key)!.pool;
    return this.#allocs.get(key)!.some((a) => {
      const i = pool.inspect(a.offset, a.lengthBytes);
      return i._tag === 'Right' && i.right.owner === owner && i.right.generation === a.generation;
    });
  }

  /** Every buffer still live, as the pools see it, and each pool's own consistency audit. */
  live(): { buffers: LiveBuffer[]; problems: string[] } {
    const buffers: LiveBuffer[] = [];
    const problems: string[] = [];
    for (const [key, o] of this.#pools) {
      const seen = new Set<number>();
      for (const a of this.#allocs.get(key)!) {
        if (seen.has(a.offset)) continue;
        const i = o.pool.inspect(a.offset, a.lengthBytes);
        if (i._tag === 'Right' && i.right.owner !== 0) {
          seen.add(a.offset);
          buffers.push({ pool: key, offset: a.offset, owner: i.right.owner, pid: this.#owners.get(i.right.owner) });
        }
      }
      const used = o.pool.stats().classes.reduce((s, c) => s + c.live, 0) + o.pool.stats().large.pagesLive;
      if (used < seen.size) problems.push(`pool ${key}: stats count ${used} live buffers, ${seen.size} found`);
      for (const p of o.pool.audit()) problems.push(`pool ${key}: ${p}`);
    }
    return { buffers, problems };
  }
}
