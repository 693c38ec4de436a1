import test from 'ava';
import { ControlError } from '../src/control/errors.js';
import { call, SPAWN } from '../src/control/protocol/index.js';
import type { CounterMsg } from '../src/examples/counter.js';
import { testCluster, untilScheduler, waitFor, type TestCluster } from './helpers/cluster.js';

let tc: TestCluster;

test.before(async () => {
  tc = await testCluster({ nodes: 3, node: { mcpu: 2000, memMb: 4096, beSlots: 4 } }, ['default', 'blue', 'green']);
});
test.after.always(async () => tc?.stop());

test.serial('control - a function proc runs and its status carries the result', async (t) => {
  const pid = await untilScheduler(() => tc.client.spawn({ program: 'hello', args: ['sigma'] }));
  const status = await tc.client.waitExit(pid, { timeoutMs: 20_000 });
  t.deepEqual(status, { kind: 'ok', message: 'ok', data: 'hello sigma' });
  const rec = await tc.client.proc(pid);
  t.is(rec?.state, 'exited');
  t.truthy(rec?.node);
});

test.serial('control - a repeated idempotency key gets the first pid, in flight or after the exit, and runs once; a malformed key is refused', async (t) => {
  const [a, b] = await Promise.all([tc.client.spawn({ program: 'hello', args: ['once'] }, { key: 'job-42' }), tc.client.spawn({ program: 'hello', args: ['twice?'] }, { key: 'job-42' })]);
  t.is(a, b);
  t.regex(a, /^default\.k_job-42$/);
  t.is((await tc.client.waitExit(a, { timeoutMs: 20_000 })).data, 'hello once', 'the first spawn ran, the repeat did not');
  t.is(await tc.client.spawn({ program: 'hello', args: ['later'] }, { key: 'job-42' }), a);
  t.deepEqual((await tc.client.ps({ all: true })).filter((r) => r.pid === a).map((r) => r.spec.args), [['once']]);
  t.not(await tc.client.spawn({ program: 'hello' }, { key: 'job-42-other' }), a, 'another key, another proc');
  const e = await t.throwsAsync(tc.client.spawn({ program: 'hello' }, { key: 'no spaces!' }), { instanceOf: ControlError });
  t.is(e?.type, 'bad-spec');
  t.regex(e?.message ?? '', /idempotencyKey must match/);
});

test.serial("control - a spawn that reaches the scheduler too late for its caller's deadline makes nothing; its key stays free", async (t) => {
  // 500 ms left is inside the scheduler's margin (SPAWN_EXPIRY_MARGIN_MS): the caller stops waiting before a record could be made.
  const e = await t.throwsAsync(tc.client.spawn({ program: 'hello', args: ['late'] }, { key: 'late-1', timeoutMs: 500 }), { instanceOf: ControlError });
  t.regex(e?.message ?? '', /too late .* nothing was made/);
  t.is(await tc.client.proc('default.k_late-1'), undefined, 'no record');
  const pid = await tc.client.spawn({ program: 'hello', args: ['in time'] }, { key: 'late-1' });
  t.is((await tc.client.waitExit(pid, { timeoutMs: 20_000 })).data, 'hello in time');
  const bad = await call(tc.bus, SPAWN.subject, SPAWN.reply, { program: 'hello', timeLeftMs: 'soon' }, 5_000);
  t.like(bad, { ok: false, error: { type: 'bad-spec', field: 'timeLeftMs' } });
});

test.serial('control - an LC function and a failing one', async (t) => {
  const ok = await tc.client.spawn({ program: 'hello', args: ['lc'], lc: true, mcpu: 500 });
  const bad = await tc.client.spawn({ program: 'fail', args: ['boom'] });
  t.is((await tc.client.waitExit(ok, { timeoutMs: 20_000 })).kind, 'ok');
  const s = await tc.client.waitExit(bad, { timeoutMs: 20_000 });
  t.is(s.kind, 'error');
  t.regex(s.message, /boom/);
});

test.serial('control - bad specs get typed errors, never a hanging waiter', async (t) => {
  const cases: Array<[Parameters<typeof tc.client.spawn>[0], ControlError['type']]> = [
    [{ program: 'no-such-program' }, 'unknown-program'],
    [{ program: 'hello', realm: 'nowhere' }, 'unknown-realm'],
    [{ program: 'hello', mcpu: -1 }, 'bad-spec'],
    [{ program: 'hello', lc: true, mcpu: 0 }, 'bad-spec'],
    [{ program: 'hello', lc: true, mcpu: 64_000 }, 'never-fits'],
  ];
  for (const [spec, type] of cases) {
    const e = await t.throwsAsync(tc.client.spawn(spec), { instanceOf: ControlError });
    t.is(e?.type, type, JSON.stringify(spec));
  }
});

test.serial('control - a service registers its name, answers asks from another process, and is evicted', async (t) => {
  const pid = await tc.client.spawn({ program: 'counter', name: 'counter', realm: 'blue' });
  const rec = await tc.client.waitStart(pid, { timeoutMs: 20_000 });
  t.is(rec.state, 'running');
  const names = await waitFor(() => tc.client.names('blue'), (ns) => ns.some((n) => n.name === 'counter'));
  const counter = tc.system('blue').refFor<CounterMsg>(names.find((n) => n.name === 'counter')!.actorPath);
  counter.tell({ type: 'add', n: 40 });
  counter.tell({ type: 'add', n: 2 });
  t.is(await counter.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000), 42);
  await tc.client.evict(pid);
  t.is((await tc.client.waitExit(pid, { timeoutMs: 20_000 })).kind, 'evicted');
  await waitFor(() => tc.client.names('blue'), (ns) => !ns.some((n) => n.name === 'counter'));
});

test.serial('control - a proc that ignores eviction is forced out after the grace period', async (t) => {
  const pid = await tc.client.spawn({ program: 'sleep', args: [60_000], dedicated: true });
  await tc.client.waitStart(pid, { timeoutMs: 20_000 });
  await tc.client.evict(pid, { graceMs: 200 });
  t.is((await tc.client.waitExit(pid, { timeoutMs: 20_000 })).kind, 'evicted');
});

test.serial('control - LC placement never over-commits a node; waiting procs start when room frees', async (t) => {
  // 3 nodes × 2000 mcpu: six 1000-mcpu procs fit, the next two wait.
  const pids: string[] = [];
  for (let i = 0; i < 8; i++) pids.push(await tc.client.spawn({ program: 'sleep', lc: true, mcpu: 1000 }));
  const mine = async () => (await tc.client.ps()).filter((r) => pids.includes(r.pid));
  const running = await waitFor(mine, (rs) => rs.filter((r) => r.state === 'running').length === 6);
  const perNode = new Map<string, number>();
  for (const r of running.filter((x) => x.state === 'running')) perNode.set(r.node!, (perNode.get(r.node!) ?? 0) + r.spec.mcpu);
  t.true([...perNode.values()].every((m) => m <= 2000), JSON.stringify([...perNode]));
  t.is(running.filter((r) => r.state === 'queued').length, 2);
  const victim = running.find((r) => r.state === 'running')!.pid;
  await tc.client.evict(victim);
  await waitFor(mine, (rs) => rs.filter((r) => r.state === 'running').length === 6 && rs.filter((r) => r.state === 'queued').length === 1);
  for (const p of pids) await tc.client.evict(p).catch(() => {});
  for (const p of pids) t.not((await tc.client.waitExit(p, { timeoutMs: 20_000 })).kind, 'ok');
});

test.serial('control - BE procs of two realms share the capacity round-robin', async (t) => {
  // 3 nodes × 4 BE slots = 12 at once. Green floods first (24 procs that run until evicted), blue
  // queues behind it. Freeing one slot at a time, round-robin alternates realms; FIFO would hand
  // all twelve queued green procs their slots before blue's first.
  const green: string[] = [];
  for (let i = 0; i < 24; i++) green.push(await tc.client.spawn({ program: 'sleep', realm: 'green' }));
  const running = async (pids: string[]) => (await Promise.all(pids.map((p) => tc.client.proc(p)))).filter((r) => r?.state === 'running').map((r) => r!.pid);
  await waitFor(() => running(green), (r) => r.length === 12);
  const blue: string[] = [];
  for (let i = 0; i < 6; i++) blue.push(await tc.client.spawn({ program: 'sleep', realm: 'blue' }));
  for (let i = 0; i < 6; i++) {
    const [victim] = await running(green);
    await tc.client.evict(victim!);
    await tc.client.waitExit(victim!, { timeoutMs: 20_000 });
    await waitFor(async () => (await running(green)).length + (await running(blue)).length, (n) => n === 12);
  }
  const blueRunning = (await running(blue)).length;
  t.true(blueRunning >= 2, `only ${blueRunning} of 6 freed slots went to blue`);
  t.true(blueRunning <= 4, `${blueRunning} of 6 freed slots went to blue: green was starved`);
  for (const p of [...green, ...blue]) await tc.client.evict(p).catch(() => {});
  for (const p of [...green, ...blue]) t.not((await tc.client.waitExit(p, { timeoutMs: 20_000 })).kind, 'ok');
});

test.serial('control - removing a realm evicts its procs and frees its names', async (t) => {
  await tc.client.createRealm('doomed');
  const svc = await tc.client.spawn({ program: 'counter', name: 'svc', realm: 'doomed' });
  const fn = await tc.client.spawn({ program: 'sleep', realm: 'doomed' });
  await tc.client.waitStart(svc, { timeoutMs: 20_000 });
  await tc.client.waitStart(fn, { timeoutMs: 20_000 });
  await tc.client.removeRealm('doomed');
  t.is((await tc.client.waitExit(svc)).kind, 'evicted');
  t.is((await tc.client.waitExit(fn)).kind, 'evicted');
  t.deepEqual(await tc.client.names('doomed'), []);
  t.false((await tc.client.realms()).includes('doomed'));
  const e = await t.throwsAsync(tc.client.spawn({ program: 'hello', realm: 'doomed' }), { instanceOf: ControlError });
  t.is(e?.type, 'unknown-realm');
});

test.serial("control - a parent's exit evicts only the children that asked for it", async (t) => {
  const parent = await tc.client.spawn({ program: 'sleep' });
  const tied = await tc.client.spawn({ program: 'sleep', parent, evictWithParent: true });
  const free = await tc.client.spawn({ program: 'sleep', parent });
  await Promise.all([parent, tied, free].map((p) => tc.client.waitStart(p, { timeoutMs: 20_000 })));
  await tc.client.evict(parent);
  t.is((await tc.client.waitExit(parent, { timeoutMs: 20_000 })).kind, 'evicted');
  t.is((await tc.client.waitExit(tied, { timeoutMs: 20_000 })).kind, 'evicted');
  t.is((await tc.client.proc(free))?.state, 'running');
  await tc.client.evict(free);
  await tc.client.waitExit(free, { timeoutMs: 20_000 });
});

test.serial('control - a failing service is respawned at most maxRestarts times within its window', async (t) => {
  const first = await tc.client.spawn({ program: 'fail', args: ['again'], restart: 'on-failure', maxRestarts: 2, restartWithinMs: 600_000, realm: 'green' });
  const incarnations = await waitFor(
    async () => (await tc.client.ps({ realm: 'green', all: true })).filter((r) => r.spec.program === 'fail' && r.createdAtMs >= 0),
    (rs) => rs.length >= 3 && rs.every((r) => r.state === 'exited'),
  );
  t.true(incarnations.some((r) => r.pid === first));
  t.deepEqual(incarnations.map((r) => r.restarts).sort(), [0, 1, 2]);
  t.true(incarnations.every((r) => r.status?.kind === 'error'));
  // A sync point: a spawn handled after the last exit; no fourth incarnation by then.
  await tc.client.waitExit(await tc.client.spawn({ program: 'hello', realm: 'green' }), { timeoutMs: 20_000 });
  t.is((await tc.client.ps({ realm: 'green', all: true })).filter((r) => r.spec.program === 'fail').length, 3);
});

