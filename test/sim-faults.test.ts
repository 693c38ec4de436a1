import test from 'ava';
import { checkSchedule, FAULTS_MAX, FaultScheduleError, nemesis, type Fault } from '../src/sim/faults.js';
import { SimDataPath } from '../src/sim/datapath.js';
import { SimPools } from '../src/sim/pools.js';
import { runScenario } from '../src/sim/run.js';
import type { Scenario } from '../src/sim/scenario.js';
import { SkewedClock } from '../src/sim/skew.js';
import { SeededRandom } from '../src/ports/random.js';
import { VirtualTime } from '../src/ports/virtual.js';
import { burst } from '../simulations/lib.js';

const NODES = ['node-1', 'node-2', 'node-3'];

/**
 * A scenario with a fixed schedule: 30 long sleepers, the faults, then a few short procs once healed.
 * The sleepers are best-effort and land on the first node that offers slots (node-2 on these seeds).
 */
function fixed(faults: Fault[], sleepMs = 6_000): Scenario {
  return {
    name: 'fixed',
    description: 'test',
    faults: () => faults,
    async workload(w) {
      await burst(w, 30, () => ({ program: 'sleep', args: [sleepMs] }));
      await w.ports.time.advance(12_000);
      await burst(w, 10, () => ({ program: 'noop' }));
    },
  };
}

test('sim faults - a node crashes and restarts: its procs end lost, the restarted node runs new work, nothing is left running', async (t) => {
  const r = await runScenario(fixed([{ kind: 'node-crash', atMs: 1_000, durationMs: 1_000, node: 'node-2' }]), 5);
  t.deepEqual(r.violations, []);
  const slept = r.table.filter((p) => p.spec.program === 'sleep');
  t.true(slept.some((p) => p.node === 'node-2' && p.status?.kind === 'lost'), 'procs on the crashed node end lost');
  t.true(slept.filter((p) => p.node !== 'node-2').every((p) => p.status?.kind === 'ok'));
  t.true(r.trace.lines.some((l) => l.includes('"host-up","node-2"') && JSON.parse(l)[0] > 5_000), 'node-2 ran hosts again after its restart');
  t.true(r.table.every((p) => p.state === 'exited'));
});

test('sim faults - a hung host is killed by its node manager after missed pings: its procs end crashed, their buffers come back', async (t) => {
  // Pings go every third heartbeat and three unanswered kill the host: it is gone within ~12 s of hanging.
  const r = await runScenario(fixed([{ kind: 'host-hang', atMs: 1_000, durationMs: 16_000, node: 'node-2', pick: 0 }], 20_000), 6);
  t.deepEqual(r.violations, []);
  const hung = r.table.filter((p) => p.spec.program === 'sleep' && p.node === 'node-2');
  t.true(hung.length > 0);
  t.true(hung.every((p) => p.status?.kind === 'crashed'), JSON.stringify(hung.map((p) => p.status)));
  const events = r.trace.lines.map((l) => JSON.parse(l) as unknown[]);
  const down = events.findIndex((e) => e[1] === 'host-down' && e[2] === 'node-2');
  const reclaim = events.findIndex((e, i) => i > down && e[1] === 'reclaim' && e[2] === 'node-2' && e[6] === true);
  t.true(down >= 0 && reclaim > down, 'the node manager handed the dead host to its data path');
  t.true((events[reclaim]![5] as number) > 0, 'which reclaimed the buffers its procs held');
});

test('sim faults - proc crash, NATS down, a partition of two nodes, lossy links and slow KV all heal without violations', async (t) => {
  const faults: Fault[] = [
    { kind: 'proc-crash', atMs: 500, node: 'node-2', pick: 1 },
    { kind: 'nats-down', atMs: 1_000, durationMs: 800 },
    { kind: 'partition', atMs: 2_500, durationMs: 3_000, nodes: ['node-1', 'node-2'] },
    { kind: 'net', atMs: 500, durationMs: 4_000, node: 'node-3', faults: { dropRate: 0.1, duplicateRate: 0.2, jitterMs: 20, reorder: true } },
    { kind: 'slow-kv', atMs: 500, durationMs: 4_000, node: 'node-3', delayMs: 150 },
  ];
  const r = await runScenario(fixed(faults, 3_000), 7);
  t.deepEqual(r.violations, []);
  t.true(r.table.some((p) => p.status?.kind === 'crashed'), 'the crashed proc ended crashed');
  for (const k of ['proc-crash', 'nats-down', 'partition', 'net', 'slow-kv']) t.true(r.trace.lines.some((l) => l.includes(`"fault","${k}"`)), k);
});

test('sim faults - a skewed clock runs at its rate from a continuous reading, only jumps forward, and scales its timers', async (t) => {
  const world = new VirtualTime();
  const c = new SkewedClock(world);
  await world.advance(100);
  t.is(c.nowMs(), 100);
  c.skew(1_000, 0.5);
  t.is(c.nowMs(), 1_100);
  await world.advance(100);
  t.is(c.nowMs(), 1_150);
  let firedAt = -1;
  c.setTimeout(() => (firedAt = world.nowMs()), 50);
  await world.advance(200);
  t.is(firedAt, 300, '50 ms on a half-speed clock take 100 world ms');
  t.throws(() => c.skew(-1, 1), { instanceOf: RangeError });
  t.throws(() => c.skew(0, 3), { instanceOf: RangeError });
});

test('sim faults - the nemesis draws the same schedule from the same seed, within its bounds; schedules from files are checked', (t) => {
  const o = { kinds: ['node-crash', 'net', 'clock-skew', 'partition'] as const, count: 20, windowMs: 5_000 };
  const a = nemesis(new SeededRandom(9), NODES, o);
  t.deepEqual(a, nemesis(new SeededRandom(9), NODES, o));
  t.notDeepEqual(a, nemesis(new SeededRandom(10), NODES, o));
  t.is(a.length, 20);
  t.true(a.every((f) => f.atMs < 5_000 && (f.kind !== 'clock-skew' || Math.abs(f.rate - 1) <= 0.1)));
  t.throws(() => nemesis(new SeededRandom(1), NODES, { ...o, count: FAULTS_MAX + 1 }), { instanceOf: FaultScheduleError });
  t.deepEqual(checkSchedule(a, NODES), a);
  t.throws(() => checkSchedule([{ kind: 'meteor', atMs: 1 }], NODES), { instanceOf: FaultScheduleError, message: /unknown kind meteor/ });
  t.throws(() => checkSchedule([{ kind: 'node-crash', atMs: 1, durationMs: 1, node: 'node-9' }], NODES), { message: /no node node-9/ });
});

test('sim datapath - endpoints own real pool buffers; closing them reclaims, the last host frees the pool, a pool freed with live buffers is reported', async (t) => {
  const pools = new SimPools();
  const seen: unknown[][] = [];
  const dp = new SimDataPath('node-1', pools, { reclaimed: (...a) => seen.push(['reclaim', ...a]), poolFreed: (...a) => seen.push(['freed', ...a]) });
  const w1 = await dp.prepareHost('h1', 'default');
  const w2 = await dp.prepareHost('h2', 'default');
  t.is(dp.openEndpoint('h1'), undefined, 'no endpoint before the host is attached');
  t.true(dp.attachHost(w1) && dp.attachHost(w2));
  const pool = dp.poolOf('h1')!;
  t.is(dp.poolOf('h2'), pool, 'one pool per (node, realm)');
  const a = dp.openEndpoint('h1')!;
  const b = dp.openEndpoint('h2')!;
  t.not(a, b);
  const x = pool.alloc(a, 200)!;
  pool.alloc(a, 3_000);
  pool.alloc(b, 100);
  pool.owners.set(b, 'default.1-1');
  t.is(pools.live().buffers.length, 3);
  dp.closeEndpoints([a]);
  t.deepEqual(seen.at(-1), ['reclaim', 'node-1', 'default', 1, 2, false]);
  t.false(pool.free(a, x), 'a reclaimed buffer cannot be freed again');
  t.deepEqual(pools.live().buffers.map((l) => l.pid), ['default.1-1']);
  t.deepEqual(pools.live().problems, []);
  dp.hostGone('h1');
  t.is(dp.poolOf('h2'), pool, 'the pool stays while a host of the realm is up');
  dp.hostGone('h2');
  t.deepEqual(seen.at(-1), ['freed', 'node-1', 'default']);
  t.deepEqual(seen.at(-2), ['reclaim', 'node-1', 'default', 2, 1, true], 'a dead host: its endpoints and its own, with a scan');
  t.deepEqual(pools.freedLive, []);
  t.is(pools.live().buffers.length, 0);
  // A reclamation that misses (here: an owner no endpoint stands for) is seen when the pool is freed.
  const w3 = await dp.prepareHost('h3', 'other');
  dp.attachHost(w3);
  dp.poolOf('h3')!.alloc(999, 100);
  dp.hostGone('h3');
  t.is(pools.freedLive.length, 1);
  t.regex(pools.freedLive[0]!, /node-1\/other was freed with 1 buffers still live/);
  // A crashed node's pools vanish unexamined.
  const w4 = await dp.prepareHost('h4', 'default');
  dp.attachHost(w4);
  dp.poolOf('h4')!.alloc(dp.openEndpoint('h4')!, 100);
  dp.crash();
  t.is(pools.live().buffers.length, 0);
  t.is(pools.freedLive.length, 1);
  await t.throwsAsync(dp.prepareHost('h5', 'default'));
});

test('sim time - timers fire in (time, insertion) order, cancelled ones never, whatever order they were set in', async (t) => {
  const time = new VirtualTime();
  const r = new SeededRandom(3);
  const fired: Array<[number, number]> = [];
  const want: Array<[number, number]> = [];
  for (let i = 0; i < 2_000; i++) {
    const at = r.int(100);
    const h = time.setTimeout(() => fired.push([time.nowMs(), i]), at);
    if (r.next() < 0.2) h.cancel();
    else want.push([at, i]);
  }
  await time.run();
  want.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  t.deepEqual(fired, want);
});
