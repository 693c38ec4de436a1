/** The actor kernel's public surface. */
export { Actor } from './actor.js';
export { ActorSystem, createSystem, DEFAULT_THROUGHPUT, DEFAULT_TURN_BUDGET, type SystemOptions, type SystemStats } from './system.js';
export { stateful, stateless, type Hooks } from './functional.js';
export { PersistentActor, InMemoryJournal, JOURNAL_BATCH_EVENTS_MAX, JOURNAL_BATCH_BYTES_MAX, type Journal, type JournalEntry, type Snapshot } from './persistent.js';
export { JOURNAL_BUCKET, KvJournal, SNAPSHOT_BUCKET } from './kv-journal.js';
export { Mailbox, DEFAULT_MAILBOX_CAPACITY, MAILBOX_CAPACITY_MAX, type MailboxOptions, type OverflowPolicy } from './mailbox.js';
export {
  oneForOne,
  oneForAll,
  restForOne,
  backoffDelayMs,
  DEFAULT_STRATEGY,
  ACTOR_RESTARTS_MAX_DEFAULT,
  DEFAULT_RESTART_WINDOW_MS,
  type Backoff,
  type Decision,
  type StrategyKind,
  type SupervisorStrategy,
} from './supervision.js';
export { InMemoryNetwork, FRAME_BYTES_MAX, parsePath, type Transport } from './remote.js';
export * from './errors.js';
export type { ActorRef, Behavior, Context, Factory, SpawnOptions, SystemEvent, Terminated } from './types.js';
