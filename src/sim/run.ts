import type { Status } from '../proc/types.js';
import { ENDPOINT_LINGER_MS } from '../node/manager/index.js';
import { DEFAULT_TIMING } from '../node/node.js';
import { SeededRandom } from '../ports/random.js';
import { FaultController, type Fault } from './faults.js';
import { Monitor } from './monitor.js';
import { mutationsOf, type MutantName } from './mutants.js';
import type { RunResult, Scenario } from './scenario.js';
import { Trace } from './trace.js';
import { simWorld, SIM_NODE, type World } from './world.js';

/** Liveness bound: once the last fault is healed, every accepted spawn must end within this. */
export const SETTLE_MS = 30_000;
/** After the work ended: time for the last endpoints' linger (ENDPOINT_LINGER_MS, on clocks up to 10 % slow) to run out. */
export const RECLAIM_SETTLE_MS = 2 * ENDPOINT_LINGER_MS;
/** How often the settling period looks whether all work is done (it may end early). */
const SETTLE_STEP_MS = 500;
/** The fault PRNG is derived from the seed but apart from the workload's, so shrinking faults leaves the workload alone. */
const FAULT_STREAM = 0x5eed;
/** Virtual time for a fresh world to elect a leader before the run starts. */
const BOOT_MS = 3_000;
/** Bound on the run's own calls (creating the default realm, stopping a node at the end). */
const SETUP_CALL_TIMEOUT_MS = 5_000;

export interface RunOptions {
  mutant?: MutantName;
  /** Run this schedule instead of the scenario's own (replay of a shrunk trace, shrinking itself). */
  faults?: Fault[];
  /** Lines of an earlier trace: the run reports where it first differs. */
  expected?: readonly string[];
}

/** The schedule a scenario draws for a seed. */
export function scheduleFor(s: Scenario, seed: number): Fault[] {
  const nodes = Array.from({ length: s.nodes ?? 3 }, (_, i) => `node-${i + 1}`);
  return s.faults(new SeededRandom((seed * 7919) ^ FAULT_STREAM), nodes);
}

/**
 * Runs one scenario on one seed: a fresh world watched by a Monitor, the workload with its fault
 * schedule, then every fault healed and a settling period (the liveness bound), then the end-of-run
 * invariants. Everything observed goes into the trace, whose hash names the run.
 */
export async function runScenario(s: Scenario, seed: number, o: RunOptions = {}): Promise<RunResult> {
  const faults = o.faults ?? scheduleFor(s, seed);
  let now = (): number => 0;
  const trace = new Trace(() => now(), o.expected);
  let writer = (): { client: string; sentAtMs: number } | undefined => undefined;
  const monitor = new Monitor(() => now(), trace, { nodeMcpu: SIM_NODE.mcpu, leaseTtlMs: DEFAULT_TIMING.leaseTtlMs, writer: () => writer() });
  const mutations = mutationsOf(o.mutant);
  const w = await simWorld(seed, { nodes: s.nodes ?? 3, cluster: s.cluster === true, observer: monitor, ...(mutations === undefined ? {} : { mutations }), onNats: (nats) => {
    nats.onStore = (st) => monitor.store(st);
    nats.onRpc = (c, what) => monitor.rpc(c, what);
    writer = () => (nats.writer === undefined ? undefined : { client: nats.writer, sentAtMs: nats.writerSentAtMs });
  } });
  now = () => w.ports.time.nowMs();
  const rec = record(w, trace);
  const controller = new FaultController(w, monitor);
  await w.ports.time.advance(BOOT_MS);
  await w.during(w.client.createRealm('default'), SETUP_CALL_TIMEOUT_MS).catch((e: unknown) => monitor.violate('setup', `could not create realm default: ${(e as Error).message}`));
  const startMs = w.ports.time.nowMs();
  controller.schedule(faults, startMs);
  // A workload that throws is a scenario bug or work that never settled within its bound: fail loudly.
  await s.workload(w).catch((e: unknown) => monitor.violate('workload', `the workload failed: ${(e as Error).message}`));
  if (w.ports.time.nowMs() < controller.lastFaultEndMs) await w.ports.time.run({ untilMs: controller.lastFaultEndMs });
  controller.healAll();
  trace.add('healed');
  const healedMs = w.ports.time.nowMs();
  while (w.ports.time.nowMs() < healedMs + SETTLE_MS && [...rec.accepted].some((pid) => monitor.procs.get(pid)?.state !== 'exited')) await w.ports.time.advance(SETTLE_STEP_MS);
  // The last exits' endpoints linger before their node closes them (a skewed clock may run slow). Procs
  // the client never heard of (a spawn whose reply was lost) may still be ending: wait for them too.
  const reclaimBoundMs = w.ports.time.nowMs() + SETTLE_MS;
  await w.ports.time.advance(RECLAIM_SETTLE_MS);
  while (monitor.lastExitMs + RECLAIM_SETTLE_MS > w.ports.time.nowMs() && w.ports.time.nowMs() < reclaimBoundMs) await w.ports.time.advance(SETTLE_STEP_MS);
  monitor.end({ accepted: rec.accepted, waits: rec.waits, removedRealms: rec.removed, pools: w.pools, settleMs: SETTLE_MS });
  const events = w.ports.time.eventsExecuted;
  trace.add('end', events);
  await stop(w);
  const hash = trace.finish();
  return { scenario: s.name, seed, mutant: o.mutant ?? null, faults, violations: monitor.violations, violationCount: monitor.violationCount, invariantsViolated: [...monitor.invariantsViolated].sort(), hash, events, records: monitor.procs.size, table: [...monitor.procs.values()], trace };
}

/** Wraps the client so the run knows what was accepted, what waitExit said and which realms went. */
function record(w: World, trace: Trace): { accepted: Set<string>; waits: Map<string, Status>; removed: Set<string> } {
  const accepted = new Set<string>();
  const waits = new Map<string, Status>();
  const removed = new Set<string>();
  const c = w.client;
  const spawn = c.spawn.bind(c);
  c.spawn = async (spec, opts) => {
    try {
      const pid = await spawn(spec, opts);
      accepted.add(pid);
      trace.add('spawned', pid);
      return pid;
    } catch (e) {
      trace.add('refused', (e as { type?: string }).type ?? 'error');
      throw e;
    }
  };
  const waitExit = c.waitExit.bind(c);
  c.waitExit = async (pid, opts) => {
    const s = await waitExit(pid, opts);
    waits.set(pid, s);
    trace.add('waited', pid, s.kind);
    return s;
  };
  const removeRealm = c.removeRealm.bind(c);
  c.removeRealm = async (name, opts) => {
    await removeRealm(name, opts);
    removed.add(name);
    trace.add('realm-removed', name);
  };
  const createRealm = c.createRealm.bind(c);
  c.createRealm = async (name) => {
    await createRealm(name);
    removed.delete(name);
  };
  return { accepted, waits, removed };
}

async function stop(w: World): Promise<void> {
  for (const n of w.nodes.values()) if (n.running !== undefined) await w.during(n.running.stop(), SETUP_CALL_TIMEOUT_MS).catch(() => {});
}
