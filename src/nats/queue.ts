import { InvalidArgumentError, type NatsPortError } from './errors.js';

export interface QueueHooks {
  /** The reader took an item (pull credit goes back). */
  onTake?: () => void;
  /** An item was refused because the queue was full; `first` marks the start of an overflow episode. */
  onOverflow?: (dropped: number, first: boolean) => void;
  /** The queue ended, for whatever reason (the owner releases what feeds it). */
  onEnd?: (error: NatsPortError | null) => void;
}

/**
 * A bounded single-consumer queue read as an AsyncIterable: what every subscription, watch and stream
 * reader hands out, in both the real binding and the simulator. Overflow never grows the queue: the
 * item is dropped and counted ('drop') or the queue ends with an error ('error'). Ending never makes
 * the reader's loop throw — the loop exits and `closed` carries the reason.
 */
export class BoundedQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #iterated = false;
  #overflowing = false;
  #dropped = 0;
  #resolveClosed!: (e: NatsPortError | null) => void;
  readonly closed: Promise<NatsPortError | null> = new Promise((r) => (this.#resolveClosed = r));

  constructor(
    readonly pendingMax: number,
    private readonly overflow: 'drop' | 'error',
    private readonly overflowError: () => NatsPortError,
    private readonly hooks: QueueHooks = {},
  ) {
    if (!Number.isSafeInteger(pendingMax) || pendingMax <= 0) throw new InvalidArgumentError(`pendingMax must be a positive integer, got ${pendingMax}`);
  }

  get pending(): number {
    return this.#items.length - this.#head;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Offers an item; false when it was not taken (full or ended). */
  push(x: T): boolean {
    if (this.#ended) return false;
    if (this.pending >= this.pendingMax) {
      this.#dropped++;
      const first = !this.#overflowing;
      this.#overflowing = true;
      this.hooks.onOverflow?.(this.#dropped, first);
      if (this.overflow === 'error') this.end(this.overflowError(), { discard: true });
      return false;
    }
    this.#overflowing = false;
    this.#items.push(x);
    this.#wake?.();
    return true;
  }

  /** Ends the queue: at once (`discard`), or after the reader has taken what is buffered. */
  end(error: NatsPortError | null = null, options: { discard?: boolean } = {}): void {
    if (this.#ended) return;
    this.#ended = true;
    if (options.discard === true) {
      this.#items = [];
      this.#head = 0;
    }
    this.#resolveClosed(error);
    this.#wake?.();
    this.hooks.onEnd?.(error);
  }

  #take(): T {
    const x = this.#items[this.#head]!;
    this.#items[this.#head] = undefined as T; // let it be collected
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.hooks.onTake?.();
    return x;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterated) throw new InvalidArgumentError('this subscription is already being read: a subscription, watch or reader has a single consumer; subscribe again for a second reader');
    this.#iterated = true;
    const next = async (): Promise<IteratorResult<T>> => {
      for (;;) {
        if (this.pending > 0) return { done: false, value: this.#take() };
        if (this.#ended) return { done: true, value: undefined };
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
      }
    };
    return {
      next,
      // A reader leaving its loop (break, return, throw) ends the queue: nobody else may read it.
      return: async () => {
        this.end(null, { discard: true });
        return { done: true, value: undefined };
      },
    };
  }
}
