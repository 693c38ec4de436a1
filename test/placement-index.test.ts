// The placement indexes (LC best fit, BE least loaded) against the plain scans they replaced: the same
// node, tie-breaking included, after any sequence of node up/down, credits, assignments and releases.
import test from 'ava';
import fc from 'fast-check';
import { OrderedNodes } from '../src/control/ordered-nodes.js';
import { Placements, type Demand, type Placement } from '../src/control/placement.js';
import { BeNodes } from '../src/control/scheduler/be-nodes.js';

/** placeLc as it was: a scan over every node (best fit, ties on id), without assigning. */
function scanLc(p: Placements, d: Demand, overcommit: boolean): Placement {
  const nodes = p.nodes();
  let best: (typeof nodes)[number] | undefined;
  let everFits = false;
  for (const n of nodes) {
    if (d.mcpu <= n.mcpu && d.memMb <= n.memMb) everFits = true;
    if (!overcommit && (n.usedMcpu + d.mcpu > n.mcpu || n.usedMemMb + d.memMb > n.memMb)) continue;
    const left = n.mcpu - n.usedMcpu - d.mcpu;
    const bestLeft = best === undefined ? Infinity : best.mcpu - best.usedMcpu - d.mcpu;
    if (left < bestLeft || (left === bestLeft && n.id < best!.id)) best = n;
  }
  if (best !== undefined) return { kind: 'placed', node: best.id };
  if (!everFits) return { kind: 'never-fits', reason: nodes.length === 0 ? 'no node that runs procs is registered' : `needs ${d.mcpu} mcpu / ${d.memMb} MB; the largest node has ${Math.max(0, ...nodes.map((n) => n.mcpu))} mcpu` };
  return { kind: 'no-room-now' };
}

/** beNodeNow's loop as it was: the least loaded node in credits order that has a slot and room. */
function scanBe(b: BeNodes, p: Placements, d: { mcpu: number; memMb: number }): string | undefined {
  let best: string | undefined;
  for (const [node, slots] of b.credits) {
    const free = p.free(node);
    const fits = (b.beOn.get(node) ?? 0) < slots && free !== undefined && d.mcpu <= free.mcpu && d.memMb <= free.memMb;
    if (fits && (best === undefined || (b.beOn.get(node) ?? 0) < (b.beOn.get(best) ?? 0))) best = node;
  }
  return best;
}

// Few nodes and coarse amounts, so that ties, full nodes and nodes leaving and coming back are common.
const nodeId = fc.integer({ min: 0, max: 7 }).map((i) => `n${i}`);
const amount = fc.integer({ min: 1, max: 8 }).map((k) => k * 250);
const op = fc.oneof(
  fc.record({ op: fc.constant('up' as const), node: nodeId, mcpu: amount, memMb: amount, slots: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ op: fc.constant('down' as const), node: nodeId }),
  fc.record({ op: fc.constant('lc' as const), mcpu: amount, memMb: amount }),
  fc.record({ op: fc.constant('be' as const), mcpu: fc.integer({ min: 0, max: 4 }).map((k) => k * 250), memMb: amount }),
  fc.record({ op: fc.constant('assign' as const), node: nodeId, mcpu: amount, memMb: amount }),
  fc.record({ op: fc.constant('release' as const), idx: fc.nat() }),
  fc.record({ op: fc.constant('recount' as const), node: nodeId, delta: fc.constantFrom(1 as const, -1 as const) }),
);

for (const overcommit of [false, true]) {
  test(`placement index - LC and BE choices equal the plain scans under random churn${overcommit ? ' (overcommit mutant)' : ''}`, (t) => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        const p = new Placements({ overcommit });
        const b = new BeNodes(p);
        const placed: Array<{ pid: string; be: boolean }> = [];
        let seq = 0;
        for (const o of ops) {
          if (o.op === 'up') {
            p.upsertNode({ id: o.node, mcpu: o.mcpu, memMb: o.memMb });
            b.setCredits(o.node, o.slots);
          } else if (o.op === 'down') {
            b.forget(o.node);
            p.removeNode(o.node);
          } else if (o.op === 'lc') {
            const d = { pid: `p${seq++}`, mcpu: o.mcpu, memMb: o.memMb };
            const want = scanLc(p, d, overcommit);
            const got = p.placeLc(d);
            t.deepEqual(got, want);
            if (got.kind === 'placed') placed.push({ pid: d.pid, be: false });
          } else if (o.op === 'be') {
            const want = scanBe(b, p, o);
            const got = b.leastLoaded(o);
            t.is(got, want);
            if (got !== undefined) {
              const pid = `p${seq++}`;
              p.assign({ pid, mcpu: o.mcpu, memMb: o.memMb }, got);
              b.count(got, 1);
              placed.push({ pid, be: true });
            }
          } else if (o.op === 'assign') {
            // Recovery adopting a proc where the table says it runs, room or not.
            const pid = `p${seq++}`;
            p.assign({ pid, mcpu: o.mcpu, memMb: o.memMb }, o.node);
            placed.push({ pid, be: false });
          } else if (o.op === 'release' && placed.length > 0) {
            const [gone] = placed.splice(o.idx % placed.length, 1);
            const node = p.nodeOf(gone!.pid);
            p.release(gone!.pid);
            if (gone!.be && node !== undefined && b.beOn.has(node)) b.count(node, -1);
          } else if (o.op === 'recount' && (o.delta === 1 || b.beOn.has(o.node))) {
            b.count(o.node, o.delta);
          }
          const { indexed, scanned } = b.check();
          t.deepEqual(indexed, scanned, 'the BE index holds exactly the nodes a scan finds, in its order');
        }
      }),
      { numRuns: 300 },
    );
  });
}

test('placement index - ordered nodes: first() equals a filter over the entries in key order', (t) => {
  const entry = fc.record({ id: fc.integer({ min: 0, max: 30 }).map(String), key: fc.integer({ min: 0, max: 5 }), x: fc.integer({ min: 0, max: 9 }), y: fc.integer({ min: 0, max: 9 }) });
  const step = fc.oneof(fc.record({ set: entry }), fc.record({ del: fc.integer({ min: 0, max: 30 }).map(String) }), fc.record({ lo: fc.integer({ min: -1, max: 6 }), x: fc.integer({ min: 0, max: 10 }), y: fc.integer({ min: 0, max: 10 }) }));
  fc.assert(
    fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
      const o = new OrderedNodes();
      const plain = new Map<string, { id: string; key: number; tie: string; x: number; y: number }>();
      for (const s of steps) {
        if ('set' in s) {
          const e = { ...s.set, tie: s.set.id };
          o.set(e);
          plain.set(e.id, e);
        } else if ('del' in s) {
          o.delete(s.del);
          plain.delete(s.del);
        } else {
          const sorted = [...plain.values()].sort((a, c) => a.key - c.key || (a.tie < c.tie ? -1 : a.tie > c.tie ? 1 : 0));
          t.is(o.first(s.lo, s.x, s.y), sorted.find((e) => e.key >= s.lo && e.x >= s.x && e.y >= s.y)?.id);
          t.deepEqual(o.entries(), sorted);
          t.is(o.min()?.id, sorted[0]?.id);
          t.is(o.max()?.id, sorted.at(-1)?.id);
        }
        t.is(o.size, plain.size);
      }
    }),
    { numRuns: 300 },
  );
});

test('placement index - BE ties go to the node that came first, and a node back from down comes last', (t) => {
  const p = new Placements();
  const b = new BeNodes(p);
  for (const id of ['c', 'a', 'b']) {
    p.upsertNode({ id, mcpu: 1000, memMb: 1000 });
    b.setCredits(id, 2);
  }
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'c', 'credits order, not id order');
  b.count('c', 1);
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'a');
  b.setCredits('c', 2); // a heartbeat: keeps its place
  b.forget('a');
  p.removeNode('a');
  p.upsertNode({ id: 'a', mcpu: 1000, memMb: 1000 });
  b.setCredits('a', 2);
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'b', 'a came back: last in credits order');
  p.assign({ pid: 'lc', mcpu: 950, memMb: 10 }, 'b'); // an LC reservation takes b's room
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'a');
  p.release('lc');
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'b');
  b.count('b', 1);
  b.count('b', 1);
  b.count('a', 1);
  t.is(b.leastLoaded({ mcpu: 100, memMb: 100 }), 'c', 'b is out of slots; c and a have one proc each, c came first');
});
