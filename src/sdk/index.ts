/**
 * The proc author's API: `import { FunctionProc, ServiceProc, type ProcContext } from 'sigma-ts'`.
 * One module instance per process: a deployed bundle imports this package (it is never bundled in), so
 * the classes it extends are the ones the proc host checks against.
 */
export { FunctionProc, ServiceProc } from '../proc/types.js';
export type { ExitKind, ProcContext, ProcKind, ProcSpec, RestartPolicy, Status } from '../proc/types.js';
export type { CallOptions, DataHandler, DataMessage, DataPathApi, DataReply, EndpointAddress, PoolBuffer, Target } from '../proc/data.js';
export { CallTimeoutError, DataPathUnavailableError, ProcDataError, RemoteHandlerError, UnknownTargetError } from '../proc/data.js';
export { Actor } from '../actors/actor.js';
export { PersistentActor, InMemoryJournal, JOURNAL_BATCH_EVENTS_MAX, JOURNAL_BATCH_BYTES_MAX, type Journal, type JournalEntry, type Snapshot } from '../actors/persistent.js';
export { JournalConflictError } from '../actors/errors.js';
export { JournalUnavailableError } from '../proc/journal.js';
export type { ActorRef, Context } from '../actors/types.js';
