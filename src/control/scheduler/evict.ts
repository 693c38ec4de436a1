// Evictions: a queued proc ends at once; a placed one is asked of its node (again once it has the proc).
import { ControlError } from '../errors.js';
import type { AckReply, SchedulerState } from './state.js';

export function removePending(s: SchedulerState, pid: string): boolean {
  const i = s.lcPending.findIndex((r) => r.pid === pid);
  if (i >= 0) s.lcPending.splice(i, 1);
  return i >= 0;
}

export function evict(s: SchedulerState, pid: string, graceMs: number, reply: AckReply): void {
  const rec = s.live.get(pid);
  if (rec === undefined) return reply({ ok: false, error: new ControlError('unknown-proc', `no running or queued proc ${pid}`).toWire() });
  const queued = s.be.remove((q) => q.record.pid === pid).length > 0 || removePending(s, pid);
  if (queued || rec.node === undefined) {
    s.ops.finish(pid, { kind: 'evicted', message: 'evicted before it started' });
    return reply({ ok: true });
  }
  s.evictWanted.set(pid, graceMs);
  const node = rec.node;
  s.deps.toNode(node, { op: 'evict', pid, graceMs }).then(
    () => reply({ ok: true }),
    (e: unknown) => {
      // Not running there (yet, or any more): its run order is still on its way (runTaken sends the
      // eviction again) or it ended by itself meanwhile (its exit is read below, and an eviction asked
      // for keeps a `restart` proc from coming back). Either way it will not run on: the eviction holds.
      if (e instanceof ControlError && e.type === 'unknown-proc') reply({ ok: true });
      else reply({ ok: false, error: new ControlError('internal', `node ${node} did not take the eviction: ${(e as Error).message}`).toWire() });
      exitedMeanwhile(s, pid, node);
    },
  );
}

/**
 * A node that no longer has a proc the scheduler thinks live may have ended it and lost the exit event
 * (a core NATS message, at most once): the table has the truth. Without this a realm removal waited
 * forever for a proc that had exited (found by the simulator, realm-teardown-under-load seed 188).
 */
function exitedMeanwhile(s: SchedulerState, pid: string, node: string): void {
  s.deps.table.get(pid).then(
    (cur) => {
      if (cur?.record.state === 'exited' && cur.record.status !== undefined) s.ctx.self.tell({ type: 'proc-event', ev: { type: 'exited', pid, node, status: cur.record.status } });
    },
    () => {},
  );
}

/** The node has accepted a run order: send it an eviction asked for before that. */
export function runTaken(s: SchedulerState, pid: string): void {
  const graceMs = s.evictWanted.get(pid);
  const rec = s.live.get(pid);
  if (graceMs !== undefined && rec?.node !== undefined) s.deps.toNode(rec.node, { op: 'evict', pid, graceMs }).catch((e: unknown) => s.log.warn({ err: e, pid }, 'could not re-send an eviction'));
}

