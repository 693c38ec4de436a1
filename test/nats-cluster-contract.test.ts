import test, { type ExecutionContext } from 'ava';
import { TimeoutError } from '../src/nats/errors.js';
import type { Bus, Kv } from '../src/nats/types.js';
import { CONTRACT_JS_TIMEOUT_MS, LEADER_WAIT_MS, realClusterWorld, simClusterWorld, stopSharedCluster, type ClusterWorld } from './helpers/cluster-world.js';

/**
 * One contract for a replicated JetStream, run against three real nats-servers clustered on loopback
 * (test/helpers/nats-cluster.ts) and against the simulated cluster (src/sim/nats-cluster.ts): the
 * simulator's failovers may only be trusted where they behave like the real ones. Cases run one at a
 * time (they kill and cut servers) and leave the cluster whole.
 */

test.after.always(stopSharedCluster);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null | undefined): string | null => (b === null || b === undefined ? null : new TextDecoder().decode(b));
let seq = 0;
const fresh = (p: string): string => `${p}${process.pid}x${seq++}`;
/** Tries a call until it succeeds or `boundMs` of the world's time is spent; returns it and the failures' types. */
async function eventually<T>(w: ClusterWorld, call: () => Promise<T>, boundMs = LEADER_WAIT_MS): Promise<{ value: T | undefined; failures: string[] }> {
  const failures: string[] = [];
  // Each failed try costs at least the pause; a timed-out one the JetStream timeout too.
  for (let spentMs = 0; spentMs <= boundMs; ) {
    try {
      return { value: await call(), failures };
    } catch (e) {
      const type = (e as { type?: string }).type ?? String(e);
      failures.push(type);
      spentMs += 100 + (type === 'timeout' ? CONTRACT_JS_TIMEOUT_MS : 0);
      await w.sleep(100);
    }
  }
  return { value: undefined, failures };
}

async function until(w: ClusterWorld, cond: () => Promise<boolean>, boundMs = LEADER_WAIT_MS): Promise<boolean> {
  return (await eventually(w, async () => ((await cond()) ? true : Promise.reject(new Error('not yet'))), boundMs)).value === true;
}

/**
 * A call a minority cannot serve fails by timing out or with no responders: which one depends on whether
 * the server still routes to the lost interest (a socket cut is noticed at once, a silent link only
 * after the route's pings), so the contract takes either. The simulator always times out.
 */
async function fails(t: ExecutionContext, call: Promise<unknown>): Promise<void> {
  const e = await call.then(() => undefined, (x: unknown) => x);
  t.true(['timeout', 'no-responders'].includes((e as { type?: string } | undefined)?.type ?? 'succeeded'), `expected a timeout or no responders, got ${String(e)}`);
}

const getsValue = (kv: Kv, key: string, want: string) => async (): Promise<boolean> => dec((await kv.get(key))?.value) === want;

type Case = (t: ExecutionContext, w: ClusterWorld) => Promise<void>;
const cases: [string, Case][] = [];
const contract = (name: string, fn: Case): void => void cases.push([name, fn]);

/** A bucket, its leader, and a client on the leader's server and one on another. */
async function setup(w: ClusterWorld): Promise<{ bucket: string; leader: number; other: number; onLeader: Kv; onOther: Kv; busOnLeader: Bus }> {
  const bucket = fresh('rep');
  const probe = await w.client(fresh('probe'), 0);
  await w.kv(probe, bucket);
  const leader = await w.leaderOf(bucket);
  const other = (leader + 1) % 3;
  const busOnLeader = await w.client(fresh('on-leader'), leader);
  const onLeader = await w.kv(busOnLeader, bucket);
  const onOther = await w.kv(await w.client(fresh('on-other'), other), bucket);
  return { bucket, leader, other, onLeader, onOther, busOnLeader };
}

contract('a bucket\'s leader server is killed: acknowledged writes survive, calls meanwhile time out or are refused, a new leader serves, its clients fail over and read them', async (t, w) => {
  const { bucket, leader, onLeader, onOther } = await setup(w);
  const rev = await onLeader.put('k', enc('before'));
  w.kill(leader);
  try {
    const put = await eventually(w, () => onOther.put('k', enc('after')));
    t.truthy(put.value, `no write landed within ${LEADER_WAIT_MS} ms: ${put.failures.join(', ')}`);
    t.true(put.value! > rev);
    t.true(put.failures.length > 0, 'the leader change was not felt');
    t.deepEqual([...new Set(put.failures)].filter((f) => f !== 'timeout' && f !== 'no-responders'), []);
    t.is(dec((await onOther.get('k'))?.value), 'after');
    // The killed server's client reconnects to a live one and reads what was acknowledged.
    t.true(await until(w, getsValue(onLeader, 'k', 'after')));
  } finally {
    await w.restart(leader);
  }
  // Back, the server catches up: its own clients read the latest write.
  const late = await w.kv(await w.client(fresh('late'), leader), bucket);
  t.true(await until(w, getsValue(late, 'k', 'after')));
});

contract('a bucket\'s leader server is cut off: the majority elects another and goes on; the old leader commits nothing and serves at most its stale replica; healed, it catches up', async (t, w) => {
  const { leader, onLeader, onOther } = await setup(w);
  await onLeader.put('k', enc('before'));
  w.partition(leader, true);
  try {
    const put = await eventually(w, () => onOther.put('k', enc('after')));
    t.truthy(put.value, `no write landed within ${LEADER_WAIT_MS} ms: ${put.failures.join(', ')}`);
    t.true(put.failures.includes('no-responders') || put.failures.includes('timeout'), 'the leader change was not felt');
    await fails(t, onLeader.put('k', enc('minority')));
    // The real one answers from its replica (stale) or not at all, from one run to the next; never newer.
    const got = await onLeader.get('k').then((e) => dec(e?.value), (e: unknown) => (e as { type?: string }).type);
    t.true(['before', 'timeout', 'no-responders'].includes(got ?? 'null'), `the cut off leader's get gave ${got}`);
    if (w.kind === 'sim') t.is(got, 'before');
  } finally {
    w.partition(leader, false);
  }
  t.true(await until(w, getsValue(onLeader, 'k', 'after')));
  t.truthy((await eventually(w, () => onLeader.put('k2', enc('healed')))).value);
  t.true(await until(w, getsValue(onOther, 'k2', 'healed')));
});

contract('a follower server cut off (a minority): the majority writes at once; the minority\'s writes and gets time out, core messages do not cross; healed, its writes land', async (t, w) => {
  const { leader, other, onLeader, onOther } = await setup(w);
  const leaderBus = await w.client(fresh('pub'), leader);
  await onLeader.put('k', enc('v1'));
  w.partition(other, true);
  try {
    t.true((await onLeader.put('k', enc('v2'))) > 0);
    // Unlike a cut off leader (above), a follower stops serving direct gets.
    await fails(t, onOther.get('k'));
    await fails(t, onOther.put('k', enc('minority')));
    const subject = fresh('across.');
    const sub = leaderBus.subscribe(subject);
    await leaderBus.flush();
    const minorityBus = await w.client(fresh('minority-pub'), other);
    minorityBus.publish(subject, enc('hello'));
    await w.sleep(300);
    t.is(sub.pending, 0);
    sub.unsubscribe();
  } finally {
    w.partition(other, false);
  }
  t.truthy((await eventually(w, () => onOther.put('k', enc('v3')))).value);
  t.true(await until(w, getsValue(onLeader, 'k', 'v3')));
});

for (const [name, fn] of cases) {
  test.serial(`real cluster - ${name}`, async (t) => {
    t.timeout(120_000);
    const w = await realClusterWorld();
    try {
      await fn(t, w);
    } finally {
      await w.stop();
    }
  });
  test.serial(`sim cluster - ${name}`, async (t) => {
    const w = simClusterWorld(21);
    try {
      await fn(t, w);
    } finally {
      await w.stop();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// sim only: what the real cluster cannot be made to do on cue, on virtual time.

async function inFlight(killAfterMs: number): Promise<{ error: unknown; after: string | null; inherited: number; dropped: number }> {
  const w = simClusterWorld(22);
  const cluster = w.sim.cluster!;
  const bus = await w.client('writer', 0);
  const kv = await w.kv(bus, 'flight');
  const leader = await w.leaderOf('flight');
  const follower = [0, 1, 2].find((i) => i !== leader)!;
  const onFollower = await w.kv(await w.client('via-follower', follower), 'flight');
  await kv.put('k', enc('first'));
  // up 1 ms to the follower's server, 1 ms hop to the leader, 1 ms to reach a follower, 1 ms back.
  w.ports.time.setTimeout(() => w.kill(leader), killAfterMs);
  const error = await onFollower.put('k', enc('second')).then(() => undefined, (e: unknown) => e);
  await w.leaderOf('flight');
  const after = dec((await onFollower.get('k'))?.value);
  const out = { error, after, inherited: cluster.inheritedWrites, dropped: cluster.droppedWrites };
  await w.stop();
  return out;
}

test('sim cluster only - a write its leader had replicated before dying lands without an ack; one it had not is lost', async (t) => {
  const landed = await inFlight(3);
  t.true(landed.error instanceof TimeoutError);
  t.is(landed.after, 'second');
  t.deepEqual([landed.inherited, landed.dropped], [1, 0]);
  const lost = await inFlight(2.5);
  t.true(lost.error instanceof TimeoutError);
  t.is(lost.after, 'first');
  t.deepEqual([lost.inherited, lost.dropped], [0, 1]);
});

test('sim cluster only - no quorum: every call waits; a second server back elects a leader and the writes made before stay', async (t) => {
  const w = simClusterWorld(23);
  const kv = await w.kv(await w.client('c', 0), 'quorum');
  await kv.put('k', enc('kept'));
  w.kill(1);
  w.kill(2);
  await t.throwsAsync(kv.put('k', enc('no')), { instanceOf: TimeoutError });
  await w.sleep(20_000);
  t.false(w.sim.cluster!.hasQuorum);
  await w.restart(1);
  t.truthy((await eventually(w, () => kv.put('k2', enc('yes')))).value);
  t.is(dec((await kv.get('k'))?.value), 'kept');
  await w.stop();
});

test('sim cluster only - the same seed elects the same leaders', async (t) => {
  async function run(seed: number): Promise<string> {
    const w = simClusterWorld(seed);
    const kv = await w.kv(await w.client('c', 0), 'det');
    const first = await w.leaderOf('det');
    w.kill(first);
    await eventually(w, () => kv.put('k', enc('x')));
    const out = `${first} ${await w.leaderOf('det')} ${w.sim.cluster!.elections}`;
    await w.stop();
    return out;
  }
  t.is(await run(5), await run(5));
});
