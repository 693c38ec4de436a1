import test from 'ava';
import type { Context } from '../src/actors/index.js';
import type { NodeRecord, ProcRecord } from '../src/control/protocol/index.js';
import { recover } from '../src/control/scheduler/recovery.js';
import { Liveness } from '../src/control/liveness.js';
import { checkNodes, nodeUp } from '../src/control/scheduler/nodes.js';
import { SchedulerState, type SchedulerDeps, type SchedulerMsg } from '../src/control/scheduler/state.js';
import type { Status } from '../src/proc/types.js';

const TIMEOUT_MS = 3_000;

/** A scheduler's state with a clock of the test's own; `lost` collects the procs it ends lost. */
function scheduler(deps: Partial<SchedulerDeps> = {}): { s: SchedulerState; at(ms: number): void; lost: string[]; down: string[] } {
  let now = 0;
  const down: string[] = [];
  const ctx = { ports: { clock: { nowMs: () => now } }, log: { info: () => {}, warn: (o: { node: string }) => down.push(o.node) } } as unknown as Context<SchedulerMsg>;
  const s = new SchedulerState({ nodeTimeoutMs: TIMEOUT_MS, term: 1, ...deps } as SchedulerDeps, ctx);
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

const running = (pid: string, node: string): ProcRecord => ({ pid, spec: { program: 'echo', args: [], realm: 'default', lc: false, mcpu: 100, memMb: 64, dedicated: false, restart: 'always', maxRestarts: 5, restartWithinMs: 60_000, evictWithParent: false }, state: 'running', node, restarts: 0, term: 1, createdAtMs: 0 });

/** A scheduler recovered from a snapshot whose nodes list shows only n1, with a proc running on n1 and one on n2. */
function recoveredWithout(w: ReturnType<typeof scheduler>): void {
  Object.assign(w.s.ops, { finish: (pid: string, st: Status) => { if (st.kind === 'lost') w.lost.push(pid); w.s.live.delete(pid); } });
  recover(w.s, { type: 'recovered', records: [running('p1', 'n1'), running('p2', 'n2')], nodes: [beat('n1')], realms: ['default'], quotas: [] });
}

test('liveness - a recovery whose snapshot misses a node keeps its procs until its heartbeat, then places them there', (t) => {
  const w = scheduler();
  recoveredWithout(w);
  t.deepEqual(w.lost, [], 'not lost for a node the snapshot did not show');
  run(w, ['n1', 'n2'], 1_000, 2_000);
  t.is(w.s.placements.nodeOf('p2'), 'n2', 'placed on n2 once it beat');
  run(w, ['n1', 'n2'], 3_000, 8_000);
  t.deepEqual(w.lost, []);
});

test('liveness - a recovery whose snapshot misses a node that is really gone ends its procs lost at the node timeout', (t) => {
  const w = scheduler();
  recoveredWithout(w);
  run(w, ['n1'], 1_000, 3_000);
  t.deepEqual(w.lost, [], 'within the timeout');
  run(w, ['n1'], 4_000, 4_000);
  t.deepEqual(w.lost, ['p2']);
  t.is(w.s.live.has('p1'), true);
});

test("liveness - a new scheduler starts from the heartbeats its node saw as a standby: a node silent since before the election is down at once", (t) => {
  // The standby's view: n1, n2, n3 beat until 2 s, then n3 fell silent (its machine died with the old leader).
  const standby = new Liveness(TIMEOUT_MS);
  for (let at = 0; at <= 6_000; at += 1_000) for (const id of at <= 2_000 ? ['n1', 'n2', 'n3'] : ['n1', 'n2']) standby.beat(beat(id), at);
  const seeded = scheduler({ seen: (now) => standby.copy(now) });
  const fresh = scheduler();
  for (const w of [seeded, fresh]) {
    Object.assign(w.s.ops, { finish: (pid: string, st: Status) => { if (st.kind === 'lost') w.lost.push(pid); w.s.live.delete(pid); } });
    w.at(6_000);
    recover(w.s, { type: 'recovered', records: [running('p3', 'n3')], nodes: ['n1', 'n2', 'n3'].map(beat), realms: ['default'], quotas: [] });
    run(w, ['n1', 'n2'], 6_000, 6_000);
  }
  t.deepEqual(seeded.lost, ['p3'], 'down at the first check after recovery');
  t.deepEqual(fresh.lost, [], 'without the standby view it gets a whole timeout from the recovery');
  run(fresh, ['n1', 'n2'], 7_000, 10_000);
  t.deepEqual(fresh.lost, ['p3']);
});

test('placement - a node that runs no procs is alive to the scheduler, but nothing lands on it, after a recovery either', (t) => {
  const control = (): NodeRecord => ({ ...beat('c1'), mcpu: 64_000, memMb: 65_536, procs: false });
  const w = scheduler();
  recover(w.s, { type: 'recovered', records: [], nodes: [control()], realms: ['default'], quotas: [] });
  w.at(1_000);
  nodeUp(w.s, control());
  const lc = w.s.placements.placeLc({ pid: 'a', mcpu: 100, memMb: 64 });
  t.is(lc.kind, 'never-fits', 'however large it says it is');
  t.regex(lc.kind === 'never-fits' ? lc.reason : '', /no node that runs procs/);
  t.is(w.s.beNodes.credits.get('c1'), undefined, 'no BE slots counted for it');
  nodeUp(w.s, beat('w1'));
  t.deepEqual(w.s.placements.placeLc({ pid: 'b', mcpu: 100, memMb: 64 }), { kind: 'placed', node: 'w1' });
  t.deepEqual(w.s.placements.placeLc({ pid: 'c', mcpu: 0, memMb: 0 }), { kind: 'placed', node: 'w1' }, 'not even a proc that reserves nothing');
  // Silent, it is down like any node: its liveness counts.
  run(w, ['w1'], 2_000, 6_000);
  t.deepEqual(w.down, ['c1']);
});
