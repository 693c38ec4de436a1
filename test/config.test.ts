import test from 'ava';
import { ClusterConfigError, defineCluster, parseCluster } from '../src/config/cluster.js';
import shipped from '../cluster.config.js';

test('config - the shipped cluster.config.ts is valid and embedded', (t) => {
  t.is(shipped.nodes.length, 3);
  t.deepEqual(shipped.nats, { embedded: true, port: 4222, embeddedServers: 1, clusterPort: 6222, replicas: 1 });
  t.deepEqual(shipped.realms, ['default']);
});

test('config - defaults fill a minimal config', (t) => {
  const c = defineCluster({ nodes: 2 });
  t.deepEqual(c.nodes.map((n) => n.id), ['node-1', 'node-2']);
  t.true(c.nodes.every((n) => n.procs), 'every node runs procs unless it says otherwise');
  t.is(c.datapath, 'auto');
  t.is(c.poolMb, 64);
  t.is(c.busyPollUs, 200);
  t.is(defineCluster({ busyPollUs: 0 }).busyPollUs, 0);
});

test('config - bad input is rejected with the field named', (t) => {
  const cases: Array<[Parameters<typeof parseCluster>[0], string]> = [
    [{ nodes: 0 }, 'nodes'],
    [{ nodes: [{ id: 'a' }, { id: 'a' }] }, 'nodes'],
    [{ node: { mcpu: -5 } }, 'mcpu'],
    [{ realms: ['Bad Realm'] }, 'realms'],
    [{ nats: { embedded: true, servers: ['nats://x:4222'] } }, 'nats'],
    [{ nats: { servers: ['http://x'] } }, 'nats.servers'],
    [{ gateway: { port: 70000 } }, 'gateway.port'],
    [{ datapath: 'dpdk' as never }, 'datapath'],
    [{ poolMb: 4096 }, 'poolMb'],
    [{ poolMb: 0.5 }, 'poolMb'],
    [{ busyPollUs: -1 }, 'busyPollUs'],
    [{ busyPollUs: 20_000 }, 'busyPollUs'],
    [{ busyPollUs: 2.5 }, 'busyPollUs'],
    [{ nodes: [{ id: 'a', procs: 'no' as never }] }, 'procs'],
    [{ nodes: [{ id: 'a', procs: false }, { id: 'b', procs: false }] }, 'procs'],
  ];
  for (const [input, field] of cases) {
    const r = parseCluster(input);
    t.is(r._tag, 'Left', JSON.stringify(input));
    if (r._tag === 'Left') {
      t.true(r.left instanceof ClusterConfigError);
      t.true(r.left.field.includes(field), `${r.left.field} should name ${field}`);
    }
  }
  t.throws(() => defineCluster({ nodes: -1 }), { instanceOf: ClusterConfigError });
});
