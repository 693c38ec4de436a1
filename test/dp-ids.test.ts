import test from 'ava';
import fc from 'fast-check';
import { defineCluster } from '../src/config/cluster.js';
import { nodeDataPathAddress, type NodeRecord } from '../src/control/protocol/index.js';
import { OWNER_MAX } from '../src/datapath/pool.js';
import { defaultNodeIndex, endpointRange, NODE_INDEX_MAX, nodeIndexOf } from '../src/node/datapath/ids.js';

test('dp-ids - every id of a node range names that node, fits a pool owner, and ranges never overlap', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: NODE_INDEX_MAX }), fc.integer({ min: 1, max: NODE_INDEX_MAX }), fc.nat(), (a, b, k) => {
      const ra = endpointRange(a);
      const id = ra.first + (k % (ra.last - ra.first + 1));
      if (nodeIndexOf(id) !== a || id > OWNER_MAX || id <= 1) return false;
      const rb = endpointRange(b);
      return a === b || ra.last < rb.first || rb.last < ra.first;
    }),
  );
  t.throws(() => endpointRange(NODE_INDEX_MAX + 1), { instanceOf: RangeError });
  t.is(nodeIndexOf(2), 0, 'ids of a node running alone (index 0) are never taken for remote ones');
});

test('dp-ids - a node without a configured index gets a stable one in range', (t) => {
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 64 }), (id) => {
    const i = defaultNodeIndex(id);
    return i >= 1 && i <= NODE_INDEX_MAX && i === defaultNodeIndex(id);
  }));
  t.not(defaultNodeIndex('node-1'), defaultNodeIndex('node-2'));
});

test('dp-ids - the cluster config numbers nodes from 1 and rejects a shared or out-of-range index', (t) => {
  const c = defineCluster({ nodes: 3 });
  t.deepEqual(c.nodes.map((n) => n.dpIndex), [1, 2, 3]);
  t.deepEqual(c.nodes.map((n) => [n.dpHost, n.dpPort]), [['127.0.0.1', 0], ['127.0.0.1', 0], ['127.0.0.1', 0]]);
  t.throws(() => defineCluster({ nodes: [{ dpIndex: 5 }, { dpIndex: 5 }] }), { message: /dpIndex.*distinct/ });
  t.throws(() => defineCluster({ nodes: [{ dpIndex: 0 }] }), { message: /dpIndex/ });
  t.throws(() => defineCluster({ nodes: [{ dpPort: 70_000 }] }), { message: /dpPort/ });
});

test('dp-ids - a heartbeat carries the channel address; a malformed one is ignored, never dialled', (t) => {
  const rec = (datapath: unknown): NodeRecord => ({ id: 'n', mcpu: 1, memMb: 1, address: 'n', startedAtMs: 0, heartbeatSeq: 0, beSlots: 0, datapath } as NodeRecord);
  t.deepEqual(nodeDataPathAddress(rec({ host: '10.0.0.2', port: 7000, index: 3 })), { host: '10.0.0.2', port: 7000, index: 3 });
  for (const bad of [undefined, null, 'x', { host: '', port: 1, index: 1 }, { host: 'h', port: 0, index: 1 }, { host: 'h', port: 1, index: 0 }, { host: 'h', port: 1, index: 1024 }, { host: 'h', port: 1.5, index: 1 }]) {
    t.is(nodeDataPathAddress(rec(bad)), undefined, JSON.stringify(bad));
  }
});
