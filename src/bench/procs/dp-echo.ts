import { ServiceProc, type DataMessage } from '../../proc/types.js';
import { gcsSince, isCommand, monoUs, runQueueWaitUs, FORGED_LENGTH_BYTES, procCpuUs, recordGcs, setHostBusyPoll, type ProcCommand } from './dp-commands.js';
import { touchPages } from '../suites/datapath-wire.js';

/** Requests noted while tracing (the tail analysis traces a few thousand). */
const TRACE_NOTES_MAX = 100_000;

/**
 * The `datapath` benchmark's server proc: touches every 4 KiB page of each request (checking the fill
 * byte at both ends) and answers with the request's own buffer (zero copy). Small JSON payloads are the
 * bench's commands (`stats`); a delivered descriptor of FORGED_LENGTH_BYTES is one of the forger's, which
 * must never arrive (counted, never answered).
 */
export default class BenchEcho extends ServiceProc<never> {
  received = 0;
  forgedDelivered = 0;
  /** While tracing: [arrival µs, run-queue wait µs so far] per request, bounded. */
  #trace: Array<[number, number]> | undefined;
  receive(): void {}
  preStart(): void {
    recordGcs();
  }
  onData(msg: DataMessage): DataMessage | string | undefined {
    const bytes = msg.bytes;
    if (bytes.length === FORGED_LENGTH_BYTES) {
      this.forgedDelivered++;
      return undefined;
    }
    if (isCommand(bytes)) {
      const cmd = JSON.parse(new TextDecoder().decode(bytes)) as ProcCommand;
      if (cmd.op === 'busy-poll') return setHostBusyPoll(cmd.windowUs);
      if (cmd.op === 'gcs') return JSON.stringify({ gcs: gcsSince(cmd.sinceUs) });
      if (cmd.op === 'trace') {
        const notes = this.#trace ?? [];
        this.#trace = cmd.on ? [] : undefined;
        return JSON.stringify({ notes });
      }
      return JSON.stringify({ received: this.received, forgedDelivered: this.forgedDelivered, cpuUs: procCpuUs(), pid: process.pid });
    }
    this.received++;
    if (this.#trace !== undefined && this.#trace.length < TRACE_NOTES_MAX) this.#trace.push([monoUs(), runQueueWaitUs() ?? 0]);
    touchPages(bytes, bytes[0]!);
    return msg;
  }
}
