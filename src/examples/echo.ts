import { ServiceProc, type DataMessage } from '../proc/types.js';

/**
 * A data-path service: answers every call with the request's own buffer (no copy either way).
 * `sigma spawn echo --name echo`, then from another proc: `await ctx.call('echo', bytes)`.
 */
export default class Echo extends ServiceProc<never> {
  receive(): void {}
  onData(msg: DataMessage): DataMessage {
    return msg;
  }
}
