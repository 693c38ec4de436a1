import { median, percentile, round, type Figures } from '../harness.js';
import type { GcEvent } from '../procs/dp-commands.js';
import { procRuns, type LatencyDetail, type ProcPath } from './datapath-procs.js';

/**
 * Where the slow round trips of the bpf path come from, measured (the `datapath` suite's tail analysis).
 * After the latency phase, `batches` more batches of sequential round trips run between the same two
 * procs, with a gap between batches as the interleaved rounds have; each round trip carries its start on
 * the machine's one monotonic clock and how long the client host's main thread waited on a run queue
 * during it (runnable, its CPU taken by another task), the server proc notes each request's arrival and
 * its own host's run-queue wait so far, and both hosts record their garbage collections. A round trip
 * slower than TAIL_FACTOR times the median is then put down to the first of:
 *
 * - `gc`: a garbage collection in either host overlapped it;
 * - `run_queue`: the two hosts together waited on a run queue for at least half of its excess over the
 *   median (CPU contention: another process, or a spinning host sharing its CPU, had the CPU);
 * - `batch_start`: it is among the first BATCH_START_SAMPLES measured of a batch (processes asleep after
 *   the gap, caches cold, the poll window shrunk: a wake-up path);
 * - `node`: the node process ran during its batch beyond what the batch's command costs it (its runs,
 *   schedstat's third field, against the median of NODE_CALIBRATION_BATCHES empty commands): at most as
 *   many slow round trips of a batch as the node had extra runs in it — an upper bound, since the node
 *   is not on the bpf path and a run of it only costs a round trip if it took a host's CPU;
 * - `other`: none of these (a wake-up inside a batch the poll window missed, a migration, the kernel).
 *
 * The round trips here read /proc once more each (a few µs): their median is a little above the latency
 * phase's, which stays the figure; the shares say where the tail is.
 */

/** Slow: this many times the median round trip, and at least TAIL_MIN_EXCESS_US above it. */
const TAIL_FACTOR = 5;
const TAIL_MIN_EXCESS_US = 100;
const BATCH_START_SAMPLES = 2;
/** Between batches, as the other transports' batches leave between two of bpf's (at least). */
const TAIL_GAP_MS = 50;
/** Empty latency commands whose node-process runs and CPU are what a batch's command costs the node. */
const NODE_CALIBRATION_BATCHES = 7;

interface Sample {
  batch: number;
  index: number;
  startUs: number;
  rttUs: number;
  clientWaitUs: number;
  serverWaitUs: number;
}

/** The server's run-queue wait from the last request it saw before `startUs` to the last inside the round trip. */
function serverWait(notes: ReadonlyArray<[number, number]>, startUs: number, endUs: number): number {
  let before: number | undefined;
  let inside: number | undefined;
  for (const [at, waitUs] of notes) {
    if (at < startUs) before = waitUs;
    else if (at <= endUs) inside = waitUs;
  }
  return before === undefined || inside === undefined ? 0 : inside - before;
}

const overlaps = (gcs: readonly GcEvent[], s: Sample): boolean => gcs.some((g) => g.startUs < s.startUs + s.rttUs && g.startUs + g.durationUs > s.startUs);

/** The node process's runs and CPU (ns) over one latency command of `count` round trips. */
async function nodeDuring(p: ProcPath, sizeBytes: number, count: number, warmup: number): Promise<{ runs: number; ns: number; d: LatencyDetail }> {
  const before = procRuns(p.nodePid);
  const d = await p.latencyDetail(sizeBytes, count, warmup);
  const after = procRuns(p.nodePid);
  return { runs: after.runs - before.runs, ns: after.ns - before.ns, d };
}

export async function analyseTail(p: ProcPath, sizeBytes: number, batch: number, warmup: number, batches: number): Promise<Figures> {
  const since = Number(process.hrtime.bigint() / 1000n);
  const samples: Sample[] = [];
  /** [first start, last end] of each batch's measured round trips: GCs are counted inside these. */
  const spans: Array<[number, number]> = [];
  const calibration: Array<{ runs: number; ns: number }> = [];
  for (let i = 0; i < NODE_CALIBRATION_BATCHES; i++) calibration.push(await nodeDuring(p, sizeBytes, 0, 0));
  const commandRuns = median(calibration.map((c) => c.runs));
  const commandNs = median(calibration.map((c) => c.ns));
  /** Per batch: the node's runs beyond its command's. */
  const nodeExtraRuns: number[] = [];
  let nodeExtraNs = 0;
  for (let b = 0; b < batches; b++) {
    await p.trace(true);
    const node = await nodeDuring(p, sizeBytes, batch, warmup);
    const d = node.d;
    nodeExtraRuns.push(Math.max(0, Math.round(node.runs - commandRuns)));
    nodeExtraNs += Math.max(0, node.ns - commandNs);
    const notes = await p.trace(false);
    d.rttsUs.forEach((rttUs, index) => {
      const startUs = d.startsUs[index]!;
      samples.push({ batch: b, index, startUs, rttUs, clientWaitUs: d.runQueueUs[index]!, serverWaitUs: serverWait(notes, startUs, startUs + rttUs) });
    });
    if (d.rttsUs.length > 0) spans.push([d.startsUs[0]!, d.startsUs.at(-1)! + d.rttsUs.at(-1)!]);
    await new Promise((r) => setTimeout(r, TAIL_GAP_MS));
  }
  const gcs = await p.gcs(since);
  const all = [...gcs.client, ...gcs.server];
  const during = all.filter((g) => spans.some(([a, z]) => g.startUs < z && g.startUs + g.durationUs > a));
  const rtts = samples.map((s) => s.rttUs);
  const p50 = percentile(rtts, 50);
  const threshold = Math.max(TAIL_FACTOR * p50, p50 + TAIL_MIN_EXCESS_US);
  const slow = { gc: 0, run_queue: 0, batch_start: 0, node: 0, other: 0 };
  const nodeBudget = [...nodeExtraRuns];
  for (const s of samples) {
    if (s.rttUs <= threshold) continue;
    if (overlaps(all, s)) slow.gc++;
    else if (s.clientWaitUs + s.serverWaitUs >= (s.rttUs - p50) / 2) slow.run_queue++;
    else if (s.index < BATCH_START_SAMPLES) slow.batch_start++;
    else if (nodeBudget[s.batch]! > 0) {
      nodeBudget[s.batch]!--;
      slow.node++;
    } else slow.other++;
  }
  const key = `bpf_${sizeBytes === 64 ? '64' : sizeBytes}_tail`;
  const waitUs = samples.reduce((a, s) => a + s.clientWaitUs + s.serverWaitUs, 0);
  return {
    [`${key}_rtts`]: samples.length,
    [`${key}_p50_us`]: round(p50, 1),
    [`${key}_p99_us`]: round(percentile(rtts, 99), 1),
    [`${key}_threshold_us`]: round(threshold, 1),
    [`${key}_slow`]: slow.gc + slow.run_queue + slow.batch_start + slow.node + slow.other,
    [`${key}_slow_gc`]: slow.gc,
    [`${key}_slow_run_queue`]: slow.run_queue,
    [`${key}_slow_batch_start`]: slow.batch_start,
    [`${key}_slow_node`]: slow.node,
    [`${key}_slow_other`]: slow.other,
    // The node process during the batches, beyond what each batch's command costs it: how often it ran, and for how long.
    [`${key}_node_runs_per_batch`]: round(nodeExtraRuns.reduce((a, b) => a + b, 0) / Math.max(1, batches), 2),
    [`${key}_node_cpu_us_per_batch`]: round(nodeExtraNs / 1000 / Math.max(1, batches), 1),
    [`${key}_node_command_cpu_us`]: round(commandNs / 1000, 1),
    // Collections in either host while its round trips ran (not those of the commands between batches).
    [`${key}_gcs_per_1k_rtt`]: round((during.length * 1000) / Math.max(1, samples.length), 2),
    [`${key}_gc_p50_us`]: during.length === 0 ? null : round(percentile(during.map((g) => g.durationUs), 50), 0),
    [`${key}_run_queue_us_per_rtt`]: round(waitUs / Math.max(1, samples.length), 1),
  };
}
