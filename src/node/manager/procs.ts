// Procs as their hosts report them: started (and named), exited (reported until acknowledged, and
// remembered), evicted.
import { assert } from '../../assert.js';
import { NAME_DELETE_ATTEMPTS_MAX } from '../../control/names.js';
import { decodeNameRecord, encode, type NameRecord, type RunOrder } from '../../control/protocol/index.js';
import type { Status } from '../../proc/types.js';
import type { NodeState, Proc } from './state.js';
import { unshare } from './hosts.js';

/**
 * A function that exits within this delay never has its `running` state written: its exit is the
 * only table write it costs (most serverless functions are that short).
 */
export const RUNNING_WRITE_DELAY_MS = 20;
/** Grace a proc gets to stop when its spawn is cancelled (its record could not be created). */
export const CANCEL_GRACE_MS = 1_000;


export function exited(s: NodeState, pid: string, status: Status): void {
  const p = s.procs.get(pid);
  if (p === undefined) return; // a duplicate report: the first one counted
  s.procs.delete(pid);
  // Only a proc that reached a host may have run: one evicted while held for its record never did, and
  // a later order for its pid (a successor's create of the key won) must run it (simulator,
  // realm-teardown-under-load seed 1152: left `starting`).
  if (p.hostId !== undefined) remember(s, pid, status);
  p.evictTimer?.cancel();
  if (p.endpoint !== undefined) s.ops.lingerEndpoint(p.endpoint);
  const h = s.hostOf(p);
  h?.procs.delete(pid);
  if (h !== undefined && (h.dedicatedTo === pid || (h.tainted && h.procs.size === 0))) h.handle.kill();
  s.ops.recordExit(pid, p, status);
  if (s.cfg.exitTwice === true) s.ops.recordExit(pid, p, status);
  reportExit(s, pid, status);
  if (p.order.spec.name !== undefined) void unname(s, p.order, pid);
}

/**
 * Heartbeats an exit event is sent again at until a scheduler acknowledges it. Unacknowledged, a
 * scheduler would count the proc live until a failover (found by the simulator: message-chaos seed
 * 995, every node's room taken by procs long gone); past this bound its successor's recovery reads
 * the table, where the exit is written (records.ts).
 */
export const EXIT_REPORT_SENDS_MAX = 30;

/** An exit to the scheduler, acknowledged: sent now, and again each heartbeat until it is. */
/** `unrecorded`: nobody wrote this exit to the table; the scheduler of `term` is to (see ProcEvent). */
export function reportExit(s: NodeState, pid: string, status: Status, unrecorded?: { unrecorded: true; term: number | undefined }): void {
  const u = s.unreported.get(pid) ?? { status, sends: 0, inFlight: false, unrecorded };
  s.unreported.set(pid, u);
  if (u.inFlight) return;
  u.sends++;
  u.inFlight = true;
  const ends = u.unrecorded === undefined ? {} : { unrecorded: true, ...(u.unrecorded.term === undefined ? {} : { term: u.unrecorded.term }) };
  s.deps.reportExit({ type: 'exited', pid, node: s.cfg.id, status, ...ends }).then(
    () => s.unreported.delete(pid),
    () => {
      u.inFlight = false;
      if (u.sends >= EXIT_REPORT_SENDS_MAX) s.unreported.delete(pid);
    },
  );
}

export function reportUnacknowledged(s: NodeState): void {
  for (const [pid, u] of [...s.unreported]) reportExit(s, pid, u.status, u.unrecorded);
}

/** Ended procs a node remembers, so that a repeated order does not run one again (about 100 B each). */
export const ENDED_REMEMBERED_MAX = 10_000;

function remember(s: NodeState, pid: string, status: Status): void {
  s.ended.set(pid, status);
  if (s.ended.size > ENDED_REMEMBERED_MAX) s.ended.delete(s.ended.keys().next().value!);
}

/**
 * A proc cancelled before it reached a host never ran: nothing is reported or remembered (a later
 * order for its pid, from a scheduler whose create of it won, runs it). Its record is ended only if
 * its own order's create landed after all (records.ts, recordExit of a cancelled proc).
 */
export function dropUnstarted(s: NodeState, pid: string, p: Proc): void {
  assert(p.hostId === undefined, `proc ${pid} never reached a host`);
  s.procs.delete(pid);
  s.ops.recordExit(pid, p, { kind: 'evicted', message: 'its spawn was cancelled before it started' });
}

export function started(s: NodeState, pid: string, actorPath: string | undefined, kind: 'function' | 'service'): void {
  const p = s.procs.get(pid);
  if (p === undefined) return;
  p.kind = kind;
  if (actorPath !== undefined) p.actorPath = actorPath;
  // A function that is still running after RUNNING_WRITE_DELAY_MS has its start written and
  // reported then; a shorter one costs neither (its exit says it all).
  if (kind === 'service') {
    s.ops.markRunning(pid, p);
    s.deps.publish({ type: 'started', pid, node: s.cfg.id });
  } else s.ctx.scheduleOnce(RUNNING_WRITE_DELAY_MS, { type: 'mark-running', pid });
  const name = p.order.spec.name;
  if (name !== undefined && actorPath !== undefined) {
    const exports = p.order.spec.exports;
    const rec: NameRecord = { realm: p.order.spec.realm, name, pid, actorPath, ...(p.endpoint === undefined ? {} : { node: s.cfg.id, endpoint: p.endpoint }), ...(exports === undefined ? {} : { exports }) };
    void s.deps.namesKv.put(`${rec.realm}.${name}`, encode(rec)).catch((e: unknown) => s.log.warn({ err: e }, 'could not register name'));
  }
}

// A name outlives its proc if its removal is lost (found by the simulator: realm-teardown-under-load
// seed 3030, a delete that timed out): re-read and try again, a bounded number of times.
async function unname(s: NodeState, order: RunOrder, pid: string): Promise<void> {
  const key = `${order.spec.realm}.${order.spec.name}`;
  for (let attempt = 1; attempt <= NAME_DELETE_ATTEMPTS_MAX; attempt++) {
    const cur = await s.deps.namesKv.get(key).catch(() => undefined);
    if (cur === null) return;
    if (cur !== undefined) {
      if (decodeNameRecord(cur.value)?.pid !== pid) return; // a successor owns it now
      if (await s.deps.namesKv.delete(key, cur.revision).then(() => true, () => false)) return;
    }
  }
  s.log.warn({ key, pid }, 'could not remove a name; it stays until its realm is removed or the name is taken again');
}

/** Asks the proc to stop (cooperative), with a forced eviction after the grace; once per proc. */
export function startEviction(s: NodeState, pid: string, p: Proc, graceMs: number): void {
  if (p.evictTimer !== undefined) return;
  p.evictTimer = s.ctx.scheduleOnce(graceMs, { type: 'force-evict', pid });
  s.hostOf(p)?.handle.send({ t: 'evict', pid });
}

export function forceEvict(s: NodeState, pid: string): void {
  const p = s.procs.get(pid);
  if (p === undefined) return;
  const h = s.hostOf(p);
  if (h !== undefined && h.dedicatedTo === pid) return h.handle.kill(); // its exit reports 'evicted'
  if (h !== undefined) {
    // Shared host: the proc's code cannot be killed alone. Report it evicted, retire the host.
    h.tainted = true;
    unshare(s, p.hostId!);
  }
  exited(s, pid, { kind: 'evicted', message: 'evicted by force after the grace period' });
}

