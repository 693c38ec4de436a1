/**
 * Suite `actors`: the actor kernel's tell throughput, ask latency, spawn rate and a mailbox flood, with
 * the same workloads on nact 7.6 in the same run as the baseline. Workloads: actors-sigma.ts,
 * actors-nact.ts (shared shapes in actors-workload.ts); the flood runs in child processes (actors-flood.ts).
 */
import { loadavg } from 'node:os';
import { median, medianOf, perSecond, repeat, round, type BenchContext, type RepeatOptions, type Suite } from '../harness.js';
import { floodInChild } from './actors-flood.js';
import { NactWorkloads } from './actors-nact.js';
import { SigmaWorkloads } from './actors-sigma.js';
import type { ActorWorkloads, AskRun, SpawnRun, TellRun } from './actors-workload.js';

export const FLOOD_MESSAGES = 1_000_000;
export const FLOOD_CAPACITY = 10_000;

/**
 * Counts per run are the same on both sides. Runs differ: ours take milliseconds, so they get more
 * warm-up (V8 tiers the hot path up over a few runs) and more repetitions for a stable median, while
 * nact's tell runs take seconds.
 */
interface Plan {
  tellMsgs: number;
  asks: number;
  spawns: number;
  sigma: RepeatOptions;
  nact: RepeatOptions;
}
const QUICK: Plan = { tellMsgs: 500_000, asks: 20_000, spawns: 50_000, sigma: { warmup: 3, reps: 7 }, nact: { warmup: 1, reps: 3 } };
const FULL: Plan = { tellMsgs: 2_000_000, asks: 100_000, spawns: 200_000, sigma: { warmup: 3, reps: 11 }, nact: { warmup: 1, reps: 5 } };

interface SideResults {
  tell: TellRun[];
  ask: AskRun[];
  spawn: SpawnRun[];
  bytesPerActor: number;
}

async function runSide(ctx: BenchContext, label: string, w: ActorWorkloads, p: Plan, o: RepeatOptions): Promise<SideResults> {
  const names = Array.from({ length: p.spawns }, (_, i) => `a${i}`);
  try {
    const tell = await repeat(ctx, `tell (${label})`, o, () => w.tell(p.tellMsgs));
    const ask = await repeat(ctx, `ask (${label})`, o, () => w.ask(p.asks));
    const spawn = await repeat(ctx, `spawn (${label})`, o, () => w.spawn(names, false));
    const spawnMemory = await w.spawn(names, true);
    return { tell, ask, spawn, bytesPerActor: spawnMemory.bytesPerActor };
  } finally {
    await w.close();
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
    { figure: 'mailbox_peak_mb_flood', baseline: 'nact_mailbox_peak_mb_flood', better: 'lower' },
    { figure: 'mailbox_peak_rss_mb_flood', baseline: 'nact_mailbox_peak_rss_mb_flood', better: 'lower' },
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
    const ours = await runSide(ctx, 'sigma', new SigmaWorkloads(), p, p.sigma);
    const nact = await runSide(ctx, 'nact', new NactWorkloads(), p, p.nact);
    const once = { warmup: 0, reps: 1 };
    const f = (await repeat(ctx, 'flood (sigma, child)', once, () => floodInChild('sigma', FLOOD_MESSAGES, FLOOD_CAPACITY)))[0]!;
    const nf = (await repeat(ctx, 'flood (nact, child)', once, () => floodInChild('nact', FLOOD_MESSAGES, FLOOD_CAPACITY)))[0]!;
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
      nact_mailbox_peak_mb_flood: round(nf.heapMb, 3),
      nact_mailbox_peak_rss_mb_flood: round(nf.rssMb, 3),
      flood_messages: FLOOD_MESSAGES,
      tell_messages_per_run: p.tellMsgs,
      asks_per_run: p.asks,
      spawns_per_run: p.spawns,
      runs_sigma: p.sigma.reps,
      runs_nact: p.nact.reps,
      load_avg_1m_at_start: round(load1m),
    };
  },
};
