import type { Either } from 'fp-ts/lib/Either.js';
import type { Ports, TimerHandle } from '../ports/types.js';
import type { ActorError } from './errors.js';
import type { MailboxOptions } from './mailbox.js';
import type { SupervisorStrategy } from './supervision.js';
import type { Logger } from 'pino';

/**
 * A typed address. `tell` is fire-and-forget; `ask` sends a message built around a one-shot reply
 * ref and resolves with the reply, or rejects with AskTimeoutError after `timeoutMs` (mandatory).
 * Refs are plain data on the wire ({"$ref": path}), so a message can carry one to another process.
 */
export interface ActorRef<M> {
  readonly path: string;
  tell(msg: M): void;
  /** tell without throwing: Left(MailboxFullError | ActorStoppedError) instead. */
  tryTell(msg: M): Either<ActorError, void>;
  ask<R>(make: (replyTo: ActorRef<R>) => M, timeoutMs: number): Promise<R>;
  toJSON(): { $ref: string };
}

/** Delivered to a watcher when a watched actor stops (unless watch() was given a message of its own). */
export interface Terminated {
  readonly type: 'terminated';
  readonly ref: ActorRef<never>;
}

export type MaybePromise = void | PromiseLike<void>;

/** What the runtime calls. Implement it with a class (extend Actor) or with stateful()/stateless(). */
export interface Behavior<M> {
  receive(msg: M, ctx: Context<M>): MaybePromise;
  /** Before the first message. Async is fine: messages wait in the mailbox until it settles. */
  preStart?(ctx: Context<M>): MaybePromise;
  postStop?(ctx: Context<M>): MaybePromise;
  /** On the failed instance before it is replaced. Default: stop all children, then postStop. */
  preRestart?(ctx: Context<M>, error: unknown, msg: M | undefined): MaybePromise;
  /** On the fresh instance. Default: preStart. */
  postRestart?(ctx: Context<M>, error: unknown): MaybePromise;
  /** Strategy for this actor's children (spawn options override it). */
  readonly supervisor?: SupervisorStrategy;
  /** Messages handled at once; 1 (the default) makes the actor serial and its state safe. */
  readonly concurrency?: number;
}

export interface SpawnOptions {
  /** Unique among siblings; generated ("$0", "$1", ...) when absent. */
  name?: string;
  mailbox?: MailboxOptions;
  supervisor?: SupervisorStrategy;
  concurrency?: number;
}

/** The actor's view of the runtime. Everything an actor takes from outside comes through here. */
export interface Context<M> {
  readonly self: ActorRef<M>;
  readonly parent: ActorRef<unknown> | undefined;
  readonly name: string;
  readonly path: string;
  readonly ports: Ports;
  readonly log: Logger;
  /** Live children in start order. */
  children(): ActorRef<never>[];
  child<C>(name: string): ActorRef<C> | undefined;
  spawn<C>(factory: Factory<C>, options?: SpawnOptions): ActorRef<C>;
  /** Stops a child (or this actor when called with no ref); resolves once it has terminated. */
  stop(ref?: ActorRef<never>): Promise<void>;
  watch(ref: ActorRef<never>, ...message: Terminated extends M ? [M?] : [M]): void;
  unwatch(ref: ActorRef<never>): void;
  /** Sends `msg` to self after delayMs; cancelled automatically when the actor stops or restarts. */
  scheduleOnce(delayMs: number, msg: M): TimerHandle;
  /**
   * Sends `msg` to self every intervalMs until cancelled, stopped or restarted. `aligned`: on multiples
   * of the interval on this system's clock (offset by a phase of the system's own, so that processes
   * do not all tick at once), the first within one interval: a process's periodic chores of one
   * interval then wake it once, not once each (idle cost is counted in wake-ups).
   */
  scheduleRepeat(intervalMs: number, msg: M, options?: { aligned?: boolean }): TimerHandle;
  /** Resolves a path (local or remote) to a ref. */
  refFor<C>(path: string): ActorRef<C>;
}

export type FactoryFn<M> = (ctx: Context<M>) => Behavior<M>;
export type ActorClass<M> = new (ctx: Context<M>) => Behavior<M>;
export type Factory<M> = FactoryFn<M> | ActorClass<M>;

export type SystemEvent =
  | { type: 'failed'; path: string; error: unknown }
  /** `cause` is the failed child whose supervision decision restarted `path` (itself, or a sibling). */
  | { type: 'restarted'; path: string; attempt: number; delayMs: number; cause: string }
  | { type: 'resumed'; path: string }
  | { type: 'stopped'; path: string }
  | { type: 'escalated'; path: string; error: unknown }
  | { type: 'dead-letter'; path: string; msg: unknown };
