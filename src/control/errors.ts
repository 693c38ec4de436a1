import { CONTROL_ERROR_TYPES, type ControlErrorType, type WireError } from './protocol/index.js';

/** Errors a client gets back from the control plane, typed by `type`, with what to do about them. */
export class ControlError extends Error {
  constructor(
    readonly type: ControlErrorType,
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
    // A type this version does not know (a newer peer) is kept in the message, typed as internal.
    const known = (CONTROL_ERROR_TYPES as readonly string[]).includes(w.type);
    return new ControlError(known ? (w.type as ControlErrorType) : 'internal', known ? w.message : `${w.type}: ${w.message}`, w.field);
  }
}
