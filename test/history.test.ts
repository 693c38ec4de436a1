import test from 'ava';
import { encode, BUCKET, type LeaseRecord, decodeJson, type ProcRecord } from '../src/control/protocol/index.js';
import { INDEX_COMPLETE, ProcTable } from '../src/control/proc-table.js';
import { sweep } from '../src/control/retention.js';
import { connectBus } from '../src/nats/real.js';
import { startNatsServer } from '../src/nats/server.js';
import { testCluster, untilScheduler, waitFor, type TestCluster } from './helpers/cluster.js';

// The proc table's history does not weigh on a failover: the scheduler rebuilds from an index of the
// live procs (BUCKET.live), and `ps --all` pages.

const leaderNode = async (tc: TestCluster): Promise<string | undefined> => {
  const e = await (await tc.bus.kv(BUCKET.leader)).get('scheduler');
  return e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord).holder;
};

test('history - the live index holds exactly the procs not yet exited; a new scheduler reads it, not the table', async (t) => {
  const tc = await testCluster({ nodes: 2 });
  try {
    const done = await Promise.all(Array.from({ length: 12 }, (_, i) => untilScheduler(() => tc.client.spawn({ program: 'hello', args: [i] }))));
    for (const pid of done) await tc.client.waitExit(pid, { timeoutMs: 20_000 });
    const services = await Promise.all([0, 1, 2].map(() => tc.client.spawn({ program: 'counter' })));
    for (const pid of services) await tc.client.waitStart(pid, { timeoutMs: 20_000 });
    const live = await tc.bus.kv(BUCKET.live);
    const indexed = async (): Promise<string[]> => (await live.keys()).filter((k) => k !== INDEX_COMPLETE).sort();
    t.deepEqual(await waitFor(indexed, (ks) => ks.length === 3), [...services].sort(), 'exits leave the index, live procs are in it');
    // History a scheduler must not read: a record outside the index that claims to run on a node that
    // does not exist. Reading the whole table, a new scheduler would end it lost.
    const ghost: ProcRecord = { pid: 'default.history-only', spec: { program: 'hello', args: [], realm: 'default', lc: false, mcpu: 0, memMb: 64, dedicated: false, restart: 'never', maxRestarts: 0, restartWithinMs: 0, evictWithParent: false }, state: 'running', node: 'node-gone', restarts: 0, term: 1, createdAtMs: 0 };
    await (await tc.bus.kv(BUCKET.procs)).create(ghost.pid, encode(ghost));
    const before = (await leaderNode(tc))!;
    tc.cluster.nodes.get(before)!.kill('SIGKILL');
    await waitFor(() => leaderNode(tc), (l) => l !== undefined && l !== '' && l !== before, 30_000);
    const after = await untilScheduler(() => tc.client.spawn({ program: 'hello', args: ['after'] }));
    t.is((await tc.client.waitExit(after, { timeoutMs: 20_000 })).kind, 'ok', 'the successor serves');
    // Its recovery took the services from the index (those on the killed node end lost) ...
    const onKilled = (await Promise.all(services.map((p) => tc.client.proc(p)))).filter((r) => r?.node === before).map((r) => r!.pid);
    const ended = await waitFor(() => Promise.all(onKilled.map((p) => tc.client.proc(p))), (rs) => rs.every((r) => r?.state === 'exited'), 30_000);
    t.true(ended.every((r) => r?.status?.kind === 'lost'));
    // ... and never looked at the record outside it.
    t.is((await tc.client.proc(ghost.pid))?.state, 'running');
  } finally {
    await tc.stop();
  }
});

test('history - the whole table pages in pid order: every record once, a cursor to the next page', async (t) => {
  const tc = await testCluster({ nodes: 1 });
  try {
    const pids = await Promise.all(Array.from({ length: 7 }, (_, i) => untilScheduler(() => tc.client.spawn({ program: 'hello', args: [i] }))));
    for (const pid of pids) await tc.client.waitExit(pid, { timeoutMs: 20_000 });
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await tc.client.psAll({ limit: 3, ...(after === undefined ? {} : { after }) });
      t.true(page.records.length <= 3);
      seen.push(...page.records.map((r) => r.pid));
      after = page.next;
      pages++;
    } while (after !== undefined && pages < 10);
    t.deepEqual(seen, [...seen].sort(), 'in pid order');
    t.is(new Set(seen).size, seen.length, 'each once');
    t.true(pids.every((p) => seen.includes(p)), 'all of them');
    t.is(pages, Math.ceil(seen.length / 3));
  } finally {
    await tc.stop();
  }
});

test('history - retention: per realm the newest maxPerRealm exited records stay, none older than maxAgeMs; live procs always stay', async (t) => {
  const server = await startNatsServer();
  const bus = await connectBus({ servers: [server.url], name: 'retention' });
  try {
    const table = new ProcTable(await bus.kv('retention_procs'), await bus.kv('retention_live'));
    const rec = (realm: string, n: number, state: 'exited' | 'running'): ProcRecord => ({
      pid: `${realm}.p${n}`,
      spec: { program: 'hello', args: [], realm, lc: false, mcpu: 0, memMb: 64, dedicated: false, restart: 'never', maxRestarts: 0, restartWithinMs: 0, evictWithParent: false },
      state,
      restarts: 0,
      term: 1,
      createdAtMs: n,
      ...(state === 'exited' ? { status: { kind: 'ok' as const, message: 'ok' } } : {}),
    });
    for (const n of [1, 2, 3, 4, 5]) await table.create(rec('a', n, 'running')).then(() => table.exit(`a.p${n}`, { kind: 'ok', message: 'ok' }));
    await table.create(rec('a', 0, 'running')); // live, and the oldest of all
    for (const n of [100, 200]) await table.create(rec('b', n, 'running')).then(() => table.exit(`b.p${n}`, { kind: 'ok', message: 'ok' }));
    const keys = async (): Promise<string[]> => (await table.kv.keys()).sort();
    await waitFor(async () => (await table.live!.keys()).filter((k) => k !== INDEX_COMPLETE), (ks) => ks.length === 1);
    const seen = new Map();
    t.is(await sweep(table, 1_000, { maxPerRealm: 3, maxAgeMs: 10_000, sweepEveryMs: 1 }, seen), 2);
    t.deepEqual(await keys(), ['a.p0', 'a.p3', 'a.p4', 'a.p5', 'b.p100', 'b.p200']);
    t.is(await sweep(table, 1_000, { maxPerRealm: 3, maxAgeMs: 850, sweepEveryMs: 1 }, seen), 4);
    t.deepEqual(await keys(), ['a.p0', 'b.p200'], 'the old ones went; the live proc stayed, though older than all');
  } finally {
    await bus.close();
    await server.stop();
  }
});
