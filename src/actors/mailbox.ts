import { InvalidOptionError } from './errors.js';

export type OverflowPolicy = 'reject' | 'drop-oldest';

export interface MailboxOptions {
  /** Upper bound on queued messages. Past it the overflow policy applies; memory never grows further. */
  capacity?: number;
  overflow?: OverflowPolicy;
}

export const DEFAULT_MAILBOX_CAPACITY = 65_536;
export const MAILBOX_CAPACITY_MAX = 1 << 26;
const INITIAL_SLOTS = 8;

/**
 * A bounded FIFO on a power-of-two ring that grows by doubling up to the next power of two above
 * `capacity`. It starts tiny so that spawning 100k actors costs little, and never holds more than
 * `capacity` messages, whatever the senders do.
 */
export class Mailbox<M> {
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  /** Messages discarded by drop-oldest since creation. */
  dropped = 0;
  /** Sends refused by the reject policy since creation. */
  rejected = 0;
  /** High-water mark of queued messages. */
  peak = 0;
  #slots: (M | undefined)[] = [];
  #mask = -1;
  #head = 0;
  #size = 0;

  constructor(options: MailboxOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_MAILBOX_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAILBOX_CAPACITY_MAX) {
      throw new InvalidOptionError('mailbox.capacity', `must be an integer in [1, ${MAILBOX_CAPACITY_MAX}], got ${capacity}`);
    }
    const overflow = options.overflow ?? 'reject';
    if (overflow !== 'reject' && overflow !== 'drop-oldest') {
      throw new InvalidOptionError('mailbox.overflow', `must be "reject" or "drop-oldest", got ${String(overflow)}`);
    }
    this.capacity = capacity;
    this.overflow = overflow;
  }

  get size(): number {
    return this.#size;
  }

  /** Enqueues; returns false when the reject policy refused the message. */
  push(msg: M): boolean {
    if (this.#size >= this.capacity) {
      if (this.overflow === 'reject') {
        this.rejected++;
        return false;
      }
      this.shift();
      this.dropped++;
    }
    this.#append(msg);
    return true;
  }

  /**
   * Enqueues past the bound. Only for messages the runtime itself generates in bounded number
   * (Terminated notifications: at most one per watched actor).
   */
  pushUnbounded(msg: M): void {
    this.#append(msg);
  }

  shift(): M | undefined {
    if (this.#size === 0) return undefined;
    const i = this.#head;
    const msg = this.#slots[i];
    this.#slots[i] = undefined; // let the message be collected
    this.#head = (i + 1) & this.#mask;
    this.#size--;
    return msg;
  }

  /** Removes and returns everything queued (used when an actor stops: the rest goes to dead letters). */
  drain(): M[] {
    const out: M[] = [];
    while (this.#size > 0) out.push(this.shift() as M);
    return out;
  }

  #append(msg: M): void {
    if (this.#size === this.#slots.length) this.#grow();
    this.#slots[(this.#head + this.#size) & this.#mask] = msg;
    this.#size++;
    if (this.#size > this.peak) this.peak = this.#size;
  }

  #grow(): void {
    const old = this.#slots;
    const n = old.length === 0 ? INITIAL_SLOTS : old.length * 2;
    const slots = new Array<M | undefined>(n);
    for (let i = 0; i < this.#size; i++) slots[i] = old[(this.#head + i) & this.#mask];
    this.#slots = slots;
    this.#mask = n - 1;
    this.#head = 0;
  }
}
