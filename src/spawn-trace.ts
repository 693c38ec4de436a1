/**
 * A trace of where one spawn's time goes, off unless `SIGMA_SPAWN_TRACE=1` is in the environment (read
 * once, at load). On, each stage writes one line `sigma-trace <ns> <stage> <id> [<id2>]` to stderr:
 * `<ns>` is process.hrtime.bigint(), CLOCK_MONOTONIC, one clock for every process on the machine, so
 * stamps of the client, the scheduler, the node and the host compare directly. Stderr because every
 * process of a cluster inherits it (a sandboxed host can write nowhere else). `src/bench/trace-spawn.ts`
 * runs spawns with it on and prints the breakdown (docs/benchmarks.md). Off, a stage costs one branch.
 * Diagnostics only: nothing reads these lines back into a decision, so actor code may stamp them.
 */
import { writeSync } from 'node:fs';

export const SPAWN_TRACE_ENV = 'SIGMA_SPAWN_TRACE';
export const SPAWN_TRACE_PREFIX = 'sigma-trace ';
const on = process.env[SPAWN_TRACE_ENV] === '1';
/** Stamps are written this long after the first one held: a write per stamp would wake the reader mid-spawn. */
export const SPAWN_TRACE_FLUSH_MS = 200;
let held: string[] = [];

function flush(): void {
  const text = held.join('');
  held = [];
  try {
    writeSync(2, text);
  } catch {
    // A full non-blocking pipe (EAGAIN): lost stamps, never a failed spawn.
  }
}

export function traceSpawn(stage: string, id: string, id2?: string): void {
  if (!on) return;
  if (held.length === 0) setTimeout(flush, SPAWN_TRACE_FLUSH_MS).unref();
  held.push(`${SPAWN_TRACE_PREFIX}${process.hrtime.bigint()} ${stage} ${id}${id2 === undefined ? '' : ` ${id2}`}\n`);
}

if (on) process.on('exit', flush);
