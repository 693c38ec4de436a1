/**
 * What every benchmark suite shares. Benchmarks measure real time: this folder is the one place
 * outside the real-world bindings that reads performance.now directly.
 */
import cliProgress from 'cli-progress';

export type Figures = Record<string, number | string | boolean | null>;

export interface BenchContext {
  quick: boolean;
  /** A progress bar on a terminal (stderr), silent otherwise. */
  progress(label: string, total: number): { tick(n?: number): void; done(): void };
  log(line: string): void;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Figures>;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export const nowMs = (): number => performance.now();

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function makeContext(quick: boolean, interactive: boolean): BenchContext {
  return {
    quick,
    log: (line) => process.stderr.write(`${line}\n`),
    progress(label, total) {
      if (!interactive) return { tick() {}, done() {} };
      const bar = new cliProgress.SingleBar({ format: `${label.padEnd(28)} [{bar}] {value}/{total}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
      bar.start(total, 0);
      return { tick: (n = 1) => bar.increment(n), done: () => bar.stop() };
    },
  };
}

/** Yields to the event loop so that timers and I/O run between measured batches. */
export const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
