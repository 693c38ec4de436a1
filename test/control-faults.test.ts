import test from 'ava';
import { BUCKET, decodeJson, type LeaseRecord, type ProcRecord } from '../src/control/protocol/index.js';
import type { CounterMsg } from '../src/examples/counter.js';
import { testCluster, untilScheduler, type TestCluster } from './helpers/cluster.js';

async function leader(tc: TestCluster): Promise<LeaseRecord | undefined> {
  const e = await (await tc.bus.kv(BUCKET.leader)).get('scheduler');
  return e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord);
}

async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${JSON.stringify(v).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('faults - kill -9 a node: its procs end lost, a restartable service serves again from another node', async (t) => {
  const tc = await testCluster({ nodes: 3 });
  try {
    const svc = await untilScheduler(() => tc.client.spawn({ program: 'counter', name: 'ctr', restart: 'always' }));
    const first = await tc.client.waitStart(svc, { timeoutMs: 20_000 });
    const sleepers = [];
    for (let i = 0; i < 6; i++) sleepers.push(await tc.client.spawn({ program: 'sleep' }));
    await Promise.all(sleepers.map((p) => tc.client.waitStart(p, { timeoutMs: 20_000 })));
    const doomed = first.node!;
    const onDoomed = (await tc.client.ps()).filter((r) => r.node === doomed).map((r) => r.pid);
    tc.cluster.nodes.get(doomed)!.kill('SIGKILL');

    for (const pid of onDoomed) {
      const s = await tc.client.waitExit(pid, { timeoutMs: 30_000 });
      t.is(s.kind, 'lost', `${pid} on the killed node`);
    }
    const successor = await until(
      () => tc.client.ps(),
      (rs) => rs.some((r) => r.spec.name === 'ctr' && r.pid !== svc && r.state === 'running'),
    );
    const next = successor.find((r) => r.spec.name === 'ctr' && r.state === 'running')!;
    t.not(next.node, doomed);
    t.is(next.restarts, 1);
    // One live incarnation of the service at a time.
    t.is(successor.filter((r: ProcRecord) => r.spec.name === 'ctr' && r.state !== 'exited').length, 1);
    const names = await until(() => tc.client.names(), (ns) => ns.some((n) => n.name === 'ctr' && n.pid === next.pid));
    const ref = tc.system().refFor<CounterMsg>(names.find((n) => n.name === 'ctr')!.actorPath);
    ref.tell({ type: 'add', n: 7 });
    t.is(await ref.ask<number>((replyTo) => ({ type: 'get', replyTo }), 5_000), 7);
    // Procs on surviving nodes were not disturbed.
    for (const pid of sleepers.filter((p) => !onDoomed.includes(p))) t.is((await tc.client.proc(pid))?.state, 'running');
  } finally {
    await tc.stop();
  }
});

test('faults - kill the scheduler leader during a spawn storm: no spawn fails, none is lost or runs twice, and a key repeated after the failover gets its first pid', async (t) => {
  const tc = await testCluster({ nodes: 3 });
  try {
    await untilScheduler(() => tc.client.spawn({ program: 'noop' }));
    const before = (await leader(tc))!;
    const early = await tc.client.spawn({ program: 'hello', args: ['early'] }, { key: 'early-bird' });
    await tc.client.waitExit(early, { timeoutMs: 20_000 });
    const accepted: string[] = [];
    // Two spawns in flight at any time, each with the client's own retries across the leader change.
    const storm = Promise.all(
      [0, 1].map(async (lane) => {
        for (let i = 0; i < 150; i++) accepted.push(await tc.client.spawn({ program: 'noop', args: [lane, i] }));
      }),
    );
    await until(async () => accepted.length, (n) => n >= 50);
    tc.cluster.nodes.get(before.holder)!.kill('SIGKILL');
    await storm; // a spawn that failed would throw here
    const after = await until(() => leader(tc), (l) => l !== undefined && l.holder !== before.holder && l.holder !== '' && l.term > 0);
    t.true(after!.term > before.term);
    t.is(accepted.length, 300);
    t.is(new Set(accepted).size, 300, 'every spawn has a pid of its own');
    const statuses = await Promise.all(accepted.map((p) => tc.client.waitExit(p, { timeoutMs: 60_000 })));
    t.true(statuses.every((s) => s.kind === 'ok' || s.kind === 'lost'), JSON.stringify(statuses.filter((s) => s.kind !== 'ok' && s.kind !== 'lost')));
    t.true(statuses.filter((s) => s.kind === 'ok').length > accepted.length / 2);
    // The successor never saw 'early-bird' (it exited before the failover): the proc table tells it.
    t.is(await tc.client.spawn({ program: 'hello', args: ['again'] }, { key: 'early-bird' }), early);
    t.is((await tc.client.waitExit(early, { timeoutMs: 5_000 })).data, 'hello early', 'and it did not run again');
  } finally {
    await tc.stop();
  }
});

test('faults - a node that runs no procs gets none, not even the restarts of a dead worker\'s services; it still holds the lease when it wins it', async (t) => {
  const tc = await testCluster({ nodes: [{ id: 'ctl', procs: false }, { id: 'wrk' }] });
  try {
    const svc = await untilScheduler(() => tc.client.spawn({ program: 'counter', name: 'ctr', restart: 'always' }));
    const sleepers = await Promise.all(Array.from({ length: 4 }, () => tc.client.spawn({ program: 'sleep' })));
    for (const pid of [svc, ...sleepers]) t.is((await tc.client.waitStart(pid, { timeoutMs: 20_000 })).node, 'wrk', pid);
    const rec = await (await tc.bus.kv(BUCKET.nodes)).get('ctl');
    t.is((decodeJson(rec!.value) as { procs?: boolean }).procs, false, "its heartbeat record says so");
    t.true(['ctl', 'wrk'].includes((await until(() => leader(tc), (l) => l !== undefined))!.holder));

    tc.cluster.nodes.get('wrk')!.kill('SIGKILL');
    t.is((await tc.client.waitExit(svc, { timeoutMs: 30_000 })).kind, 'lost');
    // Its restart waits for room (the scheduler is whichever node is left: ctl), on no node.
    const next = await until(() => tc.client.ps(), (rs) => rs.some((r) => r.spec.name === 'ctr' && r.pid !== svc));
    await new Promise((r) => setTimeout(r, 2_000));
    const waiting = (await tc.client.ps()).find((r) => r.pid === next.find((x) => x.spec.name === 'ctr' && x.pid !== svc)!.pid)!;
    t.is(waiting.state, 'queued');
    t.is(waiting.node, undefined);
  } finally {
    await tc.stop();
  }
});
