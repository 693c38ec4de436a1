import type { WireError } from './protocol.js';

/** Errors a client gets back from the control plane, typed by `type`, with what to do about them. */
export class ControlError extends Error {
  constructor(
    readonly type: 'bad-spec' | 'unknown-realm' | 'unknown-program' | 'never-fits' | 'queue-full' | 'no-scheduler' | 'unknown-proc' | 'realm-exists' | 'internal',
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }

  toWire(): WireError {
    return { type: this.type, message: this.message, ...(this.field === undefined ? {} : { field: this.field }) };
  }

  static fromWire(w: WireError): ControlError {
    return new ControlError(w.type as ControlError['type'], w.message, w.field);
  }
}
