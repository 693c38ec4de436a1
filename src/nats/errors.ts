/** NATS failures the control plane handles, discriminated by `type`. */
export class NatsPortError extends Error {
  constructor(
    readonly type: 'key-exists' | 'wrong-revision' | 'no-responders' | 'timeout' | 'closed' | 'server-missing' | 'server-start',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NatsPortError';
  }
}
