import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { DescriptorRejectedError, REJECT_REASONS, stackless, type RejectReason } from './errors.js';
import type { BufferInfo, Pool } from './pool.js';

/** The part of a descriptor that names a buffer (the 32-byte descriptor carries more: dst, flags, request id). */
export interface BufferRef {
  offset: number;
  length: number;
  generation: number;
}

export type RejectCounts = Record<RejectReason, number>;

/**
 * Descriptor checks against a pool, with rejections counted by reason. One per process and pool: the
 * receiver of a descriptor accepts it (ownership moves from the sender to it), the hub validates before
 * a cross-realm copy, the node manager reclaims what a dead proc or host held.
 *
 * The sender identity passed in is never the descriptor's own claim: it is what the kernel (SK_STORAGE,
 * BPF mode) or the hub (the registered connection, userspace mode) vouched for.
 */
export class Ownership {
  readonly #rejected: RejectCounts = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as RejectCounts;
  #accepted = 0;

  constructor(readonly pool: Pool) {}

  /**
   * Read-only check: `ref` names the start of a live buffer, its length fits, its generation is current and
   * it is owned by `sender`. Used where ownership must not move yet (the hub before a copy).
   */
  validate(ref: BufferRef, sender: number): Either<DescriptorRejectedError, BufferInfo> {
    const info = this.pool.inspect(ref.offset, ref.length);
    if (info._tag === 'Left') return this.#count(info);
    if (info.right.generation !== ref.generation) {
      return this.#count(left(stackless(() => new DescriptorRejectedError('stale-generation', ref.offset, `generation ${ref.generation} is stale (now ${info.right.generation})`))));
    }
    if (info.right.owner !== sender) {
      return this.#count(left(stackless(() => new DescriptorRejectedError('wrong-owner', ref.offset, `the buffer is not owned by sender ${sender}`))));
    }
    return info;
  }

  /** Delivery: the buffer moves from `sender` to `receiver` atomically, or the descriptor is rejected. */
  accept(ref: BufferRef, sender: number, receiver: number): Either<DescriptorRejectedError, void> {
    const r = this.pool.transfer(sender, receiver, ref.offset, ref.generation, ref.length);
    if (r._tag === 'Left') return this.#count(r);
    this.#accepted++;
    return r;
  }

  /** The holder is done with the buffer. */
  release(ref: BufferRef, owner: number): Either<DescriptorRejectedError, void> {
    const r = this.pool.free(owner, ref.offset, ref.generation);
    return r._tag === 'Left' ? this.#count(r) : right(undefined);
  }

  /** Frees everything a dead proc or host held. */
  reclaim(owner: number): { buffers: number; bytes: number } {
    return this.pool.reclaim(owner);
  }

  get accepted(): number {
    return this.#accepted;
  }

  rejected(): RejectCounts {
    return { ...this.#rejected };
  }

  #count<T>(r: Either<DescriptorRejectedError, T>): Either<DescriptorRejectedError, T> {
    if (r._tag === 'Left') this.#rejected[r.left.reason]++;
    return r;
  }
}
