/**
 * What every benchmark suite shares: the Suite shape, statistics, a repeated-measurement loop with
 * warm-up, CPU time and memory sampling. Benchmarks measure real time: this folder is the one place
 * outside the real-world bindings that reads performance.now directly.
 */
import cliProgress from 'cli-progress';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type Figure = number | string | boolean | null;
export type Figures = Record<string, Figure>;

/**
 * `figure` against `baseline` (both figure keys). `ratio` names a key the harness adds, oriented so that
 * a value above 1 means we are better: baseline/ours when lower is better, ours/baseline otherwise.
 */
export interface Comparison {
  figure: string;
  baseline: string;
  better: 'higher' | 'lower';
  ratio?: string;
}

/** A target from the issue, shown in the table. `target` is a number or another figure's key. */
export interface Goal {
  figure: string;
  op: '>=' | '<=';
  target: number | string;
}

export interface BenchContext {
  quick: boolean;
  /** A progress bar on a terminal (stderr), silent otherwise. */
  progress(label: string, total: number): { tick(n?: number): void; done(): void };
  log(line: string): void;
}

export interface Suite {
  name: string;
  description: string;
  comparisons?: readonly Comparison[];
  goals?: readonly Goal[];
  run(ctx: BenchContext): Promise<Figures>;
}

/** Bad arguments to a benchmark helper or a broken workload invariant. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

// ---- statistics -------------------------------------------------------------------------------

/** Nearest-rank percentile (p in [0, 100]) of unsorted values; NaN for no values. Does not mutate. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new BenchError(`percentile needs p in [0, 100], got ${p}; pass e.g. 50 for the median`);
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Operations per second from a count and a duration in ms. */
export function perSecond(count: number, durationMs: number): number {
  if (!(durationMs > 0)) throw new BenchError(`a rate needs a positive duration, got ${durationMs} ms; measure more operations`);
  return (count / durationMs) * 1000;
}

// ---- time -------------------------------------------------------------------------------------

export const nowMs = (): number => performance.now();

/** Wall and CPU (user + system, this process) time since creation. */
export function stopwatch(): { read(): { wallMs: number; cpuMs: number } } {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  return {
    read() {
      const cpu = process.cpuUsage(cpu0);
      return { wallMs: performance.now() - wall0, cpuMs: (cpu.user + cpu.system) / 1000 };
    },
  };
}

/** Yields to the event loop so that timers and I/O run between measured batches. */
export const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---- memory -----------------------------------------------------------------------------------

let gcFn: (() => void) | undefined;

/**
 * A full garbage collection, so memory deltas start from live data only. Works without
 * `node --expose-gc`: the flag set at run time exposes `gc` in contexts created afterwards.
 */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g !== undefined) gcFn = g;
    else {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

const MB = 2 ** 20;

/**
 * Peak heapUsed and RSS above a baseline taken after a full GC. Call sample() inside the measured loop
 * (a synchronous flood never lets a timer run, so sampling must be inline).
 */
export class MemorySampler {
  readonly #heap0: number;
  readonly #rss0: number;
  #heapPeak: number;
  #rssPeak: number;
  samples = 0;

  constructor() {
    collectGarbage();
    const m = process.memoryUsage();
    this.#heap0 = this.#heapPeak = m.heapUsed;
    this.#rss0 = this.#rssPeak = m.rss;
  }

  sample(): void {
    const m = process.memoryUsage();
    if (m.heapUsed > this.#heapPeak) this.#heapPeak = m.heapUsed;
    if (m.rss > this.#rssPeak) this.#rssPeak = m.rss;
    this.samples++;
  }

  /** Peak growth in MB since construction. */
  peak(): { heapMb: number; rssMb: number } {
    return { heapMb: (this.#heapPeak - this.#heap0) / MB, rssMb: (this.#rssPeak - this.#rss0) / MB };
  }
}

// ---- repeated measurement ---------------------------------------------------------------------

export interface RepeatOptions {
  /** Unreported runs first, so the JIT has compiled the hot paths before we time them. */
  warmup: number;
  reps: number;
  /**
   * A full GC before each run. Off by default: a forced GC that collects a previous run's objects
   * deoptimizes hot code that embedded them (V8 --trace-deopt: "weak objects"), which cut steady-state
   * tell throughput 3-5x here. Workloads that measure memory collect garbage themselves.
   */
  gc?: boolean;
}

/**
 * Runs a workload `warmup + reps` times with a progress bar and an event-loop turn between runs, and
 * returns the measured runs' results (each workload times its own critical section).
 */
export async function repeat<T>(ctx: BenchContext, label: string, o: RepeatOptions, run: () => Promise<T>): Promise<T[]> {
  if (!(Number.isInteger(o.reps) && o.reps >= 1 && Number.isInteger(o.warmup) && o.warmup >= 0)) {
    throw new BenchError(`repeat needs integer reps >= 1 and warmup >= 0, got reps=${o.reps} warmup=${o.warmup}`);
  }
  const bar = ctx.progress(label, o.warmup + o.reps);
  const out: T[] = [];
  try {
    for (let i = 0; i < o.warmup + o.reps; i++) {
      if (o.gc === true) collectGarbage();
      await yieldLoop();
      const r = await run();
      if (i >= o.warmup) out.push(r);
      bar.tick();
    }
  } finally {
    bar.done();
  }
  return out;
}

/** Median of one field over repeated results. */
export function medianOf<T>(results: readonly T[], pick: (r: T) => number): number {
  return median(results.map(pick));
}

// ---- context ----------------------------------------------------------------------------------

/** Bars only for a person watching: stderr is a terminal and this is not CI. */
export function wantsProgress(): boolean {
  const ci = process.env['CI'];
  return process.stderr.isTTY === true && (ci === undefined || ci === '' || ci === 'false' || ci === '0');
}

export function makeContext(quick: boolean, interactive: boolean): BenchContext {
  return {
    quick,
    log: (line) => process.stderr.write(`${line}\n`),
    progress(label, total) {
      if (!interactive) return { tick() {}, done() {} };
      const bar = new cliProgress.SingleBar(
        { format: `${label.padEnd(28)} [{bar}] {value}/{total}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
      return { tick: (n = 1) => bar.increment(n), done: () => bar.stop() };
    },
  };
}
