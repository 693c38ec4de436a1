import { assert } from '../assert.js';
import { OrderedNodes } from './ordered-nodes.js';

/**
 * The scheduler's bookkeeping, pure and synchronous: node capacities, LC reservations, and per-realm
 * BE queues served round-robin. The scheduler actor owns one instance; the simulator checks it.
 */

export interface NodeCapacity {
  id: string;
  mcpu: number;
  memMb: number;
}

export interface Demand {
  pid: string;
  mcpu: number;
  memMb: number;
}

export type Placement = { kind: 'placed'; node: string } | { kind: 'never-fits'; reason: string } | { kind: 'no-room-now' };

/** Upper bound on queued BE procs per realm; past it spawn is refused (backpressure, not growth). */
export const BE_QUEUE_MAX_PER_REALM = 100_000;
/** Upper bound on LC procs waiting for room across the cluster. */
export const LC_PENDING_MAX = 10_000;

export class QueueFullError extends Error {
  readonly type = 'queue-full';
  constructor(readonly realm: string, readonly max: number) {
    super(`realm ${realm} already has ${max} best-effort procs queued; wait for some to finish or add nodes`);
    this.name = 'QueueFullError';
  }
}

interface NodeState extends NodeCapacity {
  usedMcpu: number;
  usedMemMb: number;
  /** pid -> demand placed here (LC reservations and running BE procs alike). */
  procs: Map<string, Demand>;
}

export class Placements {
  readonly #nodes = new Map<string, NodeState>();
  /** pid -> node */
  readonly #where = new Map<string, string>();
  /** Simulator mutant only (src/control/mutations.ts): placement forgets what is reserved. */
  readonly #overcommit: boolean;
  /**
   * Every node by (free mcpu, id), free memory alongside: LC best fit without a scan over every node.
   * Kept in step by every change below (#changed); free mcpu is `mcpu - usedMcpu`, which orders nodes
   * as placeLc always has (`left` = free - demand) while capacities and demands are integers.
   */
  readonly #byFree = new OrderedNodes();
  /** Every node by (mcpu, id), memory alongside: whether a proc could ever fit, and the largest node. */
  readonly #byCapacity = new OrderedNodes();
  /** Told of every change to a node's capacity or reservations (the scheduler's BE index). */
  readonly #watchers: Array<(node: string) => void> = [];

  constructor(options: { overcommit?: boolean } = {}) {
    this.#overcommit = options.overcommit === true;
  }

  /** Calls `f(node)` after every change to what a node has or has free (including its removal). */
  watch(f: (node: string) => void): void {
    this.#watchers.push(f);
  }

  /** Adds or updates a node. Capacity shrinking below what is reserved is allowed (nothing new fits). */
  upsertNode(n: NodeCapacity): void {
    const cur = this.#nodes.get(n.id);
    if (cur === undefined) this.#nodes.set(n.id, { ...n, usedMcpu: 0, usedMemMb: 0, procs: new Map() });
    else Object.assign(cur, { mcpu: n.mcpu, memMb: n.memMb });
    const now = this.#nodes.get(n.id)!;
    this.#byCapacity.set({ id: n.id, key: now.mcpu, tie: n.id, x: now.mcpu, y: now.memMb });
    this.#changed(now);
  }

  /** Removes a node; returns the pids that were on it (now lost). */
  removeNode(id: string): string[] {
    const n = this.#nodes.get(id);
    if (n === undefined) return [];
    this.#nodes.delete(id);
    this.#byFree.delete(id);
    this.#byCapacity.delete(id);
    const pids = [...n.procs.keys()];
    for (const p of pids) this.#where.delete(p);
    for (const f of this.#watchers) f(id);
    return pids;
  }

  #changed(n: NodeState): void {
    const freeMcpu = n.mcpu - n.usedMcpu;
    this.#byFree.set({ id: n.id, key: freeMcpu, tie: n.id, x: freeMcpu, y: n.memMb - n.usedMemMb });
    for (const f of this.#watchers) f(n.id);
  }

  nodes(): Array<NodeCapacity & { usedMcpu: number; usedMemMb: number; procs: number }> {
    return [...this.#nodes.values()].map((n) => ({ id: n.id, mcpu: n.mcpu, memMb: n.memMb, usedMcpu: n.usedMcpu, usedMemMb: n.usedMemMb, procs: n.procs.size }));
  }

  nodeOf(pid: string): string | undefined {
    return this.#where.get(pid);
  }

  /**
   * Best fit: among nodes with room, the one that would have the least mcpu left (packs LC procs and
   * keeps large holes for large procs). Ties break on node id so placement is deterministic. Found in
   * the (free mcpu, id) index: the first node with free mcpu >= demand whose free memory suffices.
   */
  placeLc(d: Demand): Placement {
    const found = this.#overcommit ? this.#byFree.min()?.id : this.#byFree.first(d.mcpu, d.mcpu, d.memMb);
    if (found !== undefined) {
      const n = this.#nodes.get(found);
      // Cheap check that the index is not stale: what it names exists and has the room.
      assert(n !== undefined && (this.#overcommit || (n.usedMcpu + d.mcpu <= n.mcpu && n.usedMemMb + d.memMb <= n.memMb)), `LC index names ${found}, which has no room for ${d.pid}`);
      this.assign(d, found);
      return { kind: 'placed', node: found };
    }
    if (this.#byCapacity.first(d.mcpu, d.mcpu, d.memMb) === undefined) {
      const biggest = Math.max(0, this.#byCapacity.max()?.key ?? 0);
      return { kind: 'never-fits', reason: this.#nodes.size === 0 ? 'no node that runs procs is registered' : `needs ${d.mcpu} mcpu / ${d.memMb} MB; the largest node has ${biggest} mcpu` };
    }
    return { kind: 'no-room-now' };
  }

  /** Records that `d` runs on `node` (used by placeLc, by BE hand-out and by recovery from the proc table). */
  assign(d: Demand, node: string): void {
    const n = this.#nodes.get(node);
    if (n === undefined || this.#where.has(d.pid)) return;
    n.procs.set(d.pid, d);
    n.usedMcpu += d.mcpu;
    n.usedMemMb += d.memMb;
    this.#where.set(d.pid, node);
    this.#changed(n);
  }

  /** Frees what `pid` held. Idempotent: a duplicate exit report releases nothing twice. */
  release(pid: string): void {
    const node = this.#where.get(pid);
    if (node === undefined) return;
    this.#where.delete(pid);
    const n = this.#nodes.get(node);
    const d = n?.procs.get(pid);
    if (n === undefined || d === undefined) return;
    n.procs.delete(pid);
    n.usedMcpu -= d.mcpu;
    n.usedMemMb -= d.memMb;
    this.#changed(n);
  }

  /** Room on a node for best-effort work. */
  free(node: string): { mcpu: number; memMb: number } | undefined {
    const n = this.#nodes.get(node);
    return n && { mcpu: n.mcpu - n.usedMcpu, memMb: n.memMb - n.usedMemMb };
  }
}

/**
 * Best-effort procs wait per realm; hand-out goes round-robin across realms so one busy tenant cannot
 * starve another (σOS's fair share between realms).
 */
export class BeQueues<T extends { realm: string }> {
  readonly #queues = new Map<string, T[]>();
  #order: string[] = [];
  #next = 0;
  #size = 0;

  constructor(private readonly maxPerRealm = BE_QUEUE_MAX_PER_REALM) {}

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    let q = this.#queues.get(item.realm);
    if (q === undefined) {
      q = [];
      this.#queues.set(item.realm, q);
      this.#order.push(item.realm);
    }
    if (q.length >= this.maxPerRealm) throw new QueueFullError(item.realm, this.maxPerRealm);
    q.push(item);
    this.#size++;
  }

  /** The next item, visiting realms in turn, whose demand `fits`. Items that do not fit stay queued. */
  take(fits: (item: T) => boolean): T | undefined {
    const n = this.#order.length;
    for (let i = 0; i < n; i++) {
      const realm = this.#order[(this.#next + i) % n]!;
      const q = this.#queues.get(realm);
      assert(q !== undefined, `realm ${realm} is in the round-robin order, so it has a queue`);
      if (q.length === 0 || !fits(q[0]!)) continue;
      this.#next = (this.#next + i + 1) % n;
      this.#size--;
      return q.shift();
    }
    return undefined;
  }

  /** Removes and returns every queued item of a realm (realm removal) or matching a predicate. */
  remove(pred: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (const [realm, q] of this.#queues) {
      const keep = q.filter((x) => !pred(x));
      out.push(...q.filter(pred));
      this.#queues.set(realm, keep);
    }
    this.#size -= out.length;
    return out;
  }

  perRealm(): Record<string, number> {
    return Object.fromEntries([...this.#queues].map(([r, q]) => [r, q.length]));
  }
}
