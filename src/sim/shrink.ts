import type { Fault } from './faults.js';

/** Bound on test runs one shrink may spend; the best schedule found so far is returned when it is hit. */
export const SHRINK_RUNS_MAX = 64;

export interface ShrinkResult {
  faults: Fault[];
  runs: number;
  /** False when the run budget ran out before the schedule was 1-minimal. */
  minimal: boolean;
}

/**
 * Delta debugging (Zeller's ddmin) over a fault schedule: finds a subset that still fails such that
 * removing any one fault makes it pass (1-minimal), within SHRINK_RUNS_MAX runs. `fails` runs the
 * scenario on the same seed with the given faults; the workload is untouched since it draws from its
 * own PRNG. The empty schedule is tried first: a failure without faults needs no fault to explain it.
 */
export async function shrink(faults: readonly Fault[], fails: (f: Fault[]) => Promise<boolean>, runsMax = SHRINK_RUNS_MAX): Promise<ShrinkResult> {
  let runs = 0;
  const test = async (f: Fault[]): Promise<boolean> => {
    runs++;
    return fails(f);
  };
  if (faults.length === 0) return { faults: [], runs, minimal: true };
  if (await test([])) return { faults: [], runs, minimal: true };
  let cur = [...faults];
  let n = 2;
  while (cur.length >= 2) {
    if (runs >= runsMax) return { faults: cur, runs, minimal: false };
    const chunks = split(cur, n);
    let reduced = false;
    for (const c of chunks) {
      if (runs >= runsMax) return { faults: cur, runs, minimal: false };
      if (c.length < cur.length && (await test(c))) {
        cur = c;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && n > 2) {
      for (const c of chunks) {
        if (runs >= runsMax) return { faults: cur, runs, minimal: false };
        const rest = cur.filter((f) => !c.includes(f));
        if (await test(rest)) {
          cur = rest;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return { faults: cur, runs, minimal: true };
}

function split<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  const size = Math.ceil(xs.length / n);
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
