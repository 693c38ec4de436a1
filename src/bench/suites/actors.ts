/**
 * Suite `actors`: the actor kernel's tell throughput, ask latency, spawn rate and a mailbox flood, with
 * the same workloads on nact 7.6 in the same run as the baseline. Workloads: actors-sigma.ts,
 * actors-nact.ts (shared shapes in actors-workload.ts), with the same counts, warm-up and repetitions,
 * interleaved in alternating order. The flood runs in child processes (actors-flood.ts): nact against our
 * mailbox unbounded (like with like), and ours bounded (drop-oldest) reported on its own.
 */
import { loadavg } from 'node:os';
import { BenchError, median, medianOf, perSecond, repeat, round, yieldLoop, type BenchContext, type RepeatOptions, type Suite } from '../harness.js';
import { floodInChild } from './actors-flood.js';
import { NactWorkloads } from './actors-nact.js';
import { SigmaWorkloads } from './actors-sigma.js';
import type { ActorWorkloads, AskRun, SpawnRun, TellRun } from './actors-workload.js';

export const FLOOD_MESSAGES = 1_000_000;
/** Our bounded flood's mailbox (drop-oldest): reported on its own, since nact has no bound to compare. */
export const FLOOD_CAPACITY = 10_000;
/** Our unbounded flood: room for every message (nothing dropped or rejected), as nact's mailbox. */
export const FLOOD_CAPACITY_UNBOUNDED = FLOOD_MESSAGES;

/**
 * Counts, warm-up and repetitions are the same on both sides. The two run in one process (one system
 * each, as a process would keep in production), interleaved run by run in alternating order — ours
 * first in even runs, nact first in odd ones — so neither always runs second in a heap the other
 * has filled, and load from elsewhere on the machine falls on both alike.
 */
interface Plan {
  tellMsgs: number;
  asks: number;
  spawns: number;
  runs: RepeatOptions;
}
const QUICK: Plan = { tellMsgs: 200_000, asks: 20_000, spawns: 50_000, runs: { warmup: 2, reps: 3 } };
const FULL: Plan = { tellMsgs: 2_000_000, asks: 100_000, spawns: 200_000, runs: { warmup: 2, reps: 7 } };

type Side = 'sigma' | 'nact';
const SIDES_EVEN: readonly Side[] = ['sigma', 'nact'];
const SIDES_ODD: readonly Side[] = ['nact', 'sigma'];

/** One workload on both sides, `warmup + reps` runs each, alternating which side goes first; the measured runs per side. */
async function interleaved<T>(ctx: BenchContext, label: string, o: RepeatOptions, run: Record<Side, () => Promise<T>>): Promise<Record<Side, T[]>> {
  const out: Record<Side, T[]> = { sigma: [], nact: [] };
  const bar = ctx.progress(label, 2 * (o.warmup + o.reps));
  try {
    for (let i = 0; i < o.warmup + o.reps; i++) {
      for (const side of i % 2 === 0 ? SIDES_EVEN : SIDES_ODD) {
        await yieldLoop();
        const r = await run[side]();
        if (i >= o.warmup) out[side].push(r);
        bar.tick();
      }
    }
  } finally {
    bar.done();
  }
  return out;
}

interface Results {
  tell: Record<Side, TellRun[]>;
  ask: Record<Side, AskRun[]>;
  spawn: Record<Side, SpawnRun[]>;
  bytesPerActor: Record<Side, number>;
}

async function runBoth(ctx: BenchContext, p: Plan): Promise<Results> {
  const names = Array.from({ length: p.spawns }, (_, i) => `a${i}`);
  const w: Record<Side, ActorWorkloads> = { sigma: new SigmaWorkloads(), nact: new NactWorkloads() };
  try {
    const tell = await interleaved(ctx, 'tell', p.runs, { sigma: () => w.sigma.tell(p.tellMsgs), nact: () => w.nact.tell(p.tellMsgs) });
    const ask = await interleaved(ctx, 'ask', p.runs, { sigma: () => w.sigma.ask(p.asks), nact: () => w.nact.ask(p.asks) });
    const spawn = await interleaved(ctx, 'spawn', p.runs, { sigma: () => w.sigma.spawn(names, false), nact: () => w.nact.spawn(names, false) });
    // Memory once per side, each between its own full GCs.
    const memory = await interleaved(ctx, 'spawn memory', { warmup: 0, reps: 1 }, { sigma: () => w.sigma.spawn(names, true), nact: () => w.nact.spawn(names, true) });
    return { tell, ask, spawn, bytesPerActor: { sigma: memory.sigma[0]!.bytesPerActor, nact: memory.nact[0]!.bytesPerActor } };
  } finally {
    await w.sigma.close();
    await w.nact.close();
  }
}

export const actorsSuite: Suite = {
  name: 'actors',
  description: 'actor kernel: tell, ask, spawn and a mailbox flood, against nact 7.6 in the same run',
  comparisons: [
    { figure: 'tell_msgs_per_s', baseline: 'nact_tell_msgs_per_s', better: 'higher', ratio: 'tell_vs_nact' },
    { figure: 'ask_p50_us', baseline: 'nact_ask_p50_us', better: 'lower', ratio: 'ask_p50_vs_nact' },
    { figure: 'ask_p99_us', baseline: 'nact_ask_p99_us', better: 'lower', ratio: 'ask_p99_vs_nact' },
    { figure: 'spawn_actors_per_s', baseline: 'nact_spawn_actors_per_s', better: 'higher', ratio: 'spawn_vs_nact' },
    { figure: 'spawn_bytes_per_actor', baseline: 'nact_spawn_bytes_per_actor', better: 'lower' },
    { figure: 'tell_cpu_ns_per_msg', baseline: 'nact_tell_cpu_ns_per_msg', better: 'lower' },
    // Like with like: both mailboxes unbounded (ours with room for every message). Our bounded flood has no nact counterpart.
    { figure: 'mailbox_peak_mb_flood_unbounded', baseline: 'nact_mailbox_peak_mb_flood', better: 'lower', ratio: 'flood_unbounded_heap_vs_nact' },
    { figure: 'mailbox_peak_rss_mb_flood_unbounded', baseline: 'nact_mailbox_peak_rss_mb_flood', better: 'lower' },
    { figure: 'flood_send_ms_unbounded', baseline: 'nact_flood_send_ms', better: 'lower', ratio: 'flood_unbounded_send_vs_nact' },
  ],
  goals: [
    { figure: 'tell_msgs_per_s', op: '>=', target: 2_000_000 },
    { figure: 'tell_vs_nact', op: '>=', target: 2 },
    { figure: 'ask_p50_us', op: '<=', target: 5 },
    { figure: 'spawn_actors_per_s', op: '>=', target: 200_000 },
    { figure: 'mailbox_peak_messages_flood', op: '<=', target: 'mailbox_capacity_flood' },
  ],
  async run(ctx) {
    const p = ctx.quick ? QUICK : FULL;
    const load1m = loadavg()[0]!;
    const both = await runBoth(ctx, p);
    const ours = { tell: both.tell.sigma, ask: both.ask.sigma, spawn: both.spawn.sigma, bytesPerActor: both.bytesPerActor.sigma };
    const nact = { tell: both.tell.nact, ask: both.ask.nact, spawn: both.spawn.nact, bytesPerActor: both.bytesPerActor.nact };
    // Each flood in a fresh child process (its own heap): nact, ours unbounded, ours bounded.
    const once = { warmup: 0, reps: 1 };
    const nf = (await repeat(ctx, 'flood (nact, child)', once, () => floodInChild('nact', FLOOD_MESSAGES, FLOOD_CAPACITY)))[0]!;
    const fu = (await repeat(ctx, 'flood (sigma unbounded, child)', once, () => floodInChild('sigma', FLOOD_MESSAGES, FLOOD_CAPACITY_UNBOUNDED)))[0]!;
    const f = (await repeat(ctx, 'flood (sigma bounded, child)', once, () => floodInChild('sigma', FLOOD_MESSAGES, FLOOD_CAPACITY)))[0]!;
    if (fu.dropped + fu.rejected !== 0) throw new BenchError(`the unbounded flood dropped ${fu.dropped} and rejected ${fu.rejected}: its capacity ${fu.capacity} is no longer room for all ${FLOOD_MESSAGES}`);
    return {
      tell_msgs_per_s: Math.round(medianOf(ours.tell, (r) => r.perS)),
      ask_p50_us: round(medianOf(ours.ask, (r) => r.p50Us)),
      ask_p99_us: round(medianOf(ours.ask, (r) => r.p99Us)),
      spawn_actors_per_s: Math.round(medianOf(ours.spawn, (r) => r.perS)),
      mailbox_peak_mb_flood: round(f.heapMb, 3),
      nact_tell_msgs_per_s: Math.round(medianOf(nact.tell, (r) => r.perS)),
      nact_ask_p50_us: round(medianOf(nact.ask, (r) => r.p50Us)),
      nact_ask_p99_us: round(medianOf(nact.ask, (r) => r.p99Us)),
      nact_spawn_actors_per_s: Math.round(medianOf(nact.spawn, (r) => r.perS)),
      // Extras: what each figure cost, the spread of the medians, and the flood's evidence of a bound.
      tell_msgs_per_s_min: Math.round(Math.min(...ours.tell.map((r) => r.perS))),
      tell_msgs_per_s_max: Math.round(Math.max(...ours.tell.map((r) => r.perS))),
      tell_cpu_ns_per_msg: round(medianOf(ours.tell, (r) => r.cpuNsPerMsg), 1),
      nact_tell_cpu_ns_per_msg: round(medianOf(nact.tell, (r) => r.cpuNsPerMsg), 1),
      spawn_bytes_per_actor: Math.round(ours.bytesPerActor),
      nact_spawn_bytes_per_actor: Math.round(nact.bytesPerActor),
      stop_actors_per_s: Math.round(median(ours.spawn.map((r) => perSecond(p.spawns, r.stopMs!)))),
      mailbox_capacity_flood: f.capacity,
      mailbox_peak_messages_flood: f.peakMessages,
      mailbox_dropped_flood: f.dropped,
      mailbox_rejected_flood: f.rejected,
      flood_handled: f.handled,
      mailbox_peak_rss_mb_flood: round(f.rssMb, 3),
      flood_send_ms: round(f.sendMs, 1),
      mailbox_peak_mb_flood_unbounded: round(fu.heapMb, 3),
      mailbox_peak_rss_mb_flood_unbounded: round(fu.rssMb, 3),
      flood_send_ms_unbounded: round(fu.sendMs, 1),
      flood_handled_unbounded: fu.handled,
      nact_mailbox_peak_mb_flood: round(nf.heapMb, 3),
      nact_mailbox_peak_rss_mb_flood: round(nf.rssMb, 3),
      nact_flood_send_ms: round(nf.sendMs, 1),
      flood_messages: FLOOD_MESSAGES,
      tell_messages_per_run: p.tellMsgs,
      asks_per_run: p.asks,
      spawns_per_run: p.spawns,
      runs_sigma: p.runs.reps,
      runs_nact: p.runs.reps,
      warmup_runs_each: p.runs.warmup,
      load_avg_1m_at_start: round(load1m),
    };
  },
};
