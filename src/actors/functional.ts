import type { Behavior, Context, FactoryFn, MaybePromise } from './types.js';

export interface Hooks<M> {
  preStart?: (ctx: Context<M>) => MaybePromise;
  postStop?: (ctx: Context<M>) => MaybePromise;
}

/**
 * nact-style stateful actor: `receive(state, msg, ctx)` returns the next state (or a promise of it).
 * Messages are handled one at a time; a restart starts again from `initial`.
 *
 *   const counter = system.spawn(stateful(0, (n, msg: number) => n + msg), { name: 'counter' });
 */
export function stateful<S, M>(
  initial: S | ((ctx: Context<M>) => S),
  receive: (state: S, msg: M, ctx: Context<M>) => S | PromiseLike<S>,
  hooks: Hooks<M> = {},
): FactoryFn<M> {
  return (ctx) => {
    let state = typeof initial === 'function' ? (initial as (ctx: Context<M>) => S)(ctx) : initial;
    const b: Behavior<M> = {
      receive(msg, c) {
        const next = receive(state, msg, c);
        if (next != null && typeof (next as PromiseLike<S>).then === 'function') {
          return (next as PromiseLike<S>).then((s) => {
            state = s;
          });
        }
        state = next as S;
      },
      ...hooks,
    };
    return b;
  };
}

/**
 * nact-style stateless actor: no state between messages, so up to `concurrency` messages may be in
 * flight at once (async handlers overlap). Failures still go to the supervisor.
 */
export function stateless<M>(receive: (msg: M, ctx: Context<M>) => MaybePromise, options: { concurrency?: number } & Hooks<M> = {}): FactoryFn<M> {
  const { concurrency = 64, ...hooks } = options;
  return () => ({ receive, concurrency, ...hooks });
}
