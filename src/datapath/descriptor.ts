import { left, right, type Either } from 'fp-ts/lib/Either.js';
import { DataPathError, stackless } from './errors.js';

/**
 * The TypeScript mirror of bpf/sigma_datapath.h — the one place the descriptor layout and its flag bits
 * are written down outside C. test/descriptor.test.ts parses the header's #defines (and asks the compiled
 * addon) and fails if anything here drifts.
 *
 * A descriptor is 32 bytes, little-endian: dst_ep u32 @0 | src_ep u32 @4 | offset u32 @8 | length u32 @12
 * | generation u32 @16 | flags u32 @20 | request_id u64 @24. It names a buffer in the realm's pool by
 * offset (never by pointer). Flag bits 0..15 belong to senders; bits 16..31 are written only by the
 * kernel (the sk_msg program clears them on entry), so a receiver can trust them.
 */
export const DESC_SIZE = 32;
export const DESC_OFFSETS = { dstEp: 0, srcEp: 4, offset: 8, length: 12, generation: 16, flags: 20, requestId: 24 } as const;
/** The bytes the kernel verdict reads and writes (everything before requestId). */
export const DESC_HEAD_SIZE = 24;
/**
 * Writers keep one socket write at most this long (a multiple of DESC_SIZE). The kernel copies a write
 * into a bounded number of page fragments and splits a longer one at an arbitrary byte; a descriptor
 * cut before byte 24 cannot be judged and is passed to the socket's peer (the slow path) instead.
 */
export const WRITE_BYTES_MAX = 65_536;

/** "No endpoint": a sender may leave src 0 and the kernel fills in its socket's endpoint. */
export const NO_EP = 0;
/** The node manager's slow path: rejected descriptors and cross-realm copies land there. */
export const HUB_EP = 1;
/** The system realm (node manager, hub): may send anywhere and be sent to from anywhere. */
export const SYSTEM_REALM = 0;
/** Bound on the kernel maps: endpoints (exports, metrics rows) per node. */
export const ENDPOINTS_MAX = 65_536;

/** A credit return: no buffer; `length` is the number of credits. */
export const F_CREDIT = 0x0000_0001;
export const F_SENDER_MASK = 0x0000_ffff;
export const F_KERNEL_MASK = 0xffff_0000;
/** Kernel: diverted to the hub to be copied into the (exporting or exported-to) destination realm's pool. */
export const F_COPY = 0x0001_0000;
/** Kernel: diverted to the hub as a policy violation, with a reason code in bits 24..27. */
export const F_REJECTED = 0x8000_0000;
export const REASON_SHIFT = 24;
export const REASON_MASK = 0x0f00_0000;

/** Reason codes (the header's SIGMA_R_*). */
export const R_NONE = 0;
export const R_NO_IDENTITY = 1;
export const R_SRC_SPOOFED = 2;
export const R_CROSS_REALM = 3;
export const R_UNKNOWN_DST = 4;
export const R_DST_GONE = 5;
export const R_MAX = 5;

export type KernelRejectReason = 'no-identity' | 'src-spoofed' | 'cross-realm' | 'unknown-dst' | 'dst-gone';
const REASON_NAMES: readonly (KernelRejectReason | undefined)[] = [undefined, 'no-identity', 'src-spoofed', 'cross-realm', 'unknown-dst', 'dst-gone'];

/** Every bit a valid descriptor may have set. */
export const KNOWN_FLAGS = (F_CREDIT | F_COPY | F_REJECTED | REASON_MASK) >>> 0;

const U64_MAX = (1n << 64n) - 1n;

/** Everything a descriptor says. `requestId` is a u64. */
export interface Descriptor {
  dstEp: number;
  srcEp: number;
  offset: number;
  length: number;
  generation: number;
  flags: number;
  requestId: bigint;
}

export type DescriptorFault = 'short' | 'unknown-flags' | 'bad-reason' | 'zero-length' | 'out-of-bounds' | 'not-u32';

/** A descriptor that cannot be what it claims. Hot path: built without a stack trace. */
export class DescriptorError extends DataPathError {
  readonly type = 'descriptor';
  constructor(readonly fault: DescriptorFault, detail: string) {
    super(`invalid descriptor (${fault}): ${detail}`);
  }
}

const fail = (fault: DescriptorFault, detail: string): Either<DescriptorError, never> => left(stackless(() => new DescriptorError(fault, detail)));

/**
 * Checks what a decoded descriptor claims (src/datapath/frames.ts decodes): only known flag bits, a
 * reason code exactly when rejected (and never together with F_COPY), length > 0, and — unless it is a
 * credit return, which names no buffer — offset + length within a pool of `poolBytes`. Never throws.
 */
export function checkDescriptor(d: Descriptor, poolBytes: number): Either<DescriptorError, Descriptor> {
  const flags = d.flags;
  if ((flags & ~KNOWN_FLAGS) !== 0) return fail('unknown-flags', `flags 0x${flags.toString(16)} has bits outside 0x${KNOWN_FLAGS.toString(16)}`);
  const reason = (flags & REASON_MASK) >>> REASON_SHIFT;
  const rejected = (flags & F_REJECTED) !== 0;
  if (rejected ? reason < 1 || reason > R_MAX || (flags & F_COPY) !== 0 : reason !== R_NONE) {
    return fail('bad-reason', `flags 0x${flags.toString(16)}: a reason code in [1, ${R_MAX}] goes with F_REJECTED only, and never with F_COPY`);
  }
  if (d.length === 0) return fail('zero-length', 'length must be > 0 (bytes of payload, or credits for a credit return)');
  if ((flags & F_CREDIT) === 0 && d.offset + d.length > poolBytes) {
    return fail('out-of-bounds', `[${d.offset}, ${d.offset + d.length}) is outside the ${poolBytes}-byte pool`);
  }
  return right(d);
}

/** Every field fits its width (u32, and u64 for the request id): what encodeFrame refuses otherwise. */
export function fitsWidths(d: Descriptor): DescriptorError | undefined {
  // `x >>> 0 === x` holds exactly for integers in [0, 2^32): cheap enough for every frame written.
  if (d.dstEp >>> 0 !== d.dstEp || d.srcEp >>> 0 !== d.srcEp || d.offset >>> 0 !== d.offset || d.length >>> 0 !== d.length || d.generation >>> 0 !== d.generation || d.flags >>> 0 !== d.flags) {
    return new DescriptorError('not-u32', `fields must be integers in [0, 2^32): ${JSON.stringify({ ...d, requestId: String(d.requestId) })}`);
  }
  if (d.requestId < 0n || d.requestId > U64_MAX) return new DescriptorError('not-u32', `requestId must be in [0, 2^64), got ${d.requestId}`);
  return undefined;
}

/** The reason the kernel diverted a descriptor to the hub, or undefined if it did not reject it. */
export function rejectReason(flags: number): KernelRejectReason | undefined {
  if ((flags & F_REJECTED) === 0) return undefined;
  return REASON_NAMES[(flags & REASON_MASK) >>> REASON_SHIFT];
}
