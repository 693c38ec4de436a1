/**
 * Data-path errors: one class per failure, a `type` for discriminated handling, and a message that tells
 * the caller what to do. Hot-path errors (exhaustion, rejection, no credit) are built without a stack
 * trace: they are expected outcomes returned in an Either, not crashes, and capturing a stack costs µs.
 */
export abstract class DataPathError extends Error {
  abstract readonly type: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Builds an error without paying for a stack trace (the actor kernel's helper, under the name used here). */
export { withoutStack as stackless } from '../actors/errors.js';

/** No free buffer of the needed size right now: free buffers, back off, or give the realm a larger pool. */
export class PoolExhaustedError extends DataPathError {
  readonly type = 'pool-exhausted';
  constructor(readonly requestedBytes: number, readonly classBytes: number, readonly reason: 'empty' | 'contended') {
    super(
      reason === 'empty'
        ? `shared-memory pool has no free buffer for ${requestedBytes} bytes (size class ${classBytes} B and the large-object pages are exhausted); free buffers or raise the realm's pool size`
        : `shared-memory pool allocation for ${requestedBytes} bytes gave up after too many contended retries; retry, or spread load over fewer writers`,
    );
  }
}

/** The request can never be satisfied by this pool, even when it is empty. */
export class AllocTooLargeError extends DataPathError {
  readonly type = 'alloc-too-large';
  constructor(readonly requestedBytes: number, readonly maxBytes: number) {
    super(`cannot allocate ${requestedBytes} bytes: the largest buffer this pool can ever hold is ${maxBytes} bytes; split the payload or raise the pool's large-object region`);
  }
}

/** A bad argument or option (length, owner id, a bound): a caller bug, reported instead of corrupting state. */
export class InvalidArgumentError extends DataPathError {
  readonly type = 'invalid-argument';
  constructor(readonly argument: string, detail: string) {
    super(`invalid ${argument}: ${detail}`);
  }
}

/** The buffer is not a formatted pool, or the layout asked for does not fit. */
export class PoolLayoutError extends DataPathError {
  readonly type = 'pool-layout';
  constructor(detail: string) {
    super(`shared-memory pool layout: ${detail}`);
  }
}

/** Why a descriptor (or a free/transfer request) was refused. Counted per reason by the Ownership table. */
export type RejectReason =
  | 'out-of-range' // offset outside every region of the pool
  | 'misaligned' // offset inside a region but not at the start of a buffer
  | 'too-long' // length larger than the buffer's capacity
  | 'not-live' // the buffer is free
  | 'stale-generation' // the buffer was freed (and maybe reused) since the descriptor was made
  | 'wrong-owner'; // the buffer belongs to someone other than the claimed sender

export const REJECT_REASONS: readonly RejectReason[] = ['out-of-range', 'misaligned', 'too-long', 'not-live', 'stale-generation', 'wrong-owner'];

export class DescriptorRejectedError extends DataPathError {
  readonly type = 'descriptor-rejected';
  constructor(readonly reason: RejectReason, readonly offset: number, detail: string) {
    super(`descriptor for pool offset ${offset} rejected (${reason}): ${detail}`);
  }
}

/** No credit left towards a destination: the receiver has not consumed what was sent. Back off or wait. */
export class CreditsExhaustedError extends DataPathError {
  readonly type = 'credits-exhausted';
  constructor(readonly dst: number, readonly inFlightMax: number) {
    super(`no credit to send to endpoint ${dst}: ${inFlightMax} messages are in flight and unconsumed; wait for the receiver (acquire with a timeout) or slow down`);
  }
}

/** A wait for credit timed out. */
export class CreditTimeoutError extends DataPathError {
  readonly type = 'credit-timeout';
  constructor(readonly dst: number, readonly timeoutMs: number) {
    super(`no credit to send to endpoint ${dst} within ${timeoutMs} ms; the receiver is stalled or gone — check it, or raise the timeout`);
  }
}

/** Too many senders are already waiting for credit towards one destination. */
export class CreditWaitersFullError extends DataPathError {
  readonly type = 'credit-waiters-full';
  constructor(readonly dst: number, readonly waitersMax: number) {
    super(`${waitersMax} sends are already waiting for credit to endpoint ${dst}; fail fast upstream instead of queueing more`);
  }
}

/** The credit window was closed (endpoint gone) while waiting. */
export class CreditWindowClosedError extends DataPathError {
  readonly type = 'credit-window-closed';
  constructor(readonly dst: number) {
    super(`credit window to endpoint ${dst} was closed (the sender or receiver went away); re-resolve the destination`);
  }
}

/** Registration problems at the hub. */
export class EndpointRegistrationError extends DataPathError {
  readonly type = 'endpoint-registration';
  constructor(readonly endpoint: number, detail: string) {
    super(`cannot register endpoint ${endpoint}: ${detail}`);
  }
}

/** The link towards the hub (or the kernel) has more queued than its bound: the peer is not reading. */
export class LinkBackloggedError extends DataPathError {
  readonly type = 'link-backlogged';
  constructor(readonly endpoint: number) {
    super(`endpoint ${endpoint}: the data-path link is backlogged (the hub is not reading); retry later or check the node manager`);
  }
}

/** The endpoint was closed; make a new one. */
export class EndpointClosedError extends DataPathError {
  readonly type = 'endpoint-closed';
  constructor(readonly endpoint: number) {
    super(`endpoint ${endpoint} is closed; register a new endpoint to send again`);
  }
}
