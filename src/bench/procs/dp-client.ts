import { ServiceProc, type DataMessage } from '../../proc/types.js';
import { BenchError } from '../harness.js';
import { touchPages } from '../suites/datapath-wire.js';
import { fillFor, gcsSince, monoUs, procCpuUs, recordGcs, runQueueWaitUs, setHostBusyPoll, type ProcCommand } from './dp-commands.js';

/** The server proc's name (args[0] overrides it). */
const DEFAULT_TARGET = 'dpb-echo';
/** No answer this late is a broken data path, not a slow one (the suite bounds each command too). */
const CALL_TIMEOUT_MS = 30_000;
/** One options object for every call: the bench's own code adds no garbage per round trip it can avoid (the tail analysis counts GCs). */
const CALL_OPTIONS = { timeoutMs: CALL_TIMEOUT_MS } as const;

/**
 * The `datapath` benchmark's client proc, in a host process of its own (`dedicated`): on the suite's
 * command it fills a pool buffer of N bytes, `ctx.callWith`s the server with it and touches every page
 * of the answer in place, timing each round trip here — spawn and command costs are not in the figures.
 * Answers (JSON): `{ rttsUs }` for a latency batch, `{ completed, wallMs, cpuUs }` for a throughput phase.
 */
export default class BenchClient extends ServiceProc<never> {
  #seq = 0;
  receive(): void {}

  preStart(): void {
    recordGcs();
  }

  async onData(msg: DataMessage): Promise<string> {
    const cmd = JSON.parse(new TextDecoder().decode(msg.bytes)) as ProcCommand;
    if (cmd.op === 'latency') return JSON.stringify(cmd.detail === true ? await this.#latencyDetail(cmd.sizeBytes, cmd.count, cmd.warmup) : { rttsUs: await this.#latency(cmd.sizeBytes, cmd.count, cmd.warmup) });
    if (cmd.op === 'gcs') return JSON.stringify({ gcs: gcsSince(cmd.sinceUs) });
    if (cmd.op === 'throughput') return JSON.stringify(await this.#throughput(cmd.sizeBytes, cmd.window, cmd.durationMs));
    if (cmd.op === 'cpu') return JSON.stringify({ cpuUs: procCpuUs(), pid: process.pid });
    if (cmd.op === 'busy-poll') return setHostBusyPoll(cmd.windowUs);
    throw new BenchError(`the bench client proc has no command ${cmd.op}`);
  }

  get #target(): string {
    const t = this.proc.args[0];
    return typeof t === 'string' ? t : DEFAULT_TARGET;
  }

  /** One round trip: fill, call, touch the answer where it lies. */
  async #roundTrip(sizeBytes: number): Promise<void> {
    const fill = fillFor(++this.#seq);
    const buf = this.proc.alloc(sizeBytes);
    buf.bytes.fill(fill);
    await this.proc.callWith(this.#target, buf, (answer) => touchPages(answer, fill), CALL_OPTIONS);
  }

  async #latency(sizeBytes: number, count: number, warmup: number): Promise<number[]> {
    const rtts: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const t0 = performance.now();
      await this.#roundTrip(sizeBytes);
      if (i >= warmup) rtts.push(Math.round((performance.now() - t0) * 10_000) / 10);
    }
    return rtts;
  }

  /**
   * The same round trips, each with its start (µs of CLOCK_MONOTONIC, to line it up with other
   * processes' events) and how long this host's main thread waited on a run queue during it.
   */
  async #latencyDetail(sizeBytes: number, count: number, warmup: number): Promise<{ rttsUs: number[]; startsUs: number[]; runQueueUs: number[] }> {
    const rttsUs: number[] = [];
    const startsUs: number[] = [];
    const runQueueUs: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const w0 = runQueueWaitUs() ?? 0;
      const start = monoUs();
      const t0 = performance.now();
      await this.#roundTrip(sizeBytes);
      const rtt = Math.round((performance.now() - t0) * 10_000) / 10;
      if (i < warmup) continue;
      rttsUs.push(rtt);
      startsUs.push(start);
      runQueueUs.push(Math.round((runQueueWaitUs() ?? 0) - w0));
    }
    return { rttsUs, startsUs, runQueueUs };
  }

  async #throughput(sizeBytes: number, window: number, durationMs: number): Promise<{ completed: number; wallMs: number; cpuUs: number }> {
    const cpu0 = procCpuUs();
    let completed = 0;
    const t0 = performance.now();
    const deadline = t0 + durationMs;
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (performance.now() < deadline) {
          await this.#roundTrip(sizeBytes);
          completed++;
        }
      }),
    );
    return { completed, wallMs: performance.now() - t0, cpuUs: procCpuUs() - cpu0 };
  }
}
