import type { Handlers } from './app.js';

/**
 * A service whose state changes only by events (an item put in a cart, a room booked). Both deployments
 * run the same handlers over it; on sigma-ts every event is journaled first (a PersistentActor in the
 * realm's journal: sigma-state.ts), so the state survives a restart of the service; the HTTP deployment
 * keeps it in its process's memory (inMemory). State and events must be JSON (snapshots and events are).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface EventSourced<S = any, E = any> {
  initial(): S;
  /** Applies one event to the state (it may change it in place) and returns the state. */
  apply(state: S, event: E): S;
  /**
   * The handlers over the current state. They check a command, then `persist` its events, once, as the
   * last step; `persist` resolves once they are stored. Handlers run one at a time on sigma-ts (an
   * actor's mailbox), so a check and the events it allows are not interleaved — but with group commit
   * (sigma-state.ts) the next handler runs as soon as this one has called persist, against the state
   * with its events applied (a booking sees the rooms the bookings before it took), and the events of the
   * handlers that ran while a write was in flight are stored together in the next one.
   */
  handlers(state: () => S, persist: (...events: E[]) => Promise<void>): Handlers;
  /**
   * Handlers that only read the state (never persist). On sigma-ts they answer at once from the state as
   * stored so far, rather than wait in the mailbox behind a command whose events are on their way to
   * JetStream: a read concurrent with a write sees it or not, as in memory; a read after a write's answer
   * sees it. (Every `/hotels` search reads availability; every page view reads the cart.)
   */
  queries?: readonly string[];
}

/** The handlers with the state in this process's memory: events applied at once, nothing stored. */
export function inMemory<S, E>(def: EventSourced<S, E>): Handlers {
  let state = def.initial();
  return def.handlers(
    () => state,
    async (...events) => {
      for (const e of events) state = def.apply(state, e);
    },
  );
}
