import { FunctionProc } from '../proc/types.js';

/** Fails with args[0] as its message: for trying restart policies and error statuses. */
export default class Fail extends FunctionProc<[string?], never> {
  run([message]: [string?]): never {
    throw new Error(message ?? 'failed on purpose');
  }
}
