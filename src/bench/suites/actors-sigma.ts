/** The actors suite's workloads on our kernel (src/actors). */
import { pino } from 'pino';
import { createSystem, stateful, type ActorRef, type ActorSystem, type Context } from '../../actors/index.js';
import { BenchError, collectGarbage, perSecond, percentile, stopwatch } from '../harness.js';
import { ASK_TIMEOUT_MS, TELL_BATCH, type ActorWorkloads, type AskRun, type SpawnRun, type TellRun } from './actors-workload.js';

type Recv = { n: number; ack: ActorRef<'ack'> | null };
type Echo = { v: number; replyTo: ActorRef<number> };

export class SigmaWorkloads implements ActorWorkloads {
  readonly #sys: ActorSystem;
  #failure: ((e: unknown) => void) | undefined;

  constructor() {
    // A failed actor (e.g. a tell the mailbox rejected) would stall a run; fail it instead.
    this.#sys = createSystem({ name: 'bench', logger: pino({ level: 'silent' }), onEvent: (e) => e.type === 'failed' && this.#failure?.(e.error) });
  }

  /** Resolves when `start` calls done; rejects if any actor fails meanwhile. */
  #until(start: (done: () => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#failure = reject;
      start(resolve);
    }).finally(() => (this.#failure = undefined));
  }

  async tell(total: number): Promise<TellRun> {
    if (total % TELL_BATCH !== 0) throw new BenchError(`tell count ${total} must be a multiple of the batch ${TELL_BATCH}`);
    let received = 0;
    const receiver = this.#sys.spawn(
      stateful(0, (count: number, m: Recv) => {
        received++;
        if (m.ack !== null) m.ack.tell('ack');
        return count + 1;
      }),
      { mailbox: { capacity: TELL_BATCH } },
    );
    let sent = 0;
    let done!: () => void;
    const sender = this.#sys.spawn<'go' | 'ack'>((ctx) => ({
      receive: () => {
        if (sent >= total) return done();
        for (let i = 1; i <= TELL_BATCH; i++) receiver.tell({ n: sent + i, ack: i === TELL_BATCH ? ctx.self : null });
        sent += TELL_BATCH;
      },
    }));
    const sw = stopwatch();
    await this.#until((d) => {
      done = d;
      sender.tell('go');
    });
    const t = sw.read();
    const rejected = this.#sys.mailboxStats(receiver)?.rejected;
    await Promise.all([this.#sys.stop(sender), this.#sys.stop(receiver)]);
    if (received !== total || rejected !== 0) throw new BenchError(`receiver got ${received} of ${total} messages, ${rejected} rejected`);
    return { perS: perSecond(total, t.wallMs), cpuNsPerMsg: (t.cpuMs * 1e6) / total };
  }

  async ask(count: number): Promise<AskRun> {
    const echo = this.#sys.spawn<Echo>(() => ({ receive: (m) => m.replyTo.tell(m.v) }));
    const lat = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      const v = await echo.ask<number>((replyTo) => ({ v: i, replyTo }), ASK_TIMEOUT_MS);
      lat[i] = (performance.now() - t0) * 1000;
      if (v !== i) throw new BenchError(`echo answered ${v} to ${i}`);
    }
    await this.#sys.stop(echo);
    const xs = Array.from(lat);
    return { p50Us: percentile(xs, 50), p99Us: percentile(xs, 99) };
  }

  async spawn(names: readonly string[], memory: boolean): Promise<SpawnRun> {
    const noop = () => ({ receive: () => {} });
    let spawnMs = 0;
    const parent = this.#sys.spawn<() => void>((ctx: Context<() => void>) => ({
      receive: (reply) => {
        const sw = stopwatch();
        for (let i = 0; i < names.length; i++) ctx.spawn(noop, { name: names[i]! });
        spawnMs = sw.read().wallMs;
        reply();
      },
    }));
    if (memory) collectGarbage();
    const heap0 = process.memoryUsage().heapUsed;
    await this.#until((done) => parent.tell(done));
    if (memory) collectGarbage();
    const bytesPerActor = memory ? (process.memoryUsage().heapUsed - heap0) / names.length : Number.NaN;
    const stop = stopwatch();
    await this.#sys.stop(parent);
    const stopMs = stop.read().wallMs;
    return { perS: perSecond(names.length, spawnMs), bytesPerActor, stopMs };
  }

  close(): Promise<void> {
    return this.#sys.shutdown();
  }
}
