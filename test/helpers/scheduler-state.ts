// A scheduler's state driven by hand: its concerns called directly, with a clock of the test's own.
import type { Context } from '../../src/actors/index.js';
import type { NodeRecord } from '../../src/control/protocol/index.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg } from '../../src/control/scheduler/state.js';
import type { Status } from '../../src/proc/types.js';

export const TIMEOUT_MS = 3_000;

/** A scheduler's state with a clock of the test's own; `lost` collects the procs it ends lost. */
export function scheduler(deps: Partial<SchedulerDeps> = {}): { s: SchedulerState; at(ms: number): void; lost: string[]; down: string[] } {
  let now = 0;
  const down: string[] = [];
  const ctx = { ports: { clock: { nowMs: () => now } }, log: { info: () => {}, warn: (o: { node: string }) => down.push(o.node) } } as unknown as Context<SchedulerMsg>;
  const s = new SchedulerState({ nodeTimeoutMs: TIMEOUT_MS, term: 1, ...deps } as SchedulerDeps, ctx);
  const lost: string[] = [];
  Object.assign(s.ops, { drain: () => {}, finish: (pid: string, st: Status) => st.kind === 'lost' && lost.push(pid) });
  return { s, at: (ms) => void (now = ms), lost, down };
}

const seq = new Map<string, number>();
/** A heartbeat of node `id` (1,000 mcpu, 1 GB, 4 BE slots), each one newer than the last. */
export const beat = (id: string, extra: Partial<NodeRecord> = {}): NodeRecord => {
  seq.set(id, (seq.get(id) ?? 0) + 1);
  return { id, mcpu: 1000, memMb: 1024, address: '', startedAtMs: 1, heartbeatSeq: seq.get(id)!, beSlots: 4, ...extra };
};
