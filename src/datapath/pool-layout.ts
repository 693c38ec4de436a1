import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { PoolLayoutError } from './errors.js';

/**
 * Where everything lives in a pool buffer. The layout is written into the buffer's superblock by `format`
 * and read back (and recomputed, so a corrupted superblock is refused) by `attach` in every other process.
 *
 *   [superblock 4 KiB][owner u32 x units][generation u32 x units][next i32 x slots][page state i32 x pages]
 *   [run pages i32 x pages]
 *   [pad to 4 KiB][class regions, largest size first][pad to 4 KiB][large-object pages]
 * A unit is a class slot (0 .. slotsTotal-1) or a page (slotsTotal + page).
 */

export const POOL_MAGIC = 0x5347_504c; // "SGPL"
export const POOL_VERSION = 1;
export const SB_BYTES = 4096;
export const CLASSES_MAX = 16;
export const CLASS_BYTES_MIN = 256;
export const CLASS_BYTES_MAX = 1 << 20;
export const PAGE_BYTES_DEFAULT = 64 << 10;
/** Offsets travel as u32 in descriptors, so a pool is at most 4 GiB. */
export const POOL_BYTES_MAX = 2 ** 32;
export const LARGE_FRACTION_DEFAULT = 0.25;
const ALIGN_BYTES = 4096;
const SLOT_META_BYTES = 4 + 4 + 4; // owner + generation + next link
const PAGE_META_BYTES = 4 + 4 + 4 + 4; // owner + generation + state + run length

/** Superblock fields (Int32 / Uint32 indices) and the byte offset of the free-list heads. */
export const SB = {
  MAGIC: 0,
  VERSION: 1,
  POOL_BYTES: 2,
  CLASS_COUNT: 3,
  PAGE_BYTES: 4,
  PAGE_COUNT: 5,
  PAGE_HINT: 13,
  PAGES_LIVE: 14,
  ANOMALIES: 15,
  CLASS_BASE: 16, // 2 per class: sizeBytes, slots
  LIVE_BASE: 16 + 2 * CLASSES_MAX,
  HEADS_BASE: 128, // one u32 free-list head per class
} as const;

export interface ClassInfo {
  sizeBytes: number;
  slots: number;
  firstSlot: number;
  dataOffset: number;
  /** Low bits of this class's free-list head that hold index+1; the rest is the ABA tag. */
  indexBits: number;
}

export interface LayoutOptions {
  /** Explicit classes (strictly increasing sizes, multiples of 8). Default: powers of two 256 B .. 1 MiB. */
  classes?: Array<{ sizeBytes: number; slots: number }>;
  /** Page size of the large-object region (default 64 KiB). */
  pageBytes?: number;
  /** Bytes given to the large-object region (default: a quarter, or what the explicit classes leave). */
  largeBytes?: number;
}

export class PoolLayout {
  readonly slotsTotal: number;
  readonly ownersOffset = SB_BYTES;
  readonly gensOffset: number;
  readonly nextOffset: number;
  readonly pageStateOffset: number;
  readonly runPagesOffset: number;
  readonly dataOffset: number;
  readonly largeOffset: number;
  readonly endOffset: number;
  readonly classes: readonly ClassInfo[];
  /** The largest single allocation this pool can ever satisfy. */
  readonly allocBytesMax: number;

  constructor(readonly poolBytes: number, sizes: ReadonlyArray<{ sizeBytes: number; slots: number }>, readonly pageBytes: number, readonly pageCount: number) {
    this.slotsTotal = sizes.reduce((a, c) => a + c.slots, 0);
    this.gensOffset = this.ownersOffset + (this.slotsTotal + pageCount) * 4;
    this.nextOffset = this.gensOffset + (this.slotsTotal + pageCount) * 4;
    this.pageStateOffset = this.nextOffset + this.slotsTotal * 4;
    this.runPagesOffset = this.pageStateOffset + pageCount * 4;
    this.dataOffset = alignUp(this.runPagesOffset + pageCount * 4, ALIGN_BYTES);
    const dataOffsets: number[] = [];
    let at = this.dataOffset;
    for (let i = sizes.length - 1; i >= 0; i--) {
      dataOffsets[i] = at;
      at += sizes[i]!.slots * sizes[i]!.sizeBytes;
    }
    let first = 0;
    this.classes = sizes.map((c, i) => {
      const info = { sizeBytes: c.sizeBytes, slots: c.slots, firstSlot: first, dataOffset: dataOffsets[i]!, indexBits: Math.max(1, Math.ceil(Math.log2(c.slots + 1))) };
      first += c.slots;
      return info;
    });
    this.largeOffset = alignUp(at, ALIGN_BYTES);
    this.endOffset = this.largeOffset + pageCount * pageBytes;
    const biggestClass = this.classes.reduce((m, c) => (c.slots > 0 ? Math.max(m, c.sizeBytes) : m), 0);
    this.allocBytesMax = Math.max(biggestClass, pageCount * pageBytes);
  }

  /** Index of the smallest class that fits `lengthBytes`, or -1 if none does. */
  classFor(lengthBytes: number): number {
    for (let i = 0; i < this.classes.length; i++) if (this.classes[i]!.sizeBytes >= lengthBytes) return i;
    return -1;
  }

  classOfSlot(slot: number): number {
    for (let i = this.classes.length - 1; i >= 0; i--) if (slot >= this.classes[i]!.firstSlot) return i;
    return 0;
  }
}

/** Default class sizes: every power of two from CLASS_BYTES_MIN to CLASS_BYTES_MAX. */
export function defaultClassSizes(): number[] {
  const out: number[] = [];
  for (let s = CLASS_BYTES_MIN; s <= CLASS_BYTES_MAX; s *= 2) out.push(s);
  return out;
}

/** Computes the layout for `buffer` and writes the superblock. Does not touch the tables (Pool does). */
export function buildLayout(buffer: ArrayBufferLike, options: LayoutOptions): Either<PoolLayoutError, PoolLayout> {
  const poolBytes = buffer.byteLength;
  if (!littleEndian()) return left(new PoolLayoutError('this machine is big-endian; the pool tables assume little-endian'));
  if (poolBytes > POOL_BYTES_MAX) return left(new PoolLayoutError(`pool of ${poolBytes} bytes exceeds ${POOL_BYTES_MAX} (offsets are u32); use a smaller pool`));
  const pageBytes = options.pageBytes ?? PAGE_BYTES_DEFAULT;
  if (!Number.isInteger(pageBytes) || pageBytes < ALIGN_BYTES || pageBytes % ALIGN_BYTES !== 0) {
    return left(new PoolLayoutError(`pageBytes must be a positive multiple of ${ALIGN_BYTES}, got ${pageBytes}`));
  }
  const sizes = options.classes ?? defaultSlots(poolBytes, pageBytes, options.largeBytes);
  const bad = checkClasses(sizes);
  if (bad !== undefined) return left(new PoolLayoutError(bad));
  const withoutLarge = new PoolLayout(poolBytes, sizes, pageBytes, 0);
  const room = poolBytes - withoutLarge.endOffset - 2 * ALIGN_BYTES;
  const largeBytes = options.largeBytes;
  if (largeBytes !== undefined && (!Number.isInteger(largeBytes) || largeBytes < 0)) return left(new PoolLayoutError(`largeBytes must be a non-negative integer, got ${largeBytes}`));
  // An explicit large region is honoured exactly (or refused below); otherwise it takes what is left.
  const pageCount = largeBytes !== undefined ? Math.floor(largeBytes / pageBytes) : Math.max(0, Math.floor(room / (pageBytes + PAGE_META_BYTES)));
  const layout = new PoolLayout(poolBytes, sizes, pageBytes, pageCount);
  if (layout.endOffset > poolBytes) {
    return left(new PoolLayoutError(`the classes and large region need ${layout.endOffset} bytes but the pool has ${poolBytes}; ask for fewer slots or a larger pool`));
  }
  if (layout.allocBytesMax === 0) return left(new PoolLayoutError(`a pool of ${poolBytes} bytes holds no buffer at all; give it at least one slot or page`));
  writeSuperblock(buffer, layout);
  return right(layout);
}

/** Reads the layout back from a formatted pool and recomputes it: a mismatch means not a pool (or corrupt). */
export function readLayout(buffer: ArrayBufferLike): Either<PoolLayoutError, PoolLayout> {
  if (buffer.byteLength < SB_BYTES) return left(new PoolLayoutError(`buffer of ${buffer.byteLength} bytes is too small to be a pool`));
  const sb = new Uint32Array(buffer, 0, SB_BYTES / 4);
  if (sb[SB.MAGIC] !== POOL_MAGIC) return left(new PoolLayoutError('no pool magic in the superblock: format the pool (node manager) before attaching'));
  if (sb[SB.VERSION] !== POOL_VERSION) return left(new PoolLayoutError(`pool version ${sb[SB.VERSION]} is not ${POOL_VERSION}; restart the node manager and hosts on the same build`));
  const poolBytes = sb[SB.POOL_BYTES] === 0 ? POOL_BYTES_MAX : sb[SB.POOL_BYTES]!;
  if (poolBytes !== buffer.byteLength) return left(new PoolLayoutError(`superblock says ${poolBytes} bytes but the mapping has ${buffer.byteLength}`));
  const count = sb[SB.CLASS_COUNT]!;
  if (count > CLASSES_MAX) return left(new PoolLayoutError(`superblock claims ${count} classes (max ${CLASSES_MAX})`));
  const sizes = Array.from({ length: count }, (_, i) => ({ sizeBytes: sb[SB.CLASS_BASE + 2 * i]!, slots: sb[SB.CLASS_BASE + 2 * i + 1]! }));
  const bad = checkClasses(sizes);
  if (bad !== undefined) return left(new PoolLayoutError(`corrupt superblock: ${bad}`));
  const layout = new PoolLayout(poolBytes, sizes, sb[SB.PAGE_BYTES]!, sb[SB.PAGE_COUNT]!);
  if (layout.endOffset > poolBytes || layout.pageBytes % ALIGN_BYTES !== 0 || layout.pageBytes === 0) {
    return left(new PoolLayoutError('corrupt superblock: the recorded layout does not fit the buffer'));
  }
  return right(layout);
}

function writeSuperblock(buffer: ArrayBufferLike, layout: PoolLayout): void {
  const sb = new Uint32Array(buffer, 0, SB_BYTES / 4);
  sb.fill(0);
  sb[SB.VERSION] = POOL_VERSION;
  sb[SB.POOL_BYTES] = layout.poolBytes >>> 0;
  sb[SB.CLASS_COUNT] = layout.classes.length;
  sb[SB.PAGE_BYTES] = layout.pageBytes;
  sb[SB.PAGE_COUNT] = layout.pageCount;
  layout.classes.forEach((c, i) => {
    sb[SB.CLASS_BASE + 2 * i] = c.sizeBytes;
    sb[SB.CLASS_BASE + 2 * i + 1] = c.slots;
  });
  // The magic goes last: a process attaching to a half-written superblock is refused.
  Atomics.store(new Int32Array(buffer, 0, 1), SB.MAGIC, POOL_MAGIC);
}

/** Equal byte budgets per default class after the large region; slot metadata counted in the budget. */
function defaultSlots(poolBytes: number, pageBytes: number, largeBytes: number | undefined): Array<{ sizeBytes: number; slots: number }> {
  const avail = Math.max(0, poolBytes - SB_BYTES - 3 * ALIGN_BYTES);
  const large = largeBytes ?? Math.floor(avail * LARGE_FRACTION_DEFAULT);
  const pages = Math.floor(Math.min(large, avail) / (pageBytes + PAGE_META_BYTES));
  const sizes = defaultClassSizes();
  const budget = Math.floor((avail - pages * (pageBytes + PAGE_META_BYTES)) / sizes.length);
  return sizes.map((sizeBytes) => ({ sizeBytes, slots: Math.max(0, Math.floor(budget / (sizeBytes + SLOT_META_BYTES))) }));
}

function checkClasses(sizes: ReadonlyArray<{ sizeBytes: number; slots: number }>): string | undefined {
  if (sizes.length > CLASSES_MAX) return `at most ${CLASSES_MAX} size classes, got ${sizes.length}`;
  let prev = 0;
  for (const c of sizes) {
    if (!Number.isInteger(c.sizeBytes) || c.sizeBytes < 8 || c.sizeBytes % 8 !== 0) return `class size ${c.sizeBytes} must be a positive multiple of 8`;
    if (c.sizeBytes <= prev) return `class sizes must be strictly increasing (${c.sizeBytes} after ${prev})`;
    if (!Number.isInteger(c.slots) || c.slots < 0 || c.slots > 2 ** 30) return `class ${c.sizeBytes} slots must be an integer in [0, 2^30], got ${c.slots}`;
    prev = c.sizeBytes;
  }
  return undefined;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
