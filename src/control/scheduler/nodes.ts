// Node liveness by the scheduler's own clock: heartbeats bring a node up, silence takes it down.
import type { NodeRecord } from '../protocol/index.js';
import type { SchedulerState } from './state.js';
import { adopt } from './recovery.js';

export function nodeUp(s: SchedulerState, n: NodeRecord): void {
  // A record seen before (a reopened watch replays the latest) says nothing of the node now.
  if (!s.liveness.beat(n, s.nowMs())) return;
  // A node that runs no procs is alive (its heartbeats count) but has no place in placement: nothing, LC
  // or BE, can land on it, whatever its capacity says.
  if (n.procs === false) return;
  s.placements.upsertNode({ id: n.id, mcpu: n.mcpu, memMb: n.memMb });
  const waiting = s.unconfirmed.get(n.id);
  s.unconfirmed.delete(n.id);
  for (const r of waiting ?? []) {
    const cur = s.live.get(r.pid); // it may have exited meanwhile
    if (cur !== undefined) adopt(s, cur, n.id);
  }
  // Its BE slots, as its heartbeat states them: the scheduler counts what it runs there against them.
  s.beNodes.setCredits(n.id, n.beSlots);
  s.ops.drain();
}

/** Down: silent for the timeout while other nodes' heartbeats arrived (src/control/liveness.ts). */
export function checkNodes(s: SchedulerState): void {
  for (const id of s.liveness.silent(s.nowMs())) nodeDown(s, id);
}

export function nodeDown(s: SchedulerState, id: string): void {
  s.log.warn({ node: id }, 'node is down');
  s.liveness.forget(id);
  s.beNodes.forget(id);
  for (const pid of s.placements.removeNode(id)) s.ops.finish(pid, { kind: 'lost', message: `node ${id} stopped heartbeating` });
  const waiting = s.unconfirmed.get(id);
  s.unconfirmed.delete(id);
  for (const r of waiting ?? []) if (s.live.has(r.pid)) s.ops.finish(r.pid, { kind: 'lost', message: `node ${id} was gone when a new scheduler took over` });
}

