import type { Mutations } from '../control/mutations.js';

/**
 * The deliberate bugs `--mutate <name>` switches on, each the real code minus one check. Every one must
 * be caught within the default seed budget of the scenario named here by `invariant`, the one built to
 * catch it: a run counts as catching the mutant only when that invariant fires (another invariant firing
 * says the mutant broke something else, not that the check meant for it works).
 */
export const MUTANTS = {
  'stale-leader': { what: 'a deposed leader keeps its scheduler running (skips the lease fence)', scenario: 'leader-failover', invariant: 'one-scheduler' },
  'exit-twice': { what: 'a node manager reports an exit twice, the second write past the write-once guard', scenario: 'spawn-storm', invariant: 'terminal-once' },
  'lc-overcommit': { what: 'LC placement ignores what is already reserved on a node', scenario: 'spawn-storm', invariant: 'lc-capacity' },
  'leak-buffer': { what: 'the node manager\'s endpoint linger forgets to close (and reclaim) one endpoint of each batch', scenario: 'node-churn', invariant: 'buffers-reclaimed' },
  'run-twice': { what: 'a node manager takes a repeated run order (re-sent by a new leader, duplicated by the network) for a proc it already runs and starts it again', scenario: 'message-chaos', invariant: 'single-run' },
  'forget-restart': { what: 'a restarted node leaves its previous incarnation\'s procs running in the table', scenario: 'node-churn', invariant: 'liveness' },
} as const;

/**
 * Seeds a mutant gets to be caught in (1..this, or --seeds if larger), stopping at the first catch.
 * run-twice needs the most: since spawns past their caller's deadline make nothing, fewer late
 * duplicates of a spawn reach a scheduler in message-chaos, and its first catch moved from seed 7 to 68.
 */
export const MUTANT_SEED_BUDGET = 100;

export type MutantName = keyof typeof MUTANTS;
export const MUTANT_NAMES = Object.keys(MUTANTS) as MutantName[];

export function isMutant(name: string): name is MutantName {
  return Object.hasOwn(MUTANTS, name);
}

/** A run catches mutant `m` only when the invariant `m` breaks fired in it; any other violation does not count. */
export function catches(m: MutantName, r: { invariantsViolated: readonly string[] }): boolean {
  return r.invariantsViolated.includes(MUTANTS[m].invariant);
}

export function mutationsOf(m: MutantName | undefined): Mutations | undefined {
  switch (m) {
    case 'stale-leader': return { staleLeader: true };
    case 'exit-twice': return { exitTwice: true };
    case 'lc-overcommit': return { lcOvercommit: true };
    case 'forget-restart': return { skipReconcile: true };
    case 'leak-buffer': return { forgetLingering: true };
    case 'run-twice': return { rerunRepeatedOrder: true };
    default: return undefined;
  }
}
