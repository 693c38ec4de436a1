import type { Behavior, Context, MaybePromise } from './types.js';

/**
 * Base class for actors written as classes. The instance is the actor's state; a restart makes a
 * fresh instance (state reset), `resume` keeps this one.
 *
 *   class Counter extends Actor<{ type: 'inc' } | { type: 'get'; replyTo: ActorRef<number> }> {
 *     n = 0;
 *     receive(msg) { if (msg.type === 'inc') this.n++; else msg.replyTo.tell(this.n); }
 *   }
 *   const counter = system.spawn(Counter, { name: 'counter' });
 */
export abstract class Actor<M> implements Behavior<M> {
  constructor(protected readonly ctx: Context<M>) {}
  abstract receive(msg: M): MaybePromise;
}

export function isActorClass(f: unknown): f is new (ctx: Context<never>) => Behavior<never> {
  return typeof f === 'function' && f.prototype instanceof Actor;
}
