import type { ProcRecord } from '../control/protocol/index.js';
import type { Random } from '../ports/types.js';
import type { Fault } from './faults.js';
import type { Violation } from './monitor.js';
import type { Trace } from './trace.js';
import type { World } from './world.js';

/**
 * A scenario: a cluster shape, a workload, and a fault schedule drawn per seed. The workload spawns
 * through `w.client` (the run records accepted spawns, waitExit results and realm removals for the
 * invariants); the faults are data (src/sim/faults.ts), so they can be replayed and shrunk.
 */
export interface Scenario {
  name: string;
  description: string;
  nodes?: number;
  /** Run on the replicated JetStream of three simulated servers (src/sim/nats-cluster.ts); default one server. */
  cluster?: boolean;
  /** The fault schedule for one seed, drawn from its own PRNG; times are relative to the workload's start. */
  faults(r: Random, nodes: readonly string[]): Fault[];
  workload(w: World): Promise<void>;
}

export interface RunResult {
  scenario: string;
  seed: number;
  mutant: string | null;
  faults: Fault[];
  violations: Violation[];
  violationCount: number;
  /** The invariants that fired, each once: a mutant is caught only by the one it names (src/sim/mutants.ts). */
  invariantsViolated: string[];
  /** sha256 of the run's trace: equal hashes, equal runs. */
  hash: string;
  events: number;
  records: number;
  /** The proc table at the end, as the server stored it. */
  table: ProcRecord[];
  trace: Trace;
}
