// The BE side of placement: each node's BE slots (credits), the BE procs counted there, and an index of
// the nodes with a free slot, so the least loaded node that fits is found without a scan of every node.
import { assert } from '../../assert.js';
import { OrderedNodes } from '../ordered-nodes.js';
import type { Placements } from '../placement.js';

export class BeNodes {
  /**
   * BE slots each node offers (from its pulls) and BE procs this scheduler has running there: the
   * scheduler counts for itself, so a pull racing with run orders in flight cannot over-fill a node.
   */
  readonly #credits = new Map<string, number>();
  readonly #beOn = new Map<string, number>();
  /**
   * Each node's place in #credits' iteration order (which drain() walks, and which breaks ties between
   * equally loaded nodes): a number taken when the node enters #credits, dropped when it leaves, as a
   * Map orders its keys. Setting a node's credits again keeps its place.
   */
  readonly #order = new Map<string, number>();
  #nextOrder = 0;
  /** Nodes with credits, a free BE slot and a placement entry, by (BE procs there, order); free room alongside. */
  readonly #open = new OrderedNodes();

  constructor(private readonly placements: Placements) {
    placements.watch((node) => this.refresh(node));
  }

  get credits(): ReadonlyMap<string, number> {
    return this.#credits;
  }

  get beOn(): ReadonlyMap<string, number> {
    return this.#beOn;
  }

  /** A node's BE slots, as its heartbeat states them. */
  setCredits(node: string, slots: number): void {
    if (!this.#credits.has(node)) this.#order.set(node, this.#nextOrder++);
    this.#credits.set(node, slots);
    this.refresh(node);
  }

  /** One BE proc more (delta 1) or fewer (-1) on `node`. */
  count(node: string, delta: 1 | -1): void {
    this.#beOn.set(node, (this.#beOn.get(node) ?? 0) + delta);
    this.refresh(node);
  }

  /** A node gone: its credits and its count. */
  forget(node: string): void {
    this.#credits.delete(node);
    this.#order.delete(node);
    this.#beOn.delete(node);
    this.refresh(node);
  }

  /** Puts `node` where its credits, count and free room (Placements.free) now place it, or out of the index. */
  refresh(node: string): void {
    const slots = this.#credits.get(node);
    const on = this.#beOn.get(node) ?? 0;
    const free = this.placements.free(node);
    if (slots === undefined || free === undefined || !(on < slots)) return this.#open.delete(node);
    this.#open.set({ id: node, key: on, tie: this.#order.get(node)!, x: free.mcpu, y: free.memMb });
  }

  /** Whether `node` has a free BE slot and room for the demand. */
  fits(node: string, d: { mcpu: number; memMb: number }): boolean {
    const slots = this.#credits.get(node);
    const free = this.placements.free(node);
    return slots !== undefined && (this.#beOn.get(node) ?? 0) < slots && free !== undefined && d.mcpu <= free.mcpu && d.memMb <= free.memMb;
  }

  /**
   * The least loaded node (fewest BE procs counted) with a free slot and room; ties go to the first in
   * credits order. The same node the scan over #credits this replaced chose.
   */
  leastLoaded(d: { mcpu: number; memMb: number }): string | undefined {
    const node = this.#open.first(-Infinity, d.mcpu, d.memMb);
    // Cheap check that the index is not stale: the node it names has the slot and the room.
    assert(node === undefined || this.fits(node, d), `BE index names ${node}, which has no slot or room`);
    return node;
  }

  /** The index as a plain scan would build it (tests: it must equal #open's entries). */
  check(): { indexed: string[]; scanned: string[] } {
    const indexed = this.#open.entries().map((e) => `${e.id}@${e.key}/${e.x}/${e.y}`);
    const scanned = [...this.#credits]
      .filter(([node, slots]) => (this.#beOn.get(node) ?? 0) < slots && this.placements.free(node) !== undefined)
      .map(([node]) => ({ node, on: this.#beOn.get(node) ?? 0, i: this.#order.get(node)!, free: this.placements.free(node)! }))
      .sort((a, b) => a.on - b.on || a.i - b.i)
      .map((e) => `${e.node}@${e.on}/${e.free.mcpu}/${e.free.memMb}`);
    return { indexed, scanned };
  }
}
