/**
 * Faults a component injects into itself, read from the environment at start, in the spirit of σOS's
 * SIGMAFAIL: `SIGMA_FAIL='label:prob:intervalMs:action,...'`. Every intervalMs, a component whose label
 * matches (its node id, `launcher`, or `*` for all) draws from a seeded PRNG and, with probability
 * prob, acts:
 *   crash      kill -9 of itself (no clean-up, no goodbye: as a machine dying);
 *   partition  the whole process stopped (SIGSTOP) for intervalMs, then continued: nobody hears from it
 *              and it hears nobody, then it comes back with the state it had (a paused VM, a cut link);
 *   delay      its event loop blocked for a random part of intervalMs (a GC pause, a starved CPU).
 * The seed is SIGMA_FAIL_SEED (default 1) mixed with the label, so each component draws its own
 * sequence and a run repeats with the same seed.
 */
import { spawn } from 'node:child_process';
import { SeededRandom } from '../ports/random.js';
import type { Random, Timers } from '../ports/types.js';

export const SIGMA_FAIL_ENV = 'SIGMA_FAIL';
export const SIGMA_FAIL_SEED_ENV = 'SIGMA_FAIL_SEED';
export const FAIL_ACTIONS = ['crash', 'partition', 'delay'] as const;
export type FailAction = (typeof FAIL_ACTIONS)[number];

export interface FailRule {
  readonly label: string;
  readonly prob: number;
  readonly intervalMs: number;
  readonly action: FailAction;
}

/** Rules per spec: a bound, so a typo cannot arm thousands of timers. */
export const FAIL_RULES_MAX = 32;
/** Draws no more often than this: a fault every millisecond is no schedule anyone can reason about. */
export const FAIL_INTERVAL_MS_MIN = 10;
export const FAIL_INTERVAL_MS_MAX = 3_600_000;
const LABEL_RE = /^(\*|[a-z0-9][a-z0-9-]{0,62})$/;

export class FailSpecError extends Error {
  readonly type = 'fail-spec';
  constructor(detail: string) {
    super(`${SIGMA_FAIL_ENV}: ${detail} (format: label:prob:intervalMs:action,..., action one of ${FAIL_ACTIONS.join(' | ')}; e.g. node-2:0.2:1000:crash)`);
    this.name = 'FailSpecError';
  }
}

/** Parses a spec; an empty or absent one has no rules. Every problem names the entry. */
export function parseFailSpec(text: string | undefined): FailRule[] {
  const entries = (text ?? '').split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (entries.length > FAIL_RULES_MAX) throw new FailSpecError(`at most ${FAIL_RULES_MAX} rules, got ${entries.length}`);
  return entries.map((entry) => {
    const [label = '', prob = '', interval = '', action = '', ...rest] = entry.split(':');
    if (rest.length > 0) throw new FailSpecError(`"${entry}" has more than four fields`);
    if (!LABEL_RE.test(label)) throw new FailSpecError(`"${entry}": label must be * or an id like node-2`);
    const p = Number(prob);
    if (prob === '' || !(p >= 0 && p <= 1)) throw new FailSpecError(`"${entry}": prob must be in [0, 1]`);
    const ms = Number(interval);
    if (!Number.isInteger(ms) || ms < FAIL_INTERVAL_MS_MIN || ms > FAIL_INTERVAL_MS_MAX) throw new FailSpecError(`"${entry}": intervalMs must be a whole number in [${FAIL_INTERVAL_MS_MIN}, ${FAIL_INTERVAL_MS_MAX}]`);
    if (!(FAIL_ACTIONS as readonly string[]).includes(action)) throw new FailSpecError(`"${entry}": unknown action "${action}"`);
    return { label, prob: p, intervalMs: ms, action: action as FailAction };
  });
}

/** What each action does to the component (the real ones below; a test passes recorders). */
export type FailEffects = Record<FailAction, (intervalMs: number, random: Random) => void>;

/** A seed per component: the run's seed and the label's characters, so components draw apart. */
export function failSeed(seed: number, label: string): number {
  let h = seed | 0;
  for (const c of label) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h & 0x7fffffff;
}

/**
 * Arms the rules that match `label`: one timer each, drawing from its own PRNG. Returns what disarms
 * them. Ports are injected (a test drives them on virtual time).
 */
export function armFaults(label: string, rules: readonly FailRule[], o: { seed: number; timers: Timers; effects: FailEffects; onFault?: (r: FailRule) => void }): () => void {
  const mine = rules.filter((r) => r.label === '*' || r.label === label);
  const handles = mine.map((rule, i) => {
    const random = new SeededRandom(failSeed(o.seed + i, label));
    const tick = (): void => {
      if (random.next() < rule.prob) {
        o.onFault?.(rule);
        o.effects[rule.action](rule.intervalMs, random);
      }
      handle = o.timers.setTimeout(tick, rule.intervalMs);
    };
    let handle = o.timers.setTimeout(tick, rule.intervalMs);
    return () => handle.cancel();
  });
  return () => handles.forEach((stop) => stop());
}

/** The effects on this very process. */
export const processEffects: FailEffects = {
  crash: () => process.kill(process.pid, 'SIGKILL'),
  partition: (ms) => {
    // Someone must wake us: a detached shell that sends SIGCONT once the time is up.
    spawn('/bin/sh', ['-c', `sleep ${ms / 1000}; kill -CONT ${process.pid}`], { detached: true, stdio: 'ignore' }).unref();
    process.kill(process.pid, 'SIGSTOP');
  },
  delay: (ms, random) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(1, Math.floor(random.next() * ms))),
};

/**
 * For a component's main: reads SIGMA_FAIL and SIGMA_FAIL_SEED and arms what matches `label` on this
 * process. A malformed spec throws FailSpecError (the component should refuse to start: a fault run
 * that silently injects nothing proves nothing).
 */
export function armFromEnv(label: string, timers: Timers, log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): () => void {
  const rules = parseFailSpec(env[SIGMA_FAIL_ENV]);
  if (rules.length === 0) return () => {};
  const seed = Number(env[SIGMA_FAIL_SEED_ENV] ?? '1');
  if (!Number.isInteger(seed)) throw new FailSpecError(`${SIGMA_FAIL_SEED_ENV} must be an integer, got "${env[SIGMA_FAIL_SEED_ENV]}"`);
  return armFaults(label, rules, { seed, timers, effects: processEffects, onFault: (r) => log(`${SIGMA_FAIL_ENV}: ${r.action} of ${label} (rule ${r.label}:${r.prob}:${r.intervalMs}:${r.action})`) });
}
