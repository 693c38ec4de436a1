import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as nact from 'nact';
import { pino } from 'pino';
import { createSystem, stateful, type ActorRef, type ActorSystem } from '../../actors/index.js';
import { median, nowMs, percentile, round, yieldLoop, type BenchContext, type Figures, type Suite } from '../harness.js';

const BATCH = 10_000;
const quiet = pino({ level: 'silent' });

interface Sizes {
  tellMsgs: number;
  asks: number;
  spawns: number;
  reps: number;
}

// ---- sigma-ts workloads -----------------------------------------------------------------------

type Recv = { n: number; ack: ActorRef<'ack'> | null };

/** One sender actor tells one receiver actor, paced by an ack per batch so the bounded mailbox never rejects. */
async function ourTell(total: number): Promise<number> {
  const sys = createSystem({ name: 'bench-tell', logger: quiet });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const receiver = sys.spawn(stateful(0, (count: number, m: Recv) => {
    if (m.ack !== null) m.ack.tell('ack');
    return count + 1;
  }), { mailbox: { capacity: BATCH } });
  let sent = 0;
  const sender = sys.spawn<'go' | 'ack'>((ctx) => ({
    receive: () => {
      if (sent >= total) return done();
      for (let i = 1; i <= BATCH; i++) receiver.tell({ n: sent + i, ack: i === BATCH ? ctx.self : null });
      sent += BATCH;
    },
  }));
  const t0 = nowMs();
  sender.tell('go');
  await finished;
  const dt = nowMs() - t0;
  await sys.shutdown();
  return (total / dt) * 1000;
}

async function ourAsk(count: number): Promise<number[]> {
  const sys = createSystem({ name: 'bench-ask', logger: quiet });
  const echo = sys.spawn<{ v: number; replyTo: ActorRef<number> }>(() => ({ receive: (m) => m.replyTo.tell(m.v) }));
  const lat: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    await echo.ask<number>((replyTo) => ({ v: i, replyTo }), 1000);
    lat.push((nowMs() - t0) * 1000);
  }
  await sys.shutdown();
  return lat;
}

async function ourSpawn(count: number): Promise<number> {
  const sys = createSystem({ name: 'bench-spawn', logger: quiet });
  const noop = () => ({ receive: () => {} });
  const t0 = nowMs();
  for (let i = 0; i < count; i++) sys.spawn(noop);
  const dt = nowMs() - t0;
  await sys.shutdown();
  return (count / dt) * 1000;
}

// ---- nact 7.6 workloads (same shapes, same counts) --------------------------------------------

async function nactTell(total: number): Promise<number> {
  const system = nact.start();
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const receiver = nact.spawn(system, (count: number = 0, m: Recv & { ack: unknown }) => {
    if (m.ack !== null) nact.dispatch(m.ack as never, 'ack');
    return count + 1;
  });
  let sent = 0;
  const sender = nact.spawn(system, (state: number = 0, _m: string, ctx: { self: unknown }) => {
    if (sent >= total) {
      done();
      return state;
    }
    for (let i = 1; i <= BATCH; i++) nact.dispatch(receiver, { n: sent + i, ack: i === BATCH ? ctx.self : null });
    sent += BATCH;
    return state;
  });
  const t0 = nowMs();
  nact.dispatch(sender, 'go');
  await finished;
  const dt = nowMs() - t0;
  nact.stop(system);
  return (total / dt) * 1000;
}

async function nactAsk(count: number): Promise<number[]> {
  const system = nact.start();
  const echo = nact.spawnStateless(system, (m: { v: number; replyTo: unknown }) => nact.dispatch(m.replyTo as never, m.v));
  const lat: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    await nact.query(echo, (replyTo: unknown) => ({ v: i, replyTo }), 1000);
    lat.push((nowMs() - t0) * 1000);
  }
  nact.stop(system);
  return lat;
}

async function nactSpawn(count: number): Promise<number> {
  const system = nact.start();
  const t0 = nowMs();
  // Explicit names: nact's random ones collide (birthday problem) at this count.
  for (let i = 0; i < count; i++) nact.spawnStateless(system, () => {}, `a${i}`);
  const dt = nowMs() - t0;
  nact.stop(system);
  return (count / dt) * 1000;
}

// ---- flood ------------------------------------------------------------------------------------

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** 1 M messages at a bounded mailbox as fast as a loop can send them; peak extra heap in MB. */
async function flood(sys: ActorSystem, capacity: number): Promise<Figures> {
  let handled = 0;
  const slow = sys.spawn(stateful(0, (n: number) => (handled++, n + 1)), { mailbox: { capacity, overflow: 'drop-oldest' } });
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = base;
  for (let i = 0; i < 1_000_000; i++) {
    slow.tell(i);
    if ((i & 0x3fff) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
  }
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  const stats = sys.mailboxStats(slow)!;
  await yieldLoop();
  return {
    mailbox_peak_mb_flood: round((peak - base) / 2 ** 20, 2),
    mailbox_capacity_flood: capacity,
    mailbox_peak_messages_flood: stats.peak,
    mailbox_dropped_flood: stats.dropped,
    flood_handled: handled,
  };
}

async function repeat<T>(ctx: BenchContext, label: string, reps: number, fn: () => Promise<T>): Promise<T[]> {
  const bar = ctx.progress(label, reps);
  const out: T[] = [];
  for (let i = 0; i < reps; i++) {
    out.push(await fn());
    bar.tick();
    await yieldLoop();
  }
  bar.done();
  return out;
}

export const actorsSuite: Suite = {
  name: 'actors',
  description: 'actor kernel: tell, ask, spawn and a mailbox flood, against nact 7.6 in the same run',
  async run(ctx) {
    const s: Sizes = ctx.quick ? { tellMsgs: 1_000_000, asks: 20_000, spawns: 50_000, reps: 3 } : { tellMsgs: 5_000_000, asks: 100_000, spawns: 200_000, reps: 5 };
    await ourTell(200_000); // warm-up, both sides
    await nactTell(200_000);
    const tell = median(await repeat(ctx, 'tell (sigma)', s.reps, () => ourTell(s.tellMsgs)));
    const nTell = median(await repeat(ctx, 'tell (nact)', s.reps, () => nactTell(s.tellMsgs)));
    const ask = (await repeat(ctx, 'ask (sigma)', 1, () => ourAsk(s.asks)))[0]!;
    const nAsk = (await repeat(ctx, 'ask (nact)', 1, () => nactAsk(s.asks)))[0]!;
    const spawn = median(await repeat(ctx, 'spawn (sigma)', s.reps, () => ourSpawn(s.spawns)));
    const nSpawn = median(await repeat(ctx, 'spawn (nact)', s.reps, () => nactSpawn(s.spawns)));
    const sys = createSystem({ name: 'bench-flood', logger: quiet });
    const fl = await flood(sys, 10_000);
    await sys.shutdown();
    const askP50 = percentile(ask, 50);
    const nAskP50 = percentile(nAsk, 50);
    return {
      tell_msgs_per_s: Math.round(tell),
      ask_p50_us: round(askP50),
      ask_p99_us: round(percentile(ask, 99)),
      spawn_actors_per_s: Math.round(spawn),
      ...fl,
      nact_tell_msgs_per_s: Math.round(nTell),
      nact_ask_p50_us: round(nAskP50),
      nact_ask_p99_us: round(percentile(nAsk, 99)),
      nact_spawn_actors_per_s: Math.round(nSpawn),
      tell_vs_nact: round(tell / nTell),
      ask_p50_vs_nact: round(nAskP50 / askP50),
      spawn_vs_nact: round(spawn / nSpawn),
    };
  },
};
