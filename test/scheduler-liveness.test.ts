import test from 'ava';
import type { Context } from '../src/actors/index.js';
import type { NodeRecord } from '../src/control/protocol/index.js';
import { checkNodes, nodeUp } from '../src/control/scheduler/nodes.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg } from '../src/control/scheduler/state.js';
import type { Status } from '../src/proc/types.js';

const TIMEOUT_MS = 3_000;

/** A scheduler's state with a clock of the test's own; `lost` collects the procs it ends lost. */
function scheduler(): { s: SchedulerState; at(ms: number): void; lost: string[]; down: string[] } {
  let now = 0;
  const down: string[] = [];
  const ctx = { ports: { clock: { nowMs: () => now } }, log: { warn: (o: { node: string }) => down.push(o.node) } } as unknown as Context<SchedulerMsg>;
  const s = new SchedulerState({ nodeTimeoutMs: TIMEOUT_MS, term: 1 } as SchedulerDeps, ctx);
  const lost: string[] = [];
  Object.assign(s.ops, { drain: () => {}, finish: (pid: string, st: Status) => st.kind === 'lost' && lost.push(pid) });
  return { s, at: (ms) => void (now = ms), lost, down };
}

const seq = new Map<string, number>();
const beat = (id: string): NodeRecord => {
  seq.set(id, (seq.get(id) ?? 0) + 1);
  return { id, mcpu: 1000, memMb: 1024, address: '', startedAtMs: 1, heartbeatSeq: seq.get(id)!, beSlots: 4 };
};

/** Each of `ids` beats once a second from `fromMs` to `toMs`; the scheduler checks its nodes after each second. */
function run(w: ReturnType<typeof scheduler>, ids: string[], fromMs: number, toMs: number): void {
  for (let t = fromMs; t <= toMs; t += 1_000) {
    w.at(t);
    for (const id of ids) nodeUp(w.s, beat(id));
    checkNodes(w.s);
  }
}

test('liveness - a node silent while the others beat is down after the timeout, and its procs end lost', (t) => {
  const w = scheduler();
  run(w, ['n1', 'n2', 'n3'], 0, 2_000);
  w.s.placements.assign({ pid: 'p3', mcpu: 100, memMb: 64 }, 'n3');
  run(w, ['n1', 'n2'], 3_000, 5_000);
  t.deepEqual(w.down, [], 'not before the timeout');
  run(w, ['n1', 'n2'], 6_000, 6_000);
  t.deepEqual(w.down, ['n3']);
  t.deepEqual(w.lost, ['p3']);
});

test('liveness - when every heartbeat stops at once (the nodes bucket has no leader), no node is down, and silence counts again from when they flow', (t) => {
  const w = scheduler();
  run(w, ['n1', 'n2', 'n3'], 0, 2_000);
  w.s.placements.assign({ pid: 'p1', mcpu: 100, memMb: 64 }, 'n1');
  // Nine silent seconds: an election of the bucket's stream.
  for (let t2 = 3_000; t2 <= 11_000; t2 += 500) {
    w.at(t2);
    checkNodes(w.s);
  }
  t.deepEqual(w.down, []);
  // Heartbeats flow again, n3's a little later than the others'.
  run(w, ['n1', 'n2'], 12_000, 12_000);
  run(w, ['n1', 'n2', 'n3'], 13_000, 16_000);
  t.deepEqual(w.down, [], 'a late first heartbeat after the stall is not silence');
  t.deepEqual(w.lost, []);
  // A node that stays silent after they flow again is down a timeout later.
  run(w, ['n1', 'n2'], 17_000, 20_000);
  t.deepEqual(w.down, ['n3']);
});
