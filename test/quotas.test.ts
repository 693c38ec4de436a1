import test from 'ava';
import { ControlError } from '../src/control/errors.js';
import { BUCKET, decodeJson, type LeaseRecord } from '../src/control/protocol/index.js';
import { ClusterConfigError, defineCluster } from '../src/config/cluster.js';
import { testCluster, untilScheduler, waitFor, type TestCluster } from './helpers/cluster.js';

// Realm quotas on a real cluster: live procs, and the mcpu and memory LC procs reserve.

const refusal = async (p: Promise<unknown>): Promise<ControlError | undefined> => {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e instanceof ControlError ? e : undefined;
  }
};

const leaderNode = async (tc: TestCluster): Promise<string | undefined> => {
  const e = await (await tc.bus.kv(BUCKET.leader)).get('scheduler');
  return e?.value == null ? undefined : (decodeJson(e.value) as LeaseRecord).holder;
};

test('quotas - a realm at its procs quota is refused, typed and named; room comes back when a proc ends; another realm is not affected', async (t) => {
  const tc = await testCluster({ nodes: 1 }, ['default', 'other']);
  try {
    await tc.client.createRealm('small', { quota: { procs: 2 } });
    const a = await tc.client.spawn({ program: 'counter', realm: 'small' });
    await tc.client.spawn({ program: 'counter', realm: 'small' });
    const e = await refusal(tc.client.spawn({ program: 'counter', realm: 'small' }));
    t.is(e?.type, 'quota-exceeded');
    t.regex(e?.message ?? '', /realm small is at its quota of 2 live procs \(procs\)/);
    t.is(await refusal(tc.client.spawn({ program: 'counter', realm: 'other' })), undefined, "another realm's spawns are not counted against it");
    await tc.client.evict(a, { graceMs: 100 });
    await tc.client.waitExit(a, { timeoutMs: 20_000 });
    t.is(await refusal(tc.client.spawn({ program: 'hello', realm: 'small' })), undefined, 'the ended proc freed its place');
    t.deepEqual((await tc.client.realmRecords()).find((r) => r.name === 'small')?.quota, { procs: 2 });
  } finally {
    await tc.stop();
  }
});

test('quotas - reserved mcpu and memory count LC procs only; a quota changed at run time applies to the next spawn; bad quotas and unknown realms are refused', async (t) => {
  const tc = await testCluster({ nodes: 1, node: { mcpu: 4000, memMb: 8192, beSlots: 8 } });
  try {
    await tc.client.setRealmQuota('default', { mcpu: 500, memMb: 512 });
    await tc.client.spawn({ program: 'counter', lc: true, mcpu: 300, memMb: 128 });
    const cpu = await refusal(tc.client.spawn({ program: 'counter', lc: true, mcpu: 300, memMb: 128 }));
    t.is(cpu?.type, 'quota-exceeded');
    t.regex(cpu?.message ?? '', /reserves 300 of its 500 mcpu quota; 300 more do not fit \(mcpu\)/);
    const mem = await refusal(tc.client.spawn({ program: 'counter', lc: true, mcpu: 100, memMb: 400 }));
    t.regex(mem?.message ?? '', /reserves 128 of its 512 MB memory quota; 400 more do not fit \(memMb\)/);
    t.is(await refusal(tc.client.spawn({ program: 'counter', mcpu: 3000 })), undefined, 'a BE proc reserves nothing');
    await tc.client.setRealmQuota('default', {});
    t.is(await refusal(tc.client.spawn({ program: 'counter', lc: true, mcpu: 300, memMb: 128 })), undefined, 'no quota, no limit');
    t.is((await refusal(tc.client.setRealmQuota('nowhere', { procs: 1 })))?.type, 'unknown-realm');
    for (const bad of [{ procs: -1 }, { procs: 1.5 }, { cpu: 3 }, { procs: '3' }]) {
      t.is((await refusal(tc.client.setRealmQuota('default', bad as never)))?.type, 'bad-request', JSON.stringify(bad));
    }
    t.throws(() => defineCluster({ realms: ['default'], quotas: { other: { procs: 1 } } }), { instanceOf: ClusterConfigError });
    t.throws(() => defineCluster({ quotas: { default: { procs: -2 } } }), { instanceOf: ClusterConfigError });
  } finally {
    await tc.stop();
  }
});

test('quotas - a new scheduler after a failover enforces the quotas it finds in the realm records', async (t) => {
  const tc = await testCluster({ nodes: 2 });
  try {
    await tc.client.createRealm('capped', { quota: { procs: 2 } });
    await tc.client.spawn({ program: 'counter', realm: 'capped' });
    const before = (await leaderNode(tc))!;
    tc.cluster.nodes.get(before)!.kill('SIGKILL');
    await waitFor(() => leaderNode(tc), (l) => l !== undefined && l !== '' && l !== before, 30_000);
    // Once the killed node's procs have ended lost, fill the realm up: the new scheduler, which knows
    // the quota only from the realm's record, must stop it at 2.
    await waitFor(() => tc.client.ps({ realm: 'capped' }), (rs) => rs.every((r) => r.node !== before), 30_000);
    let refused: ControlError | undefined;
    for (let i = 0; i < 4 && refused === undefined; i++) refused = await refusal(untilScheduler(() => tc.client.spawn({ program: 'counter', realm: 'capped' })));
    t.is(refused?.type, 'quota-exceeded');
    t.is((await tc.client.ps({ realm: 'capped' })).length, 2);
  } finally {
    await tc.stop();
  }
});

test("quotas - a realm's poolMb caps its shared-memory pool on each node; other realms keep the node's size", async (t) => {
  const tc = await testCluster({ nodes: 1, datapath: 'userspace', poolMb: 16 });
  try {
    await tc.client.createRealm('tight', { quota: { poolMb: 2 } });
    for (const realm of ['tight', 'default']) await tc.client.waitStart(await tc.client.spawn({ program: 'echo', name: 'echo', realm }), { timeoutMs: 20_000 });
    const pools = (await waitFor(() => tc.client.dataPathStatus('node-1'), (s) => s.pools['tight'] !== undefined && s.pools['default'] !== undefined)).pools;
    t.true(pools['tight']!.bytesTotal <= 2 * 2 ** 20, JSON.stringify(pools));
    t.true(pools['default']!.bytesTotal > 8 * 2 ** 20, JSON.stringify(pools));
    t.is(await tc.client.dataPathCall('echo', 'fits', { realm: 'tight' }), 'fits', 'the small pool works');
  } finally {
    await tc.stop();
  }
});
