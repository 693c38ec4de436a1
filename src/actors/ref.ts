import { left, right, type Either } from 'fp-ts/lib/Either.js';
import type { TimerHandle } from '../ports/types.js';
import { ActorStoppedError, AskTimeoutError, InvalidOptionError, MailboxFullError, withoutStack, type ActorError } from './errors.js';
import type { ActorRef } from './types.js';

/** Where a local ref delivers: its actor's cell (src/actors/cell.ts), seen only as a mailbox door. */
export interface Enqueue<M> {
  enqueue(msg: M): number;
  readonly mailbox: { readonly capacity: number };
  readonly system: RefHost;
}

/** What refs need from their system, kept narrow so refs stay cheap and testable. */
export interface RefHost {
  readonly timers: { setTimeout(fn: () => void, delayMs: number): TimerHandle };
  /** Allocates a path for a one-shot reply ref. */
  askPath(): string;
  /** Makes an ask ref reachable from other processes (called when it is serialized). */
  exposeAsk(ref: AskRef<never>): void;
  forgetAsk(ref: AskRef<never>): void;
  deadLetter(path: string, msg: unknown): void;
  sendRemote(path: string, msg: unknown): void;
}

const RIGHT_VOID: Either<never, void> = right(undefined);

/** Shared ask(): a one-shot reply ref with a timer from the injected port. */
function ask<M, R>(host: RefHost, target: ActorRef<M>, make: (replyTo: ActorRef<R>) => M, timeoutMs: number): Promise<R> {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    return Promise.reject(new InvalidOptionError('timeoutMs', `ask needs a positive, finite timeout in ms, got ${timeoutMs}`));
  }
  return new Promise<R>((resolve, reject) => {
    const reply = new AskRef<R>(host, target.path, timeoutMs, resolve, reject);
    let msg: M;
    try {
      msg = make(reply);
    } catch (e) {
      reply.fail(e);
      return;
    }
    const sent = target.tryTell(msg);
    if (sent._tag === 'Left') reply.fail(sent.left);
  });
}

/** A ref to an actor of this system. */
export class LocalRef<M> implements ActorRef<M> {
  constructor(
    readonly cell: Enqueue<M>,
    readonly path: string,
  ) {}

  tell(msg: M): void {
    const r = this.cell.enqueue(msg);
    if (r === ENQ_FULL) throw new MailboxFullError(this.path, this.cell.mailbox.capacity);
  }

  tryTell(msg: M): Either<ActorError, void> {
    const r = this.cell.enqueue(msg);
    if (r === ENQ_OK) return RIGHT_VOID;
    const cap = this.cell.mailbox.capacity;
    return left(withoutStack(() => (r === ENQ_FULL ? new MailboxFullError(this.path, cap) : new ActorStoppedError(this.path))));
  }

  ask<R>(make: (replyTo: ActorRef<R>) => M, timeoutMs: number): Promise<R> {
    return ask(this.cell.system, this, make, timeoutMs);
  }

  toJSON(): { $ref: string } {
    return { $ref: this.path };
  }

  toString(): string {
    return this.path;
  }
}

export const ENQ_OK = 0;
export const ENQ_FULL = 1;
export const ENQ_STOPPED = 2;

/** The one-shot reply target of ask(): resolves the caller's promise on the first message. */
export class AskRef<R> implements ActorRef<R> {
  readonly path: string;
  #done = false;
  #exposed = false;
  #timer: TimerHandle;

  constructor(
    private readonly host: RefHost,
    target: string,
    timeoutMs: number,
    private readonly resolve: (r: R) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.path = host.askPath();
    this.#timer = host.timers.setTimeout(() => this.fail(new AskTimeoutError(target, timeoutMs)), timeoutMs);
  }

  tell(msg: R): void {
    if (this.#done) {
      this.host.deadLetter(this.path, msg); // a second reply, or one after the timeout
      return;
    }
    this.#finish();
    this.resolve(msg);
  }

  tryTell(msg: R): Either<ActorError, void> {
    if (this.#done) return left(new ActorStoppedError(this.path));
    this.tell(msg);
    return RIGHT_VOID;
  }

  ask<R2>(make: (replyTo: ActorRef<R2>) => R, timeoutMs: number): Promise<R2> {
    return ask(this.host, this, make, timeoutMs);
  }

  fail(error: unknown): void {
    if (this.#done) return;
    this.#finish();
    this.reject(error);
  }

  toJSON(): { $ref: string } {
    // Serialized into a message for another process: only now does it need to be findable by path.
    if (!this.#exposed && !this.#done) {
      this.#exposed = true;
      this.host.exposeAsk(this as AskRef<never>);
    }
    return { $ref: this.path };
  }

  #finish(): void {
    this.#done = true;
    this.#timer.cancel();
    if (this.#exposed) this.host.forgetAsk(this as AskRef<never>);
  }
}

/** A ref to an actor in another system, reached through the system's Transport. */
export class RemoteRef<M> implements ActorRef<M> {
  constructor(
    private readonly host: RefHost,
    readonly path: string,
  ) {}

  tell(msg: M): void {
    this.host.sendRemote(this.path, msg);
  }

  tryTell(msg: M): Either<ActorError, void> {
    try {
      this.host.sendRemote(this.path, msg);
    } catch (e) {
      return left(e as ActorError); // only RemoteDeliveryError (frame too large) is thrown here
    }
    return RIGHT_VOID;
  }

  ask<R>(make: (replyTo: ActorRef<R>) => M, timeoutMs: number): Promise<R> {
    return ask(this.host, this, make, timeoutMs);
  }

  toJSON(): { $ref: string } {
    return { $ref: this.path };
  }

  toString(): string {
    return this.path;
  }
}
