/**
 * Deliberate bugs, switched on only by the simulator (`npm run sim -- <scenario> --mutate <name>`) to
 * prove that its invariants catch them. Production never sets any: every field defaults to off, and
 * the code paths they touch are one guarded line each, so the mutant is the real code minus one check.
 */
export interface Mutations {
  /** The node keeps its scheduler running after the lease is lost: the scheduler skips its fence. */
  staleLeader?: boolean;
  /** The node manager's exit write drops its "already exited" guard: a second report overwrites. */
  exitTwice?: boolean;
  /** LC placement ignores what is already reserved on a node. */
  lcOvercommit?: boolean;
  /** A restarted node does not end the procs its previous incarnation left in the table. */
  skipReconcile?: boolean;
  /** The node manager's endpoint linger forgets one endpoint per batch it closes: what it held is never reclaimed. */
  forgetLingering?: boolean;
  /** The node manager's run order loses its "already have it" guard: a repeated order (re-sent, duplicated) starts the proc again. */
  rerunRepeatedOrder?: boolean;
}
