import test from 'ava';
import { BUCKET, encode, NODE, NODE_NOTE, type ProcRecord } from '../src/control/protocol/index.js';
import { NoRespondersError, TimeoutError } from '../src/nats/errors.js';
import { parseSpec } from '../src/proc/spec.js';
import type { Status } from '../src/proc/types.js';
import { SIM_PROGRAMS } from '../src/sim/host.js';
import { simWorld, type World } from '../src/sim/world.js';

async function started(seed: number): Promise<World> {
  const w = await simWorld(seed);
  await w.ports.time.advance(3_000); // a leader is elected, nodes heartbeat
  await w.during(w.client.createRealm('default'), 1_000);
  return w;
}

async function table(w: World): Promise<ProcRecord[]> {
  return w.during(w.client.ps({ all: true }), 1_000);
}

/**
 * A spawn storm on virtual time; with `mixed`, the seeded PRNG picks each proc's program and sleep, so
 * the run depends on the seed. Returns a trace that must depend on the seed alone.
 */
async function storm(seed: number, n: number, mixed = false): Promise<{ trace: string[]; accepted: string[]; records: ProcRecord[]; events: number }> {
  const w = await started(seed);
  const r = w.ports.random;
  const spec = () => (!mixed ? { program: 'noop' } : r.next() < 0.2 ? { program: 'fail' } : { program: 'sleep', args: [r.int(500)] });
  const accepted = await w.during(Promise.all(Array.from({ length: n }, () => w.client.spawn(spec(), { timeoutMs: 5_000 }))), 10_000);
  await w.ports.time.advance(5_000);
  const records = await table(w);
  const trace = records.map((x) => `${x.pid} ${x.spec.program} ${x.node} ${x.state} ${x.status?.kind}`).sort();
  const events = w.ports.time.eventsExecuted;
  for (const node of w.nodes.values()) if (node.running !== undefined) await w.during(node.running.stop(), 5_000);
  return { trace, accepted, records, events };
}

test('sim - a spawn storm on the real control-plane actors: every accepted spawn ends exactly once, ok', async (t) => {
  const { accepted, records } = await storm(1, 150);
  t.is(new Set(accepted).size, 150);
  t.is(records.length, 150);
  t.true(records.every((r) => r.state === 'exited' && r.status?.kind === 'ok'), JSON.stringify(records.filter((r) => r.status?.kind !== 'ok').slice(0, 3)));
  t.true(new Set(records.map((r) => r.node)).size > 1, 'work spread over nodes');
});

test('sim - the same seed replays the same run; another seed differs', async (t) => {
  const a = await storm(42, 60, true);
  const b = await storm(42, 60, true);
  t.deepEqual(a.trace, b.trace);
  t.is(a.events, b.events);
  t.true(a.records.some((x) => x.status?.kind === 'error') && a.records.some((x) => x.status?.kind === 'ok'));
  const c = await storm(43, 60, true);
  t.notDeepEqual(c.trace, a.trace);
});

test('sim - a node cut off from NATS: its procs end lost, the rest of the cluster carries on', async (t) => {
  const w = await started(7);
  const pids = await w.during(Promise.all(Array.from({ length: 30 }, () => w.client.spawn({ program: 'sleep', args: [60_000] }))), 5_000);
  await w.ports.time.advance(1_000);
  const before = await table(w);
  const victim = before.find((r) => r.node !== undefined)!.node!;
  w.nats.partition(victim);
  await w.ports.time.advance(10_000);
  const after = await table(w);
  for (const r of after.filter((x) => pids.includes(x.pid))) {
    if (r.node === victim) t.is(r.status?.kind, 'lost', r.pid);
    else t.is(r.state, 'running', r.pid);
  }
  const fresh = await w.during(w.client.spawn({ program: 'noop' }), 2_000);
  await w.ports.time.advance(2_000);
  const rec = (await table(w)).find((r) => r.pid === fresh)!;
  t.is(rec.status?.kind, 'ok');
  t.not(rec.node, victim);
});

test('sim - every `created` note lost: nodes read their records back and every exit is still recorded, once', async (t) => {
  const w = await started(11);
  let dropped = 0;
  // The fast path sends a run order before its record is durable, then a note with the revision;
  // without the notes a node must find the record itself before it writes the exit.
  w.nats.network.hook = (e) => (e.subject?.endsWith('.note') === true ? (dropped++, { drop: true }) : undefined);
  const accepted = await w.during(Promise.all(Array.from({ length: 60 }, () => w.client.spawn({ program: 'noop' }, { timeoutMs: 5_000 }))), 10_000);
  await w.ports.time.advance(5_000);
  const records = (await table(w)).filter((r) => accepted.includes(r.pid));
  t.is(records.length, 60);
  t.true(records.every((r) => r.state === 'exited' && r.status?.kind === 'ok'), JSON.stringify(records.filter((r) => r.state !== 'exited').slice(0, 3)));
  t.true(dropped > 0, 'notes were sent over NATS and dropped');
  t.true(new Set(records.map((r) => r.node)).size > 1, 'procs ran on nodes other than the leader');
  for (const node of w.nodes.values()) if (node.running !== undefined) await w.during(node.running.stop(), 5_000);
});

// A fast-path order whose record never appears (the create failed, or lost to another scheduler's create
// of the key) and whose `cancel` note was lost: the node must not start it (the spawn did not happen, and
// may happen elsewhere), reads the record back, and drops the order after AWAIT_CREATE_READS_MAX reads.
test('sim - a proc whose record never appears is never started; its node drops the order once it gives up waiting, and nothing is recorded for it', async (t) => {
  const exits = new Map<string, Status>();
  const runs: string[] = [];
  const observer = { hostUp() {}, hostDown() {}, procRun: (_n: string, _h: unknown, pid: string) => void runs.push(pid), procExit: (_n: string, _h: unknown, pid: string, s: Status) => void exits.set(pid, s) };
  const w = await simWorld(5, { observer });
  await w.ports.time.advance(3_000);
  await w.during(w.client.createRealm('default'), 1_000);
  const spec = parseSpec({ program: 'sleep', args: [600_000] });
  if (spec._tag === 'Left') return t.fail(spec.left.message);
  const pid = 'default.zz-orphan'; // no scheduler ever creates this record
  const record: ProcRecord = { pid, spec: spec.right, state: 'starting', node: 'node-2', restarts: 0, term: 99, createdAtMs: 0 };
  const bus = w.nodes.get('node-2')!.bus!;
  await w.during(bus.request(NODE.subject('node-2'), encode({ op: 'run', order: { pid, spec: spec.right, modulePath: SIM_PROGRAMS.sleep!, record, pendingCreate: true } }), { timeoutMs: 2_000 }), 3_000);
  await w.ports.time.advance(1_000);
  t.deepEqual(runs, [], 'the node holds it until its record exists');
  await w.ports.time.advance(60_000); // past AWAIT_CREATE_READS_MAX reads
  t.deepEqual(runs, [], 'never started');
  t.false(exits.has(pid));
  t.false((await table(w)).some((r) => r.pid === pid), 'nothing was written for a spawn that failed');
});

// A realm removal whose eviction overtakes the proc's run order (the node does not have the proc yet
// and answers unknown-proc): the scheduler sends the eviction again once the node has taken the
// order, so the proc ends and the removal completes rather than wait on it forever.
test('sim - an eviction that overtakes its run order goes again once the node has the proc; the realm removal completes', async (t) => {
  const w = await simWorld(3);
  await w.ports.time.advance(3_000);
  await w.during(w.client.createRealm('tenant'), 1_000);
  await w.during(w.client.createRealm('default'), 1_000);
  // A filler takes the leader's node (whose orders skip NATS), so the proc under test goes over NATS.
  await w.during(w.client.spawn({ program: 'sleep', args: [600_000], lc: true, mcpu: 2_000 }), 1_000);
  for (const id of w.nodes.keys()) w.nats.setFaults(id, { reorder: true }); // lets the eviction overtake
  let delayed: string | undefined; // the first run order to a node over NATS is held back 1.5 s
  w.nats.network.hook = (e) => {
    if (delayed !== undefined || e.direction !== 'down' || e.kind !== 'core' || e.subject === undefined || !/^sigma\.node\.[^.]+$/.test(e.subject)) return undefined;
    delayed = e.subject;
    return { delayMs: 1_500 };
  };
  const pid = await w.during(w.client.spawn({ program: 'sleep', args: [600_000], realm: 'tenant', lc: true, mcpu: 2_000 }, { timeoutMs: 1_000 }), 1_000);
  t.not(delayed, undefined, 'the run order went over NATS and was held back');
  await w.during(w.client.removeRealm('tenant', { timeoutMs: 10_000 }), 10_000);
  const rec = (await table(w)).find((r) => r.pid === pid);
  // Whether it started first depends on its record's `created` note against the eviction: either way it ends.
  t.is(rec?.state, 'exited');
  t.is(rec?.status?.kind, 'evicted');
});

// Exit events are core NATS (at most once): a scheduler that missed them would count the procs live,
// and their room taken, until a failover (message-chaos seed 995). Nodes send them again each heartbeat
// until a scheduler acknowledges one.
test('sim - exit events lost in flight are sent again until acknowledged, and the room they held is used again', async (t) => {
  const w = await started(11);
  let dropped = 0;
  w.nats.network.hook = (e) => (e.subject === 'sigma.sched.event' ? (dropped++, { drop: true }) : undefined);
  const fill = { program: 'sleep', args: [100], lc: true, mcpu: 2_000 };
  const first = await w.during(Promise.all([1, 2, 3].map(() => w.client.spawn(fill, { timeoutMs: 2_000 }))), 3_000);
  await w.ports.time.advance(2_000); // they have run and exited; every exit event so far was dropped
  t.true(dropped >= 3, `exit events were dropped (${dropped})`);
  w.nats.network.hook = undefined;
  const next = await w.during(w.client.spawn(fill, { timeoutMs: 2_000 }), 3_000);
  await w.ports.time.advance(5_000);
  const records = await table(w);
  for (const pid of first) t.is(records.find((r) => r.pid === pid)?.state, 'exited');
  t.is(records.find((r) => r.pid === next)?.state, 'exited', 'placed once the scheduler learned the room was free');
});

// A successor's recovery resends the order of every `starting` record; a node that already ran and
// ended that proc (its exit not yet in the table) must not run it again (the chaos pause scenario).
test('sim - a repeated run order for a proc that already ended on the node is not run again', async (t) => {
  const runs: string[] = [];
  const observer = { hostUp() {}, hostDown() {}, procRun: (_n: string, _h: unknown, pid: string) => void runs.push(pid), procExit() {} };
  const w = await simWorld(12, { observer });
  await w.ports.time.advance(3_000);
  await w.during(w.client.createRealm('default'), 1_000);
  const pid = await w.during(w.client.spawn({ program: 'sleep', args: [10] }, { timeoutMs: 2_000 }), 3_000);
  await w.ports.time.advance(2_000);
  const rec = (await table(w)).find((r) => r.pid === pid);
  if (rec?.node === undefined) return t.fail(`no record of ${pid} with its node`);
  t.is(rec.state, 'exited');
  const bus = w.nodes.get(rec.node)!.bus!;
  const order = { pid, spec: rec.spec, modulePath: SIM_PROGRAMS.sleep!, record: { ...rec, state: 'starting' } };
  await w.during(bus.request(NODE.subject(rec.node), encode({ op: 'run', order }), { timeoutMs: 2_000 }), 3_000);
  await w.ports.time.advance(2_000);
  t.deepEqual(runs.filter((p) => p === pid), [pid], 'it ran once');
});

// A realm's removal lists the names bucket and deletes its record; after a healed partition JetStream
// found no responders for longer than a listing's own retries (chaos partition seed 1), and the failed
// removal had already dropped the realm from the scheduler: asked again, it was "unknown", its record
// left in the bucket. Each step is now tried again, and a removal that fails for good leaves the realm
// there to be removed again.
// Serial: it patches the simulated KV's prototype, which the concurrent tests' worlds share.
test.serial('sim - a realm removal rides out a names bucket without responders; one that fails for good can be asked again', async (t) => {
  const w = await started(5);
  const kv = await w.during(w.nats.connect('probe').kv(BUCKET.names), 1_000);
  const proto = Object.getPrototypeOf(kv) as { keys: (this: { bucket: string }, filter?: string) => Promise<string[]> };
  const keys = proto.keys;
  let failures = 0;
  let failing = 3;
  proto.keys = function (filter) {
    if (this.bucket !== BUCKET.names || failing <= 0) return keys.call(this, filter);
    failing--;
    failures++;
    return Promise.reject(new NoRespondersError(`KV keys ${BUCKET.names}/>`));
  };
  try {
    await w.during(w.client.createRealm('brief'), 1_000);
    await w.during(w.client.removeRealm('brief', { timeoutMs: 20_000 }), 20_000);
    t.is(failures, 3, 'the listing failed three times before it worked');
    t.false((await w.during(w.client.realms(), 1_000)).includes('brief'), 'removed: its record is gone');

    await w.during(w.client.createRealm('stuck'), 1_000);
    failing = Infinity;
    const e = await t.throwsAsync(w.during(w.client.removeRealm('stuck', { timeoutMs: 60_000 }), 60_000));
    t.regex(e!.message, /not removed/);
    failing = 0;
    await w.during(w.client.removeRealm('stuck', { timeoutMs: 20_000 }), 20_000);
    t.false((await w.during(w.client.realms(), 1_000)).includes('stuck'), 'asked again, the removal went through');
  } finally {
    proto.keys = keys;
  }
});

// A realm create whose write failed without a refusal (a timeout whose write landed, no stream leader)
// was answered 'realm-exists' as a refused one is: the client took a realm that was made for one that
// was not, or was told to give up on one it could make. Serial: it patches the simulated KV's prototype.
test.serial('sim - a realm create whose answer was lost is made; one whose write failed says so and can be asked again', async (t) => {
  const w = await started(5);
  const kv = await w.during(w.nats.connect('probe').kv(BUCKET.realms), 1_000);
  const proto = Object.getPrototypeOf(kv) as { create: (this: { bucket: string }, key: string, value: Uint8Array) => Promise<number> };
  const create = proto.create;
  proto.create = async function (key, value) {
    if (this.bucket !== BUCKET.realms) return create.call(this, key, value);
    if (key === 'landed') await create.call(this, key, value); // written, its answer lost
    throw new TimeoutError(`KV create ${BUCKET.realms}/${key}`, 5_000);
  };
  try {
    await w.during(w.client.createRealm('landed'), 2_000);
    t.true((await w.during(w.client.realms(), 1_000)).includes('landed'));
    const e = await t.throwsAsync(w.during(w.client.createRealm('lost'), 2_000));
    t.is((e as { type?: string }).type, 'internal', e!.message);
    t.regex(e!.message, /not recorded/);
  } finally {
    proto.create = create;
  }
  await w.during(w.client.createRealm('lost'), 2_000);
  const again = await t.throwsAsync(w.during(w.client.createRealm('lost'), 2_000));
  t.is((again as { type?: string }).type, 'realm-exists', 'a refused create still means the realm exists');
  const pid = await w.during(w.client.spawn({ program: 'sleep', args: [10], realm: 'landed' }, { timeoutMs: 2_000 }), 2_000);
  t.true(pid.startsWith('landed.'), 'the realm whose answer was lost takes spawns');
});

// Around a leader change two schedulers may order one keyed pid to the same node: the first one's create
// failed (the second's won, naming this node), and the first then cancels. The node runs the proc under the
// durable record it read back, so that cancel is not its to obey; obeying it, the proc ran once and nobody
// wrote its exit: the record stayed 'starting' (the chaos partition scenario, seed 1).
test("sim - a cancel from a scheduler whose create lost does not stop a proc that runs under another's record; its exit is written", async (t) => {
  const runs: string[] = [];
  const observer = { hostUp() {}, hostDown() {}, procRun: (_n: string, _h: unknown, pid: string) => void runs.push(pid), procExit() {} };
  const w = await simWorld(5, { observer });
  await w.ports.time.advance(3_000);
  await w.during(w.client.createRealm('default'), 1_000);
  const spec = parseSpec({ program: 'sleep', args: [3_000] });
  if (spec._tag === 'Left') return t.fail(spec.left.message);
  const pid = 'default.k_two-terms';
  const record = (term: number): ProcRecord => ({ pid, spec: spec.right, state: 'starting', node: 'node-2', restarts: 0, term, createdAtMs: 0 });
  const bus = w.nodes.get('node-2')!.bus!;
  // The winning scheduler's record (term 2), as its create left it; the losing one's order (term 1).
  const live = await w.during(bus.kv(BUCKET.live), 1_000);
  await w.during(live.put(pid, new Uint8Array(0)), 1_000);
  await w.during(w.during(bus.kv(BUCKET.procs), 1_000).then((kv) => kv.create(pid, encode(record(2)))), 1_000);
  await w.during(bus.request(NODE.subject('node-2'), encode({ op: 'run', order: { pid, spec: spec.right, modulePath: SIM_PROGRAMS.sleep!, record: record(1), pendingCreate: true } }), { timeoutMs: 2_000 }), 3_000);
  await w.ports.time.advance(2_000); // the node reads the record back: it names node-2, so the proc starts
  t.deepEqual(runs, [pid]);
  bus.publish(NODE_NOTE.subject('node-2'), encode({ op: 'cancel', pid, term: 1 }));
  await w.ports.time.advance(10_000);
  const rec = (await table(w)).find((r) => r.pid === pid);
  t.is(rec?.state, 'exited', JSON.stringify(rec));
  t.is(rec?.status?.kind, 'ok', 'it ran to its end: the cancel was the losing scheduler\'s');
  t.deepEqual(runs, [pid], 'once');
});

// A create whose answer was lost can land after its spawn was refused and its cleanup found no record;
// nobody knows that proc. A realm's removal ends what its live index still holds (the chaos partition
// scenario, seed 2: a removed realm's record left 'starting').
test('sim - a realm removal ends records of the realm that no scheduler knows of', async (t) => {
  const w = await started(7);
  await w.during(w.client.createRealm('gone'), 1_000);
  const spec = parseSpec({ program: 'sleep', args: [600_000], realm: 'gone' });
  if (spec._tag === 'Left') return t.fail(spec.left.message);
  const pid = 'gone.k_landed-late';
  const bus = w.nats.connect('late-create');
  const live = await w.during(bus.kv(BUCKET.live), 1_000);
  await w.during(live.put(pid, new Uint8Array(0)), 1_000);
  const procs = await w.during(bus.kv(BUCKET.procs), 1_000);
  await w.during(procs.create(pid, encode({ pid, spec: spec.right, state: 'starting', node: 'node-2', restarts: 0, term: 1, createdAtMs: 0 } satisfies ProcRecord)), 1_000);
  await w.during(w.client.removeRealm('gone', { timeoutMs: 10_000 }), 10_000);
  const rec = (await table(w)).find((r) => r.pid === pid);
  t.is(rec?.state, 'exited', JSON.stringify(rec));
  t.is(rec?.status?.kind, 'evicted');
  t.deepEqual(await w.during(live.keys('gone.>'), 1_000), [], 'out of the live index');
});
