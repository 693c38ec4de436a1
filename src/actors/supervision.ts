import { InvalidOptionError } from './errors.js';
import type { Random } from '../ports/types.js';

/** What a supervisor does with a failed child. */
export type Decision = 'resume' | 'restart' | 'stop' | 'escalate';

/**
 * Which children a decision applies to: the failed one (one-for-one), all of them (one-for-all), or the
 * failed one and every sibling started after it (rest-for-one) — Erlang/OTP's three strategies.
 */
export type StrategyKind = 'one-for-one' | 'one-for-all' | 'rest-for-one';

export interface Backoff {
  /** Delay before the first restart in a window. */
  minMs: number;
  /** Cap on the delay. */
  maxMs: number;
  /** Growth per consecutive restart (2 doubles). */
  factor?: number;
  /** Fraction of the delay randomised either way: 0.2 gives delay × [0.8, 1.2]. Spreads thundering herds. */
  jitter?: number;
}

export interface SupervisorStrategy {
  kind: StrategyKind;
  /** Maps a failure to a decision. Receives the error and the failed child's name. */
  decide: (error: unknown, child: string) => Decision;
  /** Restart intensity: more than maxRestarts restarts of one child within withinMs escalates. */
  maxRestarts: number;
  withinMs: number;
  backoff?: Backoff;
}

export const ACTOR_RESTARTS_MAX_DEFAULT = 10;
export const DEFAULT_RESTART_WINDOW_MS = 10_000;

export interface StrategyOptions {
  decide?: (error: unknown, child: string) => Decision;
  maxRestarts?: number;
  withinMs?: number;
  backoff?: Backoff;
}

function strategy(kind: StrategyKind, o: StrategyOptions): SupervisorStrategy {
  const s: SupervisorStrategy = {
    kind,
    decide: o.decide ?? (() => 'restart'),
    maxRestarts: o.maxRestarts ?? ACTOR_RESTARTS_MAX_DEFAULT,
    withinMs: o.withinMs ?? DEFAULT_RESTART_WINDOW_MS,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
  };
  validateStrategy(s);
  return s;
}

export const oneForOne = (o: StrategyOptions = {}): SupervisorStrategy => strategy('one-for-one', o);
export const oneForAll = (o: StrategyOptions = {}): SupervisorStrategy => strategy('one-for-all', o);
export const restForOne = (o: StrategyOptions = {}): SupervisorStrategy => strategy('rest-for-one', o);

/** The default for every actor's children: restart the failed child, at most 10 times in 10 s. */
export const DEFAULT_STRATEGY: SupervisorStrategy = oneForOne();

export function validateStrategy(s: SupervisorStrategy): void {
  if (!Number.isInteger(s.maxRestarts) || s.maxRestarts < 0) {
    throw new InvalidOptionError('supervisor.maxRestarts', `must be a non-negative integer, got ${s.maxRestarts}`);
  }
  if (!(s.withinMs > 0) || !Number.isFinite(s.withinMs)) {
    throw new InvalidOptionError('supervisor.withinMs', `must be a positive number of milliseconds, got ${s.withinMs}`);
  }
  const b = s.backoff;
  if (b === undefined) return;
  if (!(b.minMs >= 0) || !(b.maxMs >= b.minMs) || !Number.isFinite(b.maxMs)) {
    throw new InvalidOptionError('supervisor.backoff', `needs 0 <= minMs <= maxMs < Infinity, got minMs=${b.minMs} maxMs=${b.maxMs}`);
  }
  if (b.factor !== undefined && !(b.factor >= 1)) {
    throw new InvalidOptionError('supervisor.backoff.factor', `must be >= 1, got ${b.factor}`);
  }
  if (b.jitter !== undefined && !(b.jitter >= 0 && b.jitter <= 1)) {
    throw new InvalidOptionError('supervisor.backoff.jitter', `must be in [0, 1], got ${b.jitter}`);
  }
}

/**
 * Restart delay for the n-th restart (n >= 1) within the current window:
 * min(maxMs, minMs × factor^(n-1)), then jittered by ±jitter. Jitter draws from the injected Random.
 */
export function backoffDelayMs(b: Backoff | undefined, n: number, random: Random): number {
  if (b === undefined) return 0;
  const base = Math.min(b.maxMs, b.minMs * Math.pow(b.factor ?? 2, Math.max(0, n - 1)));
  const jitter = b.jitter ?? 0;
  if (jitter === 0) return base;
  return Math.min(b.maxMs, base * (1 - jitter + 2 * jitter * random.next()));
}

/**
 * Restart timestamps of one child within the sliding window. `record` answers whether one more
 * restart is allowed; the count is also the exponent for backoff.
 */
export class RestartHistory {
  #times: number[] = [];

  /** Records a restart at nowMs if the intensity allows it; returns the restart's ordinal in the window, or 0 when exceeded. */
  record(nowMs: number, s: SupervisorStrategy): number {
    const horizon = nowMs - s.withinMs;
    this.#times = this.#times.filter((t) => t > horizon);
    if (this.#times.length >= s.maxRestarts) return 0;
    this.#times.push(nowMs);
    return this.#times.length;
  }

  get count(): number {
    return this.#times.length;
  }
}
