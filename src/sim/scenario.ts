import { createHash } from 'node:crypto';
import type { ProcRecord } from '../control/protocol.js';
import type { World } from './world.js';

/** A scenario: a workload and its faults, run on a fresh world per seed. */
export interface Scenario {
  name: string;
  description: string;
  nodes?: number;
  run(w: World): Promise<void>;
}

export interface RunResult {
  scenario: string;
  seed: number;
  violations: string[];
  /** sha256 of the run's trace: equal hashes, equal runs. */
  hash: string;
  events: number;
  records: number;
}

/** Invariants checked on the proc table at the end of every run. */
export function checkInvariants(records: ProcRecord[], accepted: ReadonlySet<string>): string[] {
  const v: string[] = [];
  const byPid = new Map(records.map((r) => [r.pid, r]));
  for (const pid of accepted) {
    const r = byPid.get(pid);
    if (r === undefined) v.push(`accepted spawn ${pid} has no record`);
    else if (r.state !== 'exited' || r.status === undefined) v.push(`accepted spawn ${pid} never reached a terminal status (state ${r.state})`);
  }
  return v;
}

export function traceHash(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}
