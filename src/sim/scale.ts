/**
 * `npm run sim -- scale`: one scheduler against 10, 100 and 1,000 simulated node managers (the real
 * startNode over the simulated NATS), ten procs per node. Measures what the scheduler costs as the
 * cluster grows: its CPU per placement and the live heap its code holds, plus the whole simulation's.
 *
 * The scheduler's CPU is read from a CPU profile of the run (node:inspector, a sample every
 * PROFILE_INTERVAL_US): every sample whose stack passes through the scheduler actor's `receive`, where
 * all its decisions are made (placement, queues, node liveness, exits). Its heap is read from V8's
 * sampling heap profiler after a full GC: live objects allocated by the scheduler's own modules. Both
 * are measurements of the real world (this module is the simulator's harness, not actor code).
 */
import { Session } from 'node:inspector/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Status } from '../proc/types.js';
import { simWorld, type World } from './world.js';

export const SCALE_NODES_DEFAULT = [10, 100, 1_000] as const;
export const SCALE_PROCS_PER_NODE_DEFAULT = 10;
/** Spawns in flight at once from the one client (a bounded burst, not 10,000 requests at a time). */
const SPAWN_BATCH = 500;
const PROFILE_INTERVAL_US = 200;
/** Heap sampling granularity: one sample per this many bytes allocated on average. */
const HEAP_SAMPLE_BYTES = 4_096;
/** Virtual time for a world to elect its leader and hear every node's first heartbeat. */
const BOOT_MS = 5_000;
/** Bound on the whole workload, virtual. */
const WORKLOAD_MS_MAX = 600_000;
const SPAWN_TIMEOUT_MS = 60_000;
/** Where the scheduler's code lives (compiled paths). */
const SCHEDULER_CODE = /\/src\/control\/(scheduler\/|placement\.js|proc-table\.js|live-procs\.js)/;

export interface ScaleFigures {
  nodes: number;
  procs: number;
  placements: number;
  /** The scheduler's CPU per placement, µs (its receive's samples over procs placed). */
  scheduler_cpu_us_per_placement: number;
  /** The scheduler's CPU for the whole run, ms: placements plus heartbeats, exits, liveness checks. */
  scheduler_cpu_ms: number;
  /** Live heap allocated by the scheduler's modules at the end, MiB. */
  scheduler_heap_mib: number;
  /** The whole simulation's heap after GC (every node manager, the simulated NATS, the scheduler), MiB. */
  sim_heap_mib: number;
  sim_wall_s: number;
  virtual_s: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

/** Samples whose stack passes through the scheduler actor's receive, in µs. */
export function schedulerCpuUs(profile: { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[] }): number {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const inside = new Map<number, boolean>();
  const isScheduler = (id: number): boolean => {
    const seen: number[] = [];
    let found = false;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const known = inside.get(cur);
      if (known !== undefined) {
        found = known;
        break;
      }
      seen.push(cur);
      const f = byId.get(cur)!.callFrame;
      if (f.functionName === 'receive' && f.url.endsWith('/src/control/scheduler/actor.js')) {
        found = true;
        break;
      }
    }
    for (const s of seen) inside.set(s, found);
    return found;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let us = 0;
  // A sample's time is the delta to the next one.
  for (let i = 0; i < samples.length; i++) if (isScheduler(samples[i]!)) us += deltas[i + 1] ?? 0;
  return us;
}

interface HeapNode {
  callFrame: { url: string };
  selfSize: number;
  children: HeapNode[];
}

/** Live bytes allocated with the scheduler's code on the stack (its own allocations; not what it keeps of others'). */
function schedulerHeapBytes(head: HeapNode): number {
  let bytes = 0;
  const stack: Array<{ n: HeapNode; under: boolean }> = [{ n: head, under: false }];
  while (stack.length > 0) {
    const { n, under } = stack.pop()!;
    const here = under || SCHEDULER_CODE.test(n.callFrame.url);
    if (here) bytes += n.selfSize;
    for (const c of n.children) stack.push({ n: c, under: here });
  }
  return bytes;
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Spawns `procs` mixed procs in bounded batches; resolves with how many were accepted. */
async function spawnAll(w: World, procs: number): Promise<number> {
  const r = w.ports.random;
  let accepted = 0;
  for (let done = 0; done < procs; done += SPAWN_BATCH) {
    const n = Math.min(SPAWN_BATCH, procs - done);
    const batch = Array.from({ length: n }, () => {
      const lc = r.next() < 0.2;
      return w.client.spawn({ program: 'sleep', args: [200 + r.int(2_000)], ...(lc ? { lc: true, mcpu: 100 } : {}) }, { timeoutMs: SPAWN_TIMEOUT_MS });
    });
    const settled = await w.during(Promise.allSettled(batch), SPAWN_TIMEOUT_MS * 2);
    accepted += settled.filter((s) => s.status === 'fulfilled').length;
  }
  return accepted;
}

/** One world of `nodes` node managers, `procs` procs through it, measured. */
export async function measureScale(nodes: number, procs: number): Promise<ScaleFigures> {
  const t0 = performance.now();
  let ran = 0;
  let exited = 0;
  const observer = { hostUp() {}, hostDown() {}, procRun: () => void ran++, procExit: (_n: string, _h: unknown, _p: string, _s: Status) => void exited++ };
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: HEAP_SAMPLE_BYTES });
  const w = await simWorld(nodes, { nodes, observer });
  await w.ports.time.advance(BOOT_MS);
  await w.during(w.client.createRealm('default'), SPAWN_TIMEOUT_MS);
  const start = w.ports.time.nowMs();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
  await session.post('Profiler.start');
  const accepted = await spawnAll(w, procs);
  while (exited < accepted && w.ports.time.nowMs() - start < WORKLOAD_MS_MAX) await w.ports.time.advance(500);
  const { profile } = await session.post('Profiler.stop');
  const virtualS = (w.ports.time.nowMs() - start) / 1000;
  gc();
  const { profile: heap } = await session.post('HeapProfiler.getSamplingProfile');
  await session.post('HeapProfiler.stopSampling');
  const simHeap = process.memoryUsage().heapUsed;
  session.disconnect();
  for (const n of w.nodes.values()) if (n.running !== undefined) await w.during(n.running.stop(), 10_000).catch(() => {});
  const cpuUs = schedulerCpuUs(profile as never);
  return {
    nodes,
    procs: accepted,
    placements: ran,
    scheduler_cpu_us_per_placement: Math.round(cpuUs / Math.max(1, ran)),
    scheduler_cpu_ms: Math.round(cpuUs / 1000),
    scheduler_heap_mib: round2(schedulerHeapBytes(heap.head as never) / 2 ** 20),
    sim_heap_mib: round2(simHeap / 2 ** 20),
    sim_wall_s: round2((performance.now() - t0) / 1000),
    virtual_s: round2(virtualS),
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
