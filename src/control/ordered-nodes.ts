import { assert } from '../assert.js';

/**
 * Nodes kept in key order (a number, then a tie-breaker) with two amounts each (`x`, `y`, e.g. free
 * mcpu and memory), for placement without a scan over every node: `first(lo, needX, needY)` is the
 * first node in key order whose key is at least `lo` and whose amounts cover the need.
 *
 * A treap: each subtree knows the largest `x` and `y` inside it, so the search skips every subtree
 * where nothing is big enough. When `x` is the key itself (LC best fit: key = free mcpu) a subtree the
 * search enters always holds an answer, and a query is O(log n). When the key is something else (BE:
 * key = procs running) a subtree whose largest `x` and largest `y` belong to different nodes is
 * entered in vain: O(log n) as long as nodes short of mcpu and nodes short of memory do not interleave
 * in key order, at worst the scan it replaces. Updates are O(log n).
 *
 * Priorities come from a fixed xorshift sequence, not Math.random: the tree's shape then depends only
 * on the order of updates (the answers never depend on the shape), so a simulator run replays exactly.
 */
export type Tie = number | string;

interface TreapNode {
  readonly id: string;
  readonly key: number;
  readonly tie: Tie;
  readonly x: number;
  readonly y: number;
  readonly prio: number;
  left: TreapNode | undefined;
  right: TreapNode | undefined;
  maxX: number;
  maxY: number;
}

export interface OrderedEntry {
  id: string;
  key: number;
  tie: Tie;
  x: number;
  y: number;
}

function before(a: { key: number; tie: Tie }, b: { key: number; tie: Tie }): boolean {
  return a.key < b.key || (a.key === b.key && a.tie < b.tie);
}

function pull(t: TreapNode): TreapNode {
  t.maxX = Math.max(t.x, t.left?.maxX ?? -Infinity, t.right?.maxX ?? -Infinity);
  t.maxY = Math.max(t.y, t.left?.maxY ?? -Infinity, t.right?.maxY ?? -Infinity);
  return t;
}

/** Splits `t` into the nodes ordered before `k` and the rest. */
function split(t: TreapNode | undefined, k: { key: number; tie: Tie }): [TreapNode | undefined, TreapNode | undefined] {
  if (t === undefined) return [undefined, undefined];
  if (before(t, k)) {
    const [l, r] = split(t.right, k);
    t.right = l;
    return [pull(t), r];
  }
  const [l, r] = split(t.left, k);
  t.left = r;
  return [l, pull(t)];
}

/** Joins two treaps, every node of `a` ordered before every node of `b`. */
function merge(a: TreapNode | undefined, b: TreapNode | undefined): TreapNode | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.prio > b.prio) {
    a.right = merge(a.right, b);
    return pull(a);
  }
  b.left = merge(a, b.left);
  return pull(b);
}

/** `t` without node `k` (found by its key: keys are unique, the tie-breaker is). */
function remove(t: TreapNode | undefined, k: TreapNode): TreapNode | undefined {
  assert(t !== undefined, `node ${k.id} is in the treap`);
  if (t === k) return merge(t.left, t.right);
  if (before(k, t)) t.left = remove(t.left, k);
  else t.right = remove(t.right, k);
  return pull(t);
}

function first(t: TreapNode | undefined, lo: number, needX: number, needY: number): TreapNode | undefined {
  if (t === undefined || t.maxX < needX || t.maxY < needY) return undefined;
  if (t.key < lo) return first(t.right, lo, needX, needY);
  return first(t.left, lo, needX, needY) ?? (t.x >= needX && t.y >= needY ? t : first(t.right, lo, needX, needY));
}

export class OrderedNodes {
  #root: TreapNode | undefined;
  readonly #byId = new Map<string, TreapNode>();
  #rand = 0x2545f491;

  get size(): number {
    return this.#byId.size;
  }

  /** Adds `e.id`, or moves it to its new key and amounts. */
  set(e: OrderedEntry): void {
    const cur = this.#byId.get(e.id);
    if (cur !== undefined && cur.key === e.key && cur.tie === e.tie && cur.x === e.x && cur.y === e.y) return;
    this.delete(e.id);
    const t: TreapNode = { id: e.id, key: e.key, tie: e.tie, x: e.x, y: e.y, prio: this.#nextPrio(), left: undefined, right: undefined, maxX: e.x, maxY: e.y };
    const [l, r] = split(this.#root, t);
    this.#root = merge(merge(l, t), r);
    this.#byId.set(e.id, t);
  }

  delete(id: string): void {
    const t = this.#byId.get(id);
    if (t === undefined) return;
    this.#byId.delete(id);
    this.#root = remove(this.#root, t);
  }

  /** The first node in key order with key >= lo, x >= needX and y >= needY. */
  first(lo: number, needX: number, needY: number): string | undefined {
    return first(this.#root, lo, needX, needY)?.id;
  }

  /** The first and the last node in key order. */
  min(): OrderedEntry | undefined {
    let t = this.#root;
    while (t?.left !== undefined) t = t.left;
    return t;
  }

  max(): OrderedEntry | undefined {
    let t = this.#root;
    while (t?.right !== undefined) t = t.right;
    return t;
  }

  /** Every entry in key order (tests: the index against a plain scan). */
  entries(): OrderedEntry[] {
    const out: OrderedEntry[] = [];
    const walk = (t: TreapNode | undefined): void => {
      if (t === undefined) return;
      walk(t.left);
      out.push({ id: t.id, key: t.key, tie: t.tie, x: t.x, y: t.y });
      walk(t.right);
    };
    walk(this.#root);
    return out;
  }

  #nextPrio(): number {
    let x = this.#rand;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rand = x >>> 0;
    return this.#rand;
  }
}
