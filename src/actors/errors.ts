/**
 * One error class per failure, each with a `type` for discriminated handling and a message that tells
 * the caller what to do about it.
 */
export abstract class ActorError extends Error {
  abstract readonly type: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** ask() got no reply in time. The request may still be processed: make handlers idempotent. */
export class AskTimeoutError extends ActorError {
  readonly type = 'ask-timeout';
  constructor(readonly target: string, readonly timeoutMs: number) {
    super(`ask to ${target} got no reply within ${timeoutMs} ms; raise timeoutMs or check that the actor replies`);
  }
}

/** A bounded mailbox with the `reject` policy is full: back off, or give the actor a larger mailbox. */
export class MailboxFullError extends ActorError {
  readonly type = 'mailbox-full';
  constructor(readonly target: string, readonly capacity: number) {
    super(`mailbox of ${target} is full (${capacity} messages); the receiver is slower than its senders — back off or raise mailbox.capacity`);
  }
}

/** The target has stopped: the message went to dead letters. */
export class ActorStoppedError extends ActorError {
  readonly type = 'actor-stopped';
  constructor(readonly target: string) {
    super(`actor ${target} has stopped; messages to it go to dead letters`);
  }
}

/** Names are unique among siblings. */
export class ActorNameTakenError extends ActorError {
  readonly type = 'name-taken';
  constructor(readonly parent: string, readonly childName: string) {
    super(`${parent} already has a child named "${childName}"; pick another name or stop the existing one first`);
  }
}

export class InvalidActorNameError extends ActorError {
  readonly type = 'invalid-name';
  constructor(readonly childName: string) {
    super(`invalid actor name "${childName}": use 1-128 characters from [A-Za-z0-9_.:-] not starting with "$"`);
  }
}

/** Options that cannot work together or are out of range. */
export class InvalidOptionError extends ActorError {
  readonly type = 'invalid-option';
  constructor(readonly option: string, detail: string) {
    super(`invalid option ${option}: ${detail}`);
  }
}

/** Supervision gave up: more restarts than the intensity allows, so the failure went up the tree. */
export class RestartIntensityExceededError extends ActorError {
  readonly type = 'restart-intensity-exceeded';
  constructor(readonly child: string, readonly maxRestarts: number, readonly withinMs: number, cause: unknown) {
    super(`${child} failed more than ${maxRestarts} times within ${withinMs} ms; escalating`, { cause });
  }
}

/** A child's failure escalated to its parent (the `escalate` decision). */
export class EscalatedError extends ActorError {
  readonly type = 'escalated';
  constructor(readonly child: string, cause: unknown) {
    super(`failure of ${child} escalated: ${describe(cause)}`, { cause });
  }
}

/** The system is shutting down or has shut down: no new actors. */
export class SystemStoppedError extends ActorError {
  readonly type = 'system-stopped';
  constructor(readonly system: string) {
    super(`actor system ${system} is shutting down; create a new system`);
  }
}

/** A remote frame that cannot be decoded or addresses nothing we have. */
export class RemoteDeliveryError extends ActorError {
  readonly type = 'remote-delivery';
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`remote delivery failed: ${detail}`, options);
  }
}

/** The journal's sequence moved under us: another writer has the same persistence id. */
export class JournalConflictError extends ActorError {
  readonly type = 'journal-conflict';
  constructor(readonly persistenceId: string, readonly expectedSeq: number, readonly actualSeq: number) {
    super(`journal ${persistenceId} is at sequence ${actualSeq}, expected ${expectedSeq}: two actors persist under one id`);
  }
}

/** A journal record this code cannot read on from (not what an append wrote): recovery stops rather than skip events. */
export class JournalCorruptError extends ActorError {
  readonly type = 'journal-corrupt';
  constructor(readonly persistenceId: string, readonly key: string, detail: string) {
    super(`journal ${persistenceId}: record ${key} is ${detail}; restore the journal from a backup or remove the persistence id's records`);
  }
}

/** A read from a sequence inside a batch: reads start at 0 or at a sequence an append returned (a batch's end). */
export class JournalReadError extends ActorError {
  readonly type = 'journal-read';
  constructor(readonly persistenceId: string, readonly afterSeq: number) {
    super(`journal ${persistenceId}: sequence ${afterSeq} is inside a batch; read from 0 or from a sequence append returned (snapshots are taken there)`);
  }
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Builds an error without capturing a stack trace. For errors returned as values on hot paths
 * (tryTell under a flood), where a stack costs microseconds and says nothing the fields do not.
 */
export function withoutStack<T>(make: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
