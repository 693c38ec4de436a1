import { FunctionProc } from '../proc/types.js';

/** Does nothing: the unit of the spawn benchmark. */
export default class Noop extends FunctionProc<[], null> {
  run(): null {
    return null;
  }
}
