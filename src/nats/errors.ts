/**
 * Every failure the NATS port reports, one class each, all `NatsPortError`s discriminated by `type`.
 * Callers switch on `type` (or `instanceof`); messages say what to do about it.
 */
export type NatsErrorType =
  | 'key-exists'
  | 'wrong-revision'
  | 'no-responders'
  | 'timeout'
  | 'closed'
  | 'disconnected'
  | 'slow-consumer'
  | 'invalid-argument'
  | 'not-found'
  | 'permission'
  | 'connect'
  | 'server-missing'
  | 'server-start';

export class NatsPortError<T extends NatsErrorType = NatsErrorType> extends Error {
  constructor(
    readonly type: T,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NatsPortError';
  }
}

/** `Kv.create` on a key that holds a value. */
export class KeyExistsError extends NatsPortError<'key-exists'> {
  constructor(
    readonly bucket: string,
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super('key-exists', `key "${key}" already exists in bucket "${bucket}"; read it and update() with its revision instead`, options);
    this.name = 'KeyExistsError';
  }
}

/** A compare-and-set (`update`, `delete` with a revision) lost: someone wrote the key since that revision. */
export class WrongRevisionError extends NatsPortError<'wrong-revision'> {
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly expectedRevision: number,
    options?: { cause?: unknown },
  ) {
    super('wrong-revision', `key "${key}" in bucket "${bucket}" is no longer at revision ${expectedRevision}; re-read it and retry, or give up if it was a lease`, options);
    this.name = 'WrongRevisionError';
  }
}

/** A request found nobody subscribed to its subject. */
export class NoRespondersError extends NatsPortError<'no-responders'> {
  constructor(
    readonly subject: string,
    options?: { cause?: unknown },
  ) {
    super('no-responders', `no responders on "${subject}": nothing subscribes to it (is the service running?)`, options);
    this.name = 'NoRespondersError';
  }
}

/** A request or JetStream operation got no answer in time; it may or may not have taken effect. */
export class TimeoutError extends NatsPortError<'timeout'> {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super('timeout', `${operation} got no answer within ${timeoutMs} ms; it may still have taken effect, so re-read before retrying`, options);
    this.name = 'TimeoutError';
  }
}

/** The connection (or the subscription) was closed by us. */
export class ClosedError extends NatsPortError<'closed'> {
  constructor(what = 'the NATS connection', options?: { cause?: unknown }) {
    super('closed', `${what} is closed; connect again to continue`, options);
    this.name = 'ClosedError';
  }
}

/** The connection is down for now (the client keeps reconnecting): retry later. */
export class DisconnectedError extends NatsPortError<'disconnected'> {
  constructor(options?: { cause?: unknown }) {
    super('disconnected', 'the connection to NATS is down and being re-established; retry shortly', options);
    this.name = 'DisconnectedError';
  }
}

/** A subscriber fell more than its named bound behind. */
export class SlowConsumerError extends NatsPortError<'slow-consumer'> {
  constructor(
    readonly subject: string,
    readonly pendingMax: number,
    options?: { cause?: unknown },
  ) {
    super('slow-consumer', `the reader of "${subject}" fell ${pendingMax} messages behind (pendingMax); read faster or raise pendingMax, then resubscribe`, options);
    this.name = 'SlowConsumerError';
  }
}

/** Bad input from the caller: a malformed subject, key, bucket or option. */
export class InvalidArgumentError extends NatsPortError<'invalid-argument'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options);
    this.name = 'InvalidArgumentError';
  }
}

/** A stream or consumer that does not exist. */
export class NotFoundError extends NatsPortError<'not-found'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-found', message, options);
    this.name = 'NotFoundError';
  }
}

/** The server refused a subject to this connection's user (its permissions): asking again will not help. */
export class PermissionError extends NatsPortError<'permission'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('permission', message, options);
    this.name = 'PermissionError';
  }
}

/** No NATS server could be reached at connect time. */
export class ConnectError extends NatsPortError<'connect'> {
  constructor(
    readonly servers: readonly string[],
    options?: { cause?: unknown },
  ) {
    super('connect', `cannot connect to NATS at ${servers.join(', ')}: is nats-server running there? (\`npm run cluster\` starts one)`, options);
    this.name = 'ConnectError';
  }
}

/** The nats-server binary is not installed. */
export class ServerMissingError extends NatsPortError<'server-missing'> {
  constructor() {
    super('server-missing', 'nats-server is not installed; run `apt-get install nats-server` (Debian/Ubuntu) or put a nats-server binary on PATH');
    this.name = 'ServerMissingError';
  }
}

/** nats-server was found but did not come up. */
export class ServerStartError extends NatsPortError<'server-start'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('server-start', message, options);
    this.name = 'ServerStartError';
  }
}

/** Every error the port throws, for exhaustive `switch (e.type)`. */
export type NatsError =
  | KeyExistsError
  | WrongRevisionError
  | NoRespondersError
  | TimeoutError
  | ClosedError
  | DisconnectedError
  | SlowConsumerError
  | InvalidArgumentError
  | NotFoundError
  | ConnectError
  | ServerMissingError
  | ServerStartError;

export function isNatsError(e: unknown): e is NatsError {
  return e instanceof NatsPortError;
}
