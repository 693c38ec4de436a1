import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { AllocTooLargeError, DescriptorRejectedError, InvalidArgumentError, PoolExhaustedError, PoolLayoutError, stackless, type RejectReason } from './errors.js';
import { buildLayout, readLayout, SB, SB_BYTES, type LayoutOptions, type PoolLayout } from './pool-layout.js';

/**
 * A slab allocator over ONE buffer shared by every process of a realm on a node (the node manager's memfd
 * mapping; a plain or shared ArrayBuffer in tests). All allocator state lives IN the buffer, so any process
 * that maps it sees the same free lists and the same owner/generation of every buffer.
 *
 * Design (why it is safe across processes without locks):
 * - Size classes (powers of two, 256 B .. 1 MiB by default) each own a fixed region of slots, carved once by
 *   `format`. A class's free slots form a Treiber stack whose head is one u32 `tag<<indexBits | index+1`;
 *   push and pop are single compareExchanges that bump the tag, so a pop that read a stale `next` (the ABA
 *   problem) fails and retries. Static regions rather than per-owner arenas: no coordinator on the hot
 *   path, a bounded budget per class visible in `stats()`, and ownership transfer is one CAS either way.
 * - Larger objects (and small ones whose class is empty) take a contiguous run of pages: each page has a
 *   state word; a run is claimed page by page with CAS(0 -> head+1) and rolled back on conflict.
 * - Every buffer (slot, or head page of a run) has an owner word and a generation word. The owner word is
 *   the arbiter: 0 = free, an id = owned, -id = being freed by id. A buffer is handed out only by
 *   CAS(owner 0 -> id), freed only by CAS(id -> -id) and transferred only by CAS(from -> to), so two
 *   processes never own it at once — even if a tag wrap corrupts a free list, a popped slot that is not
 *   free is skipped and counted as an anomaly. The generation changes only while the owner word is negative
 *   (free bumps it), which makes "read gen, read owner, read gen" a consistent snapshot and lets transfer
 *   check the generation right after its CAS (and undo it if the buffer was freed and reused meanwhile).
 *   Everything is a signed 32-bit word: BigInt atomics cost ~4x more in V8, and so do u32 values above
 *   2^31 (they leave the small-integer fast path).
 * - Atomics on the non-shared ArrayBuffer of an external mapping are the same locked instructions as on a
 *   SharedArrayBuffer (test/datapath-pool-processes.test.ts checks it across processes).
 * Within a realm this protects against bugs and stale descriptors, not against a malicious process that
 * maps the same pool and writes the tables: the isolation boundary is the realm (one memfd per realm).
 * A process killed between a pop and publishing its owner leaks that slot; one killed inside free leaves
 * -id, which `reclaim(id)` finishes. `audit()` (on a quiescent pool) reports any leak.
 */

/** Bound on CAS retries of one push/pop: a livelock becomes a typed 'contended' error, not a hang. */
export const POOL_CAS_SPINS_MAX = 1 << 20;
/** Owner ids are 31-bit: a negated owner word marks a free in progress. */
export const OWNER_MAX = 0x7fff_ffff;

export interface Allocation {
  offset: number;
  generation: number;
  /** Bytes asked for. */
  lengthBytes: number;
  /** Bytes usable at `offset` (the slot size or the run's pages). */
  capacityBytes: number;
}

export interface ClassStats {
  sizeBytes: number;
  slots: number;
  live: number;
  bytesFree: number;
  bytesUsed: number;
}

export interface PoolStats {
  classes: ClassStats[];
  large: { pageBytes: number; pages: number; pagesLive: number; bytesFree: number; bytesUsed: number };
  bytesFree: number;
  bytesUsed: number;
  /** Slots found in an impossible state (a free-listed slot with an owner): skipped, never handed out. */
  anomalies: number;
}

/** A consistent snapshot of the buffer a valid offset names. */
export interface BufferInfo {
  unit: number;
  capacityBytes: number;
  owner: number;
  generation: number;
}

export type AllocError = PoolExhaustedError | AllocTooLargeError | InvalidArgumentError;

// Internal reject codes: numbers on the hot path, errors built only at the edge.
const R_OUT_OF_RANGE = -1;
const R_MISALIGNED = -2;
const R_NOT_LIVE = -3;
const R_STALE = -4;
const R_WRONG_OWNER = -5;
const R_TOO_LONG = -6;
const REASON_OF: Record<number, RejectReason> = {
  [R_OUT_OF_RANGE]: 'out-of-range',
  [R_MISALIGNED]: 'misaligned',
  [R_NOT_LIVE]: 'not-live',
  [R_STALE]: 'stale-generation',
  [R_WRONG_OWNER]: 'wrong-owner',
  [R_TOO_LONG]: 'too-long',
};
const DETAIL_OF: Record<RejectReason, string> = {
  'out-of-range': 'the offset is outside every buffer region of this pool',
  misaligned: 'the offset is not the start of a buffer',
  'not-live': 'the buffer is free (or being freed)',
  'stale-generation': 'the buffer was freed since this descriptor was made',
  'wrong-owner': 'the buffer belongs to someone else',
  'too-long': "the length does not fit the buffer's capacity",
};
const SNAPSHOT_TRIES_MAX = 64;

/** Generations skip 0 so a zeroed descriptor never matches. */
const nextGen = (g: number): number => (g >= 0xffff_ffff ? 1 : g + 1);

export class Pool {
  readonly layout: PoolLayout;
  readonly #sb: Int32Array;
  readonly #heads: Int32Array;
  readonly #owners: Int32Array;
  /** Generations are u32 in descriptors; stored as their int32 bit pattern (`| 0`). */
  readonly #gens: Int32Array;
  readonly #next: Int32Array;
  readonly #pageState: Int32Array;
  readonly #runPages: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #slotsTotal: number;

  private constructor(readonly buffer: ArrayBufferLike, layout: PoolLayout) {
    this.layout = layout;
    const units = layout.slotsTotal + layout.pageCount;
    this.#sb = new Int32Array(buffer, 0, SB_BYTES / 4);
    this.#heads = this.#sb;
    this.#slotsTotal = layout.slotsTotal;
    this.#owners = new Int32Array(buffer, layout.ownersOffset, units);
    this.#gens = new Int32Array(buffer, layout.gensOffset, units);
    this.#next = new Int32Array(buffer, layout.nextOffset, layout.slotsTotal);
    this.#pageState = new Int32Array(buffer, layout.pageStateOffset, layout.pageCount);
    this.#runPages = new Int32Array(buffer, layout.runPagesOffset, layout.pageCount);
    this.#bytes = new Uint8Array(buffer);
  }

  /** Lays a fresh pool over `buffer` (the node manager does this once per memfd). Erases what was there. */
  static format(buffer: ArrayBufferLike, options: LayoutOptions = {}): Either<PoolLayoutError, Pool> {
    const built = buildLayout(buffer, options);
    if (built._tag === 'Left') return built;
    const pool = new Pool(buffer, built.right);
    pool.#initialise();
    return right(pool);
  }

  /** Maps an already formatted pool (a proc host, the hub): reads the layout from the buffer itself. */
  static attach(buffer: ArrayBufferLike): Either<PoolLayoutError, Pool> {
    const layout = readLayout(buffer);
    return layout._tag === 'Left' ? layout : right(new Pool(buffer, layout.right));
  }

  #initialise(): void {
    const { classes, pageCount } = this.layout;
    this.#owners.fill(0);
    this.#gens.fill(1);
    this.#pageState.fill(0);
    this.#runPages.fill(0);
    classes.forEach((c, ci) => {
      for (let i = 0; i < c.slots; i++) this.#next[c.firstSlot + i] = i + 1 < c.slots ? i + 1 : -1;
      Atomics.store(this.#sb, SB.LIVE_BASE + ci, 0);
      Atomics.store(this.#heads, SB.HEADS_BASE + ci, c.slots > 0 ? 1 : 0);
    });
    Atomics.store(this.#sb, SB.PAGES_LIVE, 0);
    Atomics.store(this.#sb, SB.PAGE_HINT, 0);
    Atomics.store(this.#sb, SB.ANOMALIES, 0);
    if (pageCount > 0) Atomics.store(this.#pageState, 0, 0); // a fence after the plain fills
  }

  /** A buffer of at least `lengthBytes` owned by `owner` (an endpoint or host id, 1..2^31-1). */
  alloc(owner: number, lengthBytes: number): Either<AllocError, Allocation> {
    if (!isOwner(owner)) return left(new InvalidArgumentError('owner', `must be an integer in [1, ${OWNER_MAX}], got ${owner}`));
    if (!Number.isInteger(lengthBytes) || lengthBytes < 1) return left(new InvalidArgumentError('lengthBytes', `must be a positive integer, got ${lengthBytes}`));
    if (lengthBytes > this.layout.allocBytesMax) return left(new AllocTooLargeError(lengthBytes, this.layout.allocBytesMax));
    const ci = this.layout.classFor(lengthBytes);
    const cls = ci >= 0 ? this.layout.classes[ci]! : undefined;
    if (cls !== undefined && cls.slots > 0) {
      const slot = this.#popOwned(ci, owner);
      if (slot >= 0) {
        const offset = cls.dataOffset + (slot - cls.firstSlot) * cls.sizeBytes;
        return right({ offset, generation: Atomics.load(this.#gens, slot) >>> 0, lengthBytes, capacityBytes: cls.sizeBytes });
      }
      if (slot === -2) return left(stackless(() => new PoolExhaustedError(lengthBytes, cls.sizeBytes, 'contended')));
    }
    const run = this.#claimRunOwned(Math.ceil(lengthBytes / this.layout.pageBytes), owner);
    if (run !== undefined) return right({ ...run, lengthBytes });
    return left(stackless(() => new PoolExhaustedError(lengthBytes, cls?.sizeBytes ?? this.layout.pageBytes, 'empty')));
  }

  /** Frees a buffer: only its owner may, and only for the generation it holds. Bumps the generation. */
  free(owner: number, offset: number, generation: number): Either<DescriptorRejectedError, void> {
    const u = this.#resolve(offset);
    const code = u < 0 ? u : this.#release(u, owner, generation);
    return code === 0 ? right(undefined) : left(rejection(code, offset));
  }

  /**
   * Hands a live buffer from `from` to `to` (delivery of a descriptor): CAS on the owner word, then the
   * generation check, undone if the buffer was freed and reused by `from` in between.
   */
  transfer(from: number, to: number, offset: number, generation: number, lengthBytes: number): Either<DescriptorRejectedError, void> {
    const u = this.#resolve(offset);
    const code = u < 0 ? u : this.#transfer(u, from, to, generation, lengthBytes);
    return code === 0 ? right(undefined) : left(rejection(code, offset));
  }

  /** Resolves `offset` to a consistent snapshot of its buffer and checks `lengthBytes` fits. Read-only. */
  inspect(offset: number, lengthBytes: number): Either<DescriptorRejectedError, BufferInfo> {
    const u = this.#resolve(offset);
    if (u < 0) return left(rejection(u, offset));
    for (let i = 0; i < SNAPSHOT_TRIES_MAX; i++) {
      const g1 = Atomics.load(this.#gens, u);
      const owner = Atomics.load(this.#owners, u);
      const capacityBytes = this.#capacity(u);
      if (Atomics.load(this.#gens, u) !== g1) continue;
      if (owner <= 0) return left(rejection(R_NOT_LIVE, offset));
      if (!fits(lengthBytes, capacityBytes)) return left(rejection(R_TOO_LONG, offset));
      return right({ unit: u, capacityBytes, owner, generation: g1 >>> 0 });
    }
    return left(rejection(R_STALE, offset));
  }

  /**
   * Frees everything `owner` holds. For owners that are gone (a dead proc or host): it also finishes frees
   * the owner was killed in the middle of. Returns what was reclaimed.
   */
  reclaim(owner: number): { buffers: number; bytes: number } {
    return isOwner(owner) ? this.reclaimAll(new Set([owner])) : { buffers: 0, bytes: 0 };
  }

  /**
   * `reclaim` for several gone owners in one pass over the tables (a pass costs the same for one owner
   * or many: the node manager batches the procs that exited within a moment).
   */
  reclaimAll(owners: ReadonlySet<number>): { buffers: number; bytes: number } {
    const out = { buffers: 0, bytes: 0 };
    const take = (u: number): void => {
      const o = Atomics.load(this.#owners, u);
      if (o === 0 || !owners.has(o > 0 ? o : -o) || !isOwner(o > 0 ? o : -o)) return;
      const cap = this.#capacity(u);
      if (o > 0) {
        if (this.#release(u, o, Atomics.load(this.#gens, u) >>> 0) !== 0) return;
      } else this.#finishFree(u, -o);
      out.buffers++;
      out.bytes += cap;
    };
    for (let u = 0; u < this.#slotsTotal; u++) take(u);
    for (let p = 0; p < this.layout.pageCount; p++) if (Atomics.load(this.#pageState, p) === p + 1) take(this.#slotsTotal + p);
    return out;
  }

  /**
   * Buffers (slots and large-object pages) counted live. Zero means no buffer is owned, except one whose
   * owner was killed between the two atomics of an allocation or a free: callers that reclaim after a
   * process died must scan anyway (reclaimAll); after a clean exit a zero lets them skip the scan.
   */
  unitsLive(): number {
    let n = Atomics.load(this.#sb, SB.PAGES_LIVE);
    for (let ci = 0; ci < this.layout.classes.length; ci++) n += Atomics.load(this.#sb, SB.LIVE_BASE + ci);
    return n;
  }

  /** A view of pool bytes (no copy). Callers get offsets from validated descriptors or their allocations. */
  bytes(offset: number, lengthBytes: number): Uint8Array {
    return this.#bytes.subarray(offset, offset + lengthBytes);
  }

  stats(): PoolStats {
    const classes = this.layout.classes.map((c, ci) => {
      const live = Atomics.load(this.#sb, SB.LIVE_BASE + ci);
      return { sizeBytes: c.sizeBytes, slots: c.slots, live, bytesUsed: live * c.sizeBytes, bytesFree: (c.slots - live) * c.sizeBytes };
    });
    const { pageBytes, pageCount } = this.layout;
    const pagesLive = Atomics.load(this.#sb, SB.PAGES_LIVE);
    const large = { pageBytes, pages: pageCount, pagesLive, bytesUsed: pagesLive * pageBytes, bytesFree: (pageCount - pagesLive) * pageBytes };
    const sum = (k: 'bytesFree' | 'bytesUsed'): number => classes.reduce((a, c) => a + c[k], large[k]);
    return { classes, large, bytesFree: sum('bytesFree'), bytesUsed: sum('bytesUsed'), anomalies: Atomics.load(this.#sb, SB.ANOMALIES) };
  }

  /**
   * Cross-checks every table (free lists, owner words, page runs, counters). Only meaningful while no
   * process allocates or frees. Returns the problems found; empty means consistent.
   */
  audit(): string[] {
    const problems: string[] = [];
    this.layout.classes.forEach((c, ci) => {
      const seen = new Set<number>();
      let rel = (Atomics.load(this.#heads, SB.HEADS_BASE + ci) & mask(c.indexBits)) - 1;
      while (rel >= 0 && seen.size <= c.slots) {
        const u = c.firstSlot + rel;
        if (rel >= c.slots) { problems.push(`class ${c.sizeBytes}: free list reaches foreign slot ${rel}`); break; }
        if (seen.has(u)) { problems.push(`class ${c.sizeBytes}: free list has a cycle at ${rel}`); break; }
        seen.add(u);
        if (Atomics.load(this.#owners, u) !== 0) problems.push(`class ${c.sizeBytes}: slot ${rel} is free-listed but owned`);
        rel = Atomics.load(this.#next, u);
      }
      let live = 0;
      for (let u = c.firstSlot; u < c.firstSlot + c.slots; u++) if (Atomics.load(this.#owners, u) !== 0) live++;
      const counted = Atomics.load(this.#sb, SB.LIVE_BASE + ci);
      if (live !== counted) problems.push(`class ${c.sizeBytes}: ${live} owned slots but the live counter says ${counted}`);
      if (live + seen.size !== c.slots) problems.push(`class ${c.sizeBytes}: ${live} live + ${seen.size} free != ${c.slots} slots (leaked slots)`);
    });
    this.#auditPages(problems);
    return problems;
  }

  #auditPages(problems: string[]): void {
    let pagesLive = 0;
    for (let p = 0; p < this.layout.pageCount; ) {
      const s = Atomics.load(this.#pageState, p);
      if (s === 0) { p++; continue; }
      const k = Atomics.load(this.#runPages, p);
      if (s !== p + 1 || k < 1) { problems.push(`page ${p}: state ${s} is not the head of a run`); p++; continue; }
      if (Atomics.load(this.#owners, this.#slotsTotal + p) === 0) problems.push(`page ${p}: run claimed but never published (leaked)`);
      for (let j = p; j < p + k; j++) if (Atomics.load(this.#pageState, j) !== p + 1) problems.push(`page ${j}: not part of run ${p}`);
      pagesLive += k;
      p += k;
    }
    const counted = Atomics.load(this.#sb, SB.PAGES_LIVE);
    if (pagesLive !== counted) problems.push(`large: ${pagesLive} pages in runs but the counter says ${counted}`);
  }

  // --- internals -------------------------------------------------------------------------------------

  /** Pops a slot of class `ci` and publishes `owner`. Returns the unit, -1 if empty, -2 if contended. */
  #popOwned(ci: number, owner: number): number {
    const c = this.layout.classes[ci]!;
    const bits = c.indexBits;
    const m = mask(bits);
    const hi = SB.HEADS_BASE + ci;
    for (let tries = 0; tries < POOL_CAS_SPINS_MAX; tries++) {
      const h = Atomics.load(this.#heads, hi);
      const rel = (h & m) - 1;
      if (rel < 0) return -1;
      const u = c.firstSlot + rel;
      const next = Atomics.load(this.#next, u);
      if (Atomics.compareExchange(this.#heads, hi, h, withTag(h, bits, next + 1)) !== h) continue;
      if (Atomics.compareExchange(this.#owners, u, 0, owner) !== 0) {
        Atomics.add(this.#sb, SB.ANOMALIES, 1); // a free-listed slot that is owned: never hand it out twice
        continue;
      }
      Atomics.add(this.#sb, SB.LIVE_BASE + ci, 1);
      return u;
    }
    return -2;
  }

  #push(ci: number, u: number): void {
    const c = this.layout.classes[ci]!;
    const hi = SB.HEADS_BASE + ci;
    for (let tries = 0; tries < POOL_CAS_SPINS_MAX; tries++) {
      const h = Atomics.load(this.#heads, hi);
      Atomics.store(this.#next, u, (h & mask(c.indexBits)) - 1);
      if (Atomics.compareExchange(this.#heads, hi, h, withTag(h, c.indexBits, u - c.firstSlot + 1)) === h) return;
    }
    Atomics.add(this.#sb, SB.ANOMALIES, 1); // livelocked: leak the slot rather than hang (audit() reports it)
  }

  /** Claims `k` contiguous pages (next fit, bounded scan) and publishes `owner` on the head page. */
  #claimRunOwned(k: number, owner: number): Omit<Allocation, 'lengthBytes'> | undefined {
    const n = this.layout.pageCount;
    if (k > n) return undefined;
    let p = Atomics.load(this.#sb, SB.PAGE_HINT) % Math.max(1, n);
    for (let scanned = 0; scanned < 2 * n; ) {
      if (p + k > n) { scanned += n - p; p = 0; continue; }
      let j = p;
      while (j < p + k && Atomics.compareExchange(this.#pageState, j, 0, p + 1) === 0) j++;
      if (j === p + k) {
        Atomics.store(this.#runPages, p, k);
        const u = this.#slotsTotal + p;
        if (Atomics.compareExchange(this.#owners, u, 0, owner) !== 0) {
          Atomics.add(this.#sb, SB.ANOMALIES, 1); // leave the run claimed: audit() reports it
          return undefined;
        }
        Atomics.add(this.#sb, SB.PAGES_LIVE, k);
        Atomics.store(this.#sb, SB.PAGE_HINT, (p + k) % n);
        return { offset: this.layout.largeOffset + p * this.layout.pageBytes, generation: Atomics.load(this.#gens, u) >>> 0, capacityBytes: k * this.layout.pageBytes };
      }
      for (let r = j - 1; r >= p; r--) Atomics.store(this.#pageState, r, 0);
      scanned += j - p + 1;
      p = j + 1;
    }
    return undefined;
  }

  /**
   * Frees unit `u` held by (owner, generation). Returns 0 or a negative reject code.
   *
   * The generation is checked BEFORE the owner word is claimed: a stale descriptor of a buffer its owner
   * holds again under a newer generation (a slot reused at once: the free lists are LIFO) must not touch
   * the owner word. Claiming first and undoing after made the buffer look free (-owner) for a moment, and
   * whatever another process did to it then failed: the node's channel freeing a forwarded buffer it had
   * sent (left owned for good), a receiver accepting it (dropped, left with its sender). Stale frees come
   * in volume (Endpoint.closeDestination frees its ring of recent sends), so chaos runs leaked a buffer.
   * What is left is a real race (freed and reused by the same owner between the check and the claim),
   * which the check after the claim still catches.
   */
  #release(u: number, owner: number, generation: number): number {
    if (Atomics.load(this.#gens, u) !== (generation | 0)) return R_STALE;
    const o = Atomics.compareExchange(this.#owners, u, owner, -owner);
    if (o !== owner) return this.#classify(u, o, generation);
    if (Atomics.load(this.#gens, u) !== (generation | 0)) {
      Atomics.store(this.#owners, u, owner);
      return R_STALE;
    }
    this.#finishFree(u, owner);
    return 0;
  }

  /** Completes a free whose owner word is -owner: new generation, owner 0, back on the free list. */
  #finishFree(u: number, owner: number): void {
    Atomics.store(this.#gens, u, nextGen(Atomics.load(this.#gens, u) >>> 0) | 0);
    if (u < this.#slotsTotal) {
      const ci = this.layout.classOfSlot(u);
      Atomics.sub(this.#sb, SB.LIVE_BASE + ci, 1);
      Atomics.compareExchange(this.#owners, u, -owner, 0);
      this.#push(ci, u);
    } else {
      const p = u - this.#slotsTotal;
      const k = Atomics.load(this.#runPages, p);
      Atomics.sub(this.#sb, SB.PAGES_LIVE, k);
      Atomics.compareExchange(this.#owners, u, -owner, 0);
      for (let j = p + k - 1; j >= p; j--) Atomics.store(this.#pageState, j, 0);
    }
  }

  #transfer(u: number, from: number, to: number, generation: number, lengthBytes: number): number {
    if (!isOwner(to)) return R_WRONG_OWNER;
    if (!fits(lengthBytes, this.#capacity(u))) return R_TOO_LONG;
    // As in #release: a stale descriptor never moves the owner word, not even for a moment.
    if (Atomics.load(this.#gens, u) !== (generation | 0)) return R_STALE;
    const o = Atomics.compareExchange(this.#owners, u, from, to);
    if (o !== from) return this.#classify(u, o, generation);
    if (Atomics.load(this.#gens, u) === (generation | 0)) return 0;
    Atomics.compareExchange(this.#owners, u, to, from); // the sender freed and reused it: give it back
    return R_STALE;
  }

  /** Why an owner CAS failed, from the owner word found and the current generation. */
  #classify(u: number, found: number, generation: number): number {
    if (Atomics.load(this.#gens, u) !== (generation | 0)) return R_STALE;
    return found <= 0 ? R_NOT_LIVE : R_WRONG_OWNER;
  }

  /** Offset -> unit index (slot, or head page of a run), or a negative reject code. */
  #resolve(offset: number): number {
    const L = this.layout;
    if (!Number.isInteger(offset) || offset < L.dataOffset || offset >= L.endOffset) return R_OUT_OF_RANGE;
    if (offset >= L.largeOffset) {
      const rel = offset - L.largeOffset;
      if (rel % L.pageBytes !== 0) return R_MISALIGNED;
      const p = rel / L.pageBytes;
      const s = Atomics.load(this.#pageState, p);
      if (s === 0) return R_NOT_LIVE;
      return s === p + 1 ? this.#slotsTotal + p : R_MISALIGNED;
    }
    for (const c of L.classes) {
      const rel = offset - c.dataOffset;
      if (rel < 0 || rel >= c.slots * c.sizeBytes) continue;
      return rel % c.sizeBytes === 0 ? c.firstSlot + rel / c.sizeBytes : R_MISALIGNED;
    }
    return R_OUT_OF_RANGE;
  }

  #capacity(u: number): number {
    if (u < this.#slotsTotal) return this.layout.classes[this.layout.classOfSlot(u)]!.sizeBytes;
    return Atomics.load(this.#runPages, u - this.#slotsTotal) * this.layout.pageBytes;
  }
}

function rejection(code: number, offset: number): DescriptorRejectedError {
  const reason = REASON_OF[code] ?? 'out-of-range';
  return stackless(() => new DescriptorRejectedError(reason, offset, DETAIL_OF[reason]));
}

function isOwner(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= OWNER_MAX;
}

function fits(lengthBytes: number, capacityBytes: number): boolean {
  return Number.isInteger(lengthBytes) && lengthBytes >= 0 && lengthBytes <= capacityBytes;
}

function mask(bits: number): number {
  return bits >= 31 ? 0x7fff_ffff : (1 << bits) - 1;
}

/** A new head word: `value` in the index bits, the old tag + 1 above them (wrapping). */
function withTag(h: number, bits: number, value: number): number {
  return (((h >>> bits) + 1) << bits) | value; // bits <= 31 (slots <= 2^30); the tag wraps
}
