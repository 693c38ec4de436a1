import { ServiceProc, type DataMessage } from '../../proc/types.js';
import { isCommand, FORGED_LENGTH_BYTES, procCpuUs, setHostBusyPoll, type ProcCommand } from './dp-commands.js';
import { touchPages } from '../suites/datapath-wire.js';

/**
 * The `datapath` benchmark's server proc: touches every 4 KiB page of each request (checking the fill
 * byte at both ends) and answers with the request's own buffer (zero copy). Small JSON payloads are the
 * bench's commands (`stats`); a delivered descriptor of FORGED_LENGTH_BYTES is one of the forger's, which
 * must never arrive (counted, never answered).
 */
export default class BenchEcho extends ServiceProc<never> {
  received = 0;
  forgedDelivered = 0;
  receive(): void {}
  onData(msg: DataMessage): DataMessage | string | undefined {
    const bytes = msg.bytes;
    if (bytes.length === FORGED_LENGTH_BYTES) {
      this.forgedDelivered++;
      return undefined;
    }
    if (isCommand(bytes)) {
      const cmd = JSON.parse(new TextDecoder().decode(bytes)) as ProcCommand;
      if (cmd.op === 'busy-poll') return setHostBusyPoll(cmd.windowUs);
      return JSON.stringify({ received: this.received, forgedDelivered: this.forgedDelivered, cpuUs: procCpuUs() });
    }
    this.received++;
    touchPages(bytes, bytes[0]!);
    return msg;
  }
}
