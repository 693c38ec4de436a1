// Procs ending: the terminal status written once, resources released, restart policy applied.
import type { Status } from '../../proc/types.js';
import { DeposedError } from '../fence.js';
import type { ProcRecord } from '../protocol/index.js';
import { newRecord } from './placing.js';
import type { SchedulerState } from './state.js';

/** Bounds on retrying a terminal status the table did not take (a lost or timed-out KV call). */
export const EXIT_WRITE_ATTEMPTS_MAX = 30;
export const EXIT_WRITE_RETRY_MS = 1_000;
/** Grace of a child evicted because its parent ended (spec.evictWithParent). */
export const EVICT_WITH_PARENT_GRACE_MS = 1_000;

export function finish(s: SchedulerState, pid: string, status: Status): void {
  if (s.creating.has(pid)) s.creating.set(pid, status); // written once the record exists
  else recordExit(s, pid, status, 1);
  onExit(s, pid, status);
}

// The exit must reach the table even when a write is lost (found by the simulator: message-chaos
// seed 22 left procs 'starting' forever after a dropped KV call). The write is write-once, so
// retrying is safe; a scheduler that stops meanwhile leaves it to its successor's recovery.
export function recordExit(s: SchedulerState, pid: string, status: Status, attempt: number): void {
  s.deps.table.exit(pid, status).catch((e: unknown) => {
    if (e instanceof DeposedError) return; // the successor's recovery finds the record and decides
    s.log.warn({ err: e, pid, attempt }, 'could not record an exit');
    if (attempt < EXIT_WRITE_ATTEMPTS_MAX) s.ctx.ports.timers.setTimeout(() => recordExit(s, pid, status, attempt + 1), EXIT_WRITE_RETRY_MS);
  });
}

export function onExit(s: SchedulerState, pid: string, status: Status): void {
  s.placements.release(pid);
  const rec = s.live.get(pid);
  s.live.delete(pid);
  // An eviction asked for and overtaken by the proc's own exit still means: not again.
  const evicting = s.evictWanted.delete(pid);
  if (rec !== undefined && !rec.spec.lc && rec.node !== undefined && s.beOn.has(rec.node)) s.countBe(rec.node, -1);
  if (rec !== undefined && !evicting && wantsRestart(s, rec, status)) respawn(s, rec);
  if (rec !== undefined && s.removing.has(rec.spec.realm)) s.ops.realmGone(rec.spec.realm);
  // A parent's death does not take its children along unless their spec asks for it.
  for (const child of s.live.childrenOf(pid)) if (child.spec.evictWithParent) s.ops.evict(child.pid, EVICT_WITH_PARENT_GRACE_MS, () => {});
  s.ops.drain();
}

function wantsRestart(s: SchedulerState, r: ProcRecord, st: Status): boolean {
  if (r.spec.restart === 'never' || st.kind === 'evicted' || !s.realms.has(r.spec.realm)) return false;
  if (r.spec.restart === 'on-failure' && st.kind === 'ok') return false;
  // Restart intensity: at most maxRestarts respawns within restartWithinMs, then it stays down.
  return recentRestarts(s, r).length < r.spec.maxRestarts;
}

function recentRestarts(s: SchedulerState, r: ProcRecord): number[] {
  const horizon = s.nowMs() - r.spec.restartWithinMs;
  return (r.restartTimesMs ?? []).filter((t) => t > horizon);
}

function respawn(s: SchedulerState, r: ProcRecord): void {
  const rec: ProcRecord = { ...newRecord(s, r.spec, r.restarts + 1), ...(r.program === undefined ? {} : { program: r.program }), restartTimesMs: [...recentRestarts(s, r), s.nowMs()] };
  s.log.info({ old: r.pid, pid: rec.pid }, 'respawning service');
  s.ops.accept(rec, () => {});
}

