/**
 * The actors suite's workloads on nact 7.6, the baseline (same shapes and counts as actors-sigma.ts).
 * nact mailboxes are unbounded and each message runs in its own setImmediate.
 */
import nact from 'nact';
import { BenchError, collectGarbage, perSecond, percentile, stopwatch, yieldLoop } from '../harness.js';
import { TELL_BATCH, type ActorWorkloads, type AskRun, type SpawnRun, type TellRun } from './actors-workload.js';

type Ref = ReturnType<typeof nact.start>;
type Recv = { n: number; ack: Ref | null };

export class NactWorkloads implements ActorWorkloads {
  readonly #system = nact.start();

  async tell(total: number): Promise<TellRun> {
    if (total % TELL_BATCH !== 0) throw new BenchError(`tell count ${total} must be a multiple of the batch ${TELL_BATCH}`);
    let received = 0;
    const receiver = nact.spawn(this.#system, (count: number = 0, m: Recv) => {
      received++;
      if (m.ack !== null) nact.dispatch(m.ack, 'ack');
      return count + 1;
    });
    let sent = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const sender = nact.spawn(this.#system, (state: number = 0, _m: 'go' | 'ack', ctx) => {
      if (sent >= total) {
        done();
        return state;
      }
      for (let i = 1; i <= TELL_BATCH; i++) nact.dispatch(receiver, { n: sent + i, ack: i === TELL_BATCH ? ctx.self : null } satisfies Recv);
      sent += TELL_BATCH;
      return state;
    });
    const sw = stopwatch();
    nact.dispatch(sender, 'go');
    await finished;
    const t = sw.read();
    nact.stop(sender);
    nact.stop(receiver);
    if (received !== total) throw new BenchError(`nact receiver got ${received} of ${total} messages`);
    return { perS: perSecond(total, t.wallMs), cpuNsPerMsg: (t.cpuMs * 1e6) / total };
  }

  async ask(count: number): Promise<AskRun> {
    const echo = nact.spawnStateless(this.#system, (m: { v: number; replyTo: Ref }) => nact.dispatch(m.replyTo, m.v));
    const lat = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const v = await nact.query(echo, (replyTo: Ref) => ({ v: i, replyTo }), 1_000);
      lat[i] = (performance.now() - t0) * 1000;
      if (v !== i) throw new BenchError(`nact echo answered ${String(v)} to ${i}`);
    }
    nact.stop(echo);
    const xs = Array.from(lat);
    return { p50Us: percentile(xs, 50), p99Us: percentile(xs, 99) };
  }

  /** Explicit names: nact's generated ones are random and collide at these counts. */
  async spawn(names: readonly string[], memory: boolean): Promise<SpawnRun> {
    const noop = (): void => {};
    let spawnMs = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const parent = nact.spawnStateless(this.#system, (_m: 'go', ctx) => {
      const sw = stopwatch();
      for (let i = 0; i < names.length; i++) nact.spawnStateless(ctx.self, noop, names[i]);
      spawnMs = sw.read().wallMs;
      done();
    });
    if (memory) {
      // Earlier runs' nact.stop() release their actors in setImmediate callbacks; let them run first.
      for (let i = 0; i < 3; i++) await yieldLoop();
      collectGarbage();
    }
    const heap0 = process.memoryUsage().heapUsed;
    nact.dispatch(parent, 'go');
    await finished;
    if (memory) collectGarbage();
    const bytesPerActor = memory ? (process.memoryUsage().heapUsed - heap0) / names.length : Number.NaN;
    // nact.stop completes in setImmediate callbacks it does not expose, so its stop is not timed.
    nact.stop(parent);
    return { perS: perSecond(names.length, spawnMs), bytesPerActor };
  }

  async close(): Promise<void> {
    nact.stop(this.#system);
  }
}
