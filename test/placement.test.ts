import test from 'ava';
import fc from 'fast-check';
import { BeQueues, Placements, QueueFullError } from '../src/control/placement.js';

test('placement - LC placement never over-commits a node, under any sequence of places and releases', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ mcpu: fc.integer({ min: 100, max: 4000 }), memMb: fc.integer({ min: 64, max: 8192 }) }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.oneof(fc.record({ op: fc.constant('place' as const), mcpu: fc.integer({ min: 1, max: 3000 }), memMb: fc.integer({ min: 1, max: 4096 }) }), fc.record({ op: fc.constant('release' as const), idx: fc.nat() })), { maxLength: 200 }),
      (nodes, ops) => {
        const p = new Placements();
        nodes.forEach((n, i) => p.upsertNode({ id: `n${i}`, ...n }));
        const placed: string[] = [];
        let seq = 0;
        for (const op of ops) {
          if (op.op === 'place') {
            const pid = `p${seq++}`;
            const r = p.placeLc({ pid, mcpu: op.mcpu, memMb: op.memMb });
            if (r.kind === 'placed') placed.push(pid);
            if (r.kind === 'never-fits' && nodes.some((n) => n.mcpu >= op.mcpu && n.memMb >= op.memMb)) return false;
          } else if (placed.length > 0) {
            p.release(placed.splice(op.idx % placed.length, 1)[0]!);
          }
          for (const n of p.nodes()) if (n.usedMcpu > n.mcpu || n.usedMemMb > n.memMb || n.usedMcpu < 0) return false;
        }
        placed.forEach((pid) => p.release(pid));
        return p.nodes().every((n) => n.usedMcpu === 0 && n.usedMemMb === 0 && n.procs === 0);
      },
    ),
  );
  t.pass();
});

test('placement - a proc bigger than every node never fits; a full cluster is no-room-now', (t) => {
  const p = new Placements();
  t.is(p.placeLc({ pid: 'x', mcpu: 1, memMb: 1 }).kind, 'never-fits');
  p.upsertNode({ id: 'a', mcpu: 1000, memMb: 1000 });
  t.is(p.placeLc({ pid: 'big', mcpu: 2000, memMb: 10 }).kind, 'never-fits');
  t.deepEqual(p.placeLc({ pid: 'p1', mcpu: 800, memMb: 10 }), { kind: 'placed', node: 'a' });
  t.is(p.placeLc({ pid: 'p2', mcpu: 800, memMb: 10 }).kind, 'no-room-now');
  p.release('p1');
  p.release('p1'); // duplicate exit report: harmless
  t.deepEqual(p.placeLc({ pid: 'p2', mcpu: 800, memMb: 10 }), { kind: 'placed', node: 'a' });
  t.deepEqual(p.removeNode('a'), ['p2']);
});

test('placement - BE queues hand out round-robin across realms and are bounded', (t) => {
  const q = new BeQueues<{ realm: string; id: number }>(3);
  for (let i = 0; i < 3; i++) q.push({ realm: 'busy', id: i });
  q.push({ realm: 'quiet', id: 100 });
  t.throws(() => q.push({ realm: 'busy', id: 9 }), { instanceOf: QueueFullError });
  const order = [];
  for (let x = q.take(() => true); x !== undefined; x = q.take(() => true)) order.push(`${x.realm}:${x.id}`);
  t.deepEqual(order, ['busy:0', 'quiet:100', 'busy:1', 'busy:2']);
  t.is(q.size, 0);
});
