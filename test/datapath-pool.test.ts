import test from 'ava';
import fc from 'fast-check';
import type { RejectReason } from '../src/datapath/errors.js';
import { Ownership } from '../src/datapath/ownership.js';
import { Pool, type Allocation } from '../src/datapath/pool.js';
import { defaultClassSizes, type LayoutOptions } from '../src/datapath/pool-layout.js';

function pool(bytes: number, options: LayoutOptions = {}): Pool {
  const p = Pool.format(new ArrayBuffer(bytes), options);
  if (p._tag === 'Left') throw p.left;
  return p.right;
}

function ok<T>(e: { _tag: 'Left'; left: unknown } | { _tag: 'Right'; right: T }): T {
  if (e._tag === 'Left') throw e.left;
  return e.right;
}

test('pool - every size class and the large path allocate, hold data, free, and the free space comes back', (t) => {
  const p = pool(64 << 20);
  const before = p.stats();
  t.deepEqual(p.layout.classes.map((c) => c.sizeBytes), defaultClassSizes());
  t.true(p.layout.classes.every((c) => c.slots > 0), 'a 64 MiB pool has slots in every class');
  const live: Allocation[] = [];
  for (const c of p.layout.classes) {
    for (const len of [c.sizeBytes / 2 + 1, c.sizeBytes]) {
      const a = ok(p.alloc(7, len));
      t.is(a.capacityBytes, c.sizeBytes, `${len} B goes to the ${c.sizeBytes} B class`);
      t.is((a.offset - c.dataOffset) % c.sizeBytes, 0);
      p.bytes(a.offset, len).fill(len & 0xff);
      live.push(a);
    }
  }
  const big = ok(p.alloc(7, (3 << 20) + 5));
  t.is(big.capacityBytes, Math.ceil(((3 << 20) + 5) / p.layout.pageBytes) * p.layout.pageBytes);
  t.true(big.offset >= p.layout.largeOffset);
  p.bytes(big.offset, big.lengthBytes).fill(0xab);
  for (const a of live) t.true(p.bytes(a.offset, a.lengthBytes).every((b) => b === (a.lengthBytes & 0xff)), 'no buffer overwrote another');
  t.is(p.stats().bytesUsed, live.reduce((s, a) => s + a.capacityBytes, big.capacityBytes));
  t.deepEqual(p.audit(), []);
  for (const a of [...live, big]) ok(p.free(7, a.offset, a.generation));
  t.deepEqual(p.stats(), before);
  t.deepEqual(p.audit(), []);
});

test('pool - an exhausted pool returns PoolExhaustedError (class, then pages), never throws; bad arguments are typed', (t) => {
  const p = pool(1 << 20, { classes: [{ sizeBytes: 256, slots: 4 }], pageBytes: 4096, largeBytes: 2 * 4096 });
  const start = p.stats().bytesFree;
  const got: Allocation[] = [];
  for (let i = 0; i < 6; i++) got.push(ok(p.alloc(1, 200))); // 4 slots, then one page each
  t.deepEqual(got.map((a) => a.capacityBytes), [256, 256, 256, 256, 4096, 4096]);
  const r = p.alloc(1, 200);
  t.is(r._tag, 'Left');
  if (r._tag === 'Left') {
    t.is(r.left.type, 'pool-exhausted');
    t.regex(r.left.message, /free buffers or raise/);
  }
  const tooBig = p.alloc(1, 3 * 4096);
  t.is(tooBig._tag === 'Left' && tooBig.left.type, 'alloc-too-large');
  t.is(p.alloc(0, 10)._tag === 'Left' && 'owner', 'owner');
  const zero = p.alloc(1, 0);
  t.is(zero._tag === 'Left' && zero.left.type, 'invalid-argument');
  const nan = p.alloc(1, Number.NaN);
  t.is(nan._tag === 'Left' && nan.left.type, 'invalid-argument');
  for (const a of got) ok(p.free(1, a.offset, a.generation));
  t.is(p.stats().bytesFree, start);
  t.deepEqual(p.audit(), []);
});

test('pool - a second mapping of the same buffer sees the same allocations; garbage is refused at attach', (t) => {
  const buf = new ArrayBuffer(8 << 20);
  const a = ok(Pool.format(buf));
  const b = ok(Pool.attach(buf));
  t.deepEqual(b.layout.classes, a.layout.classes);
  const x = ok(a.alloc(3, 1000));
  t.is(b.stats().bytesUsed, 1024);
  const info = ok(b.inspect(x.offset, 1000));
  t.is(info.owner, 3);
  ok(b.transfer(3, 4, x.offset, x.generation, 1000));
  t.is(a.free(3, x.offset, x.generation)._tag, 'Left', 'the old owner cannot free it any more');
  ok(a.free(4, x.offset, x.generation));
  t.is(b.stats().bytesUsed, 0);
  const junk = Pool.attach(new ArrayBuffer(8 << 20));
  t.is(junk._tag === 'Left' && junk.left.type, 'pool-layout');
  const small = Pool.format(new ArrayBuffer(1024));
  t.is(small._tag === 'Left' && small.left.type, 'pool-layout');
  const badClasses = Pool.format(new ArrayBuffer(1 << 20), { classes: [{ sizeBytes: 512, slots: 1 }, { sizeBytes: 256, slots: 1 }] });
  t.regex(badClasses._tag === 'Left' ? badClasses.left.message : '', /strictly increasing/);
});

test('ownership - forged, stale, out-of-range, misaligned, too-long and free descriptors are rejected and counted by reason', (t) => {
  const p = pool(8 << 20);
  const own = new Ownership(p);
  const a = ok(p.alloc(10, 300)); // a 512 B slot
  const big = ok(p.alloc(10, 200_000));
  const cases: Array<[RejectReason, { offset: number; length: number; generation: number }, number]> = [
    ['wrong-owner', { offset: a.offset, length: 300, generation: a.generation }, 11],
    ['stale-generation', { offset: a.offset, length: 300, generation: a.generation + 1 }, 10],
    ['out-of-range', { offset: p.layout.endOffset + 4096, length: 1, generation: 1 }, 10],
    ['out-of-range', { offset: 0, length: 1, generation: 1 }, 10],
    ['misaligned', { offset: a.offset + 8, length: 1, generation: a.generation }, 10],
    ['misaligned', { offset: big.offset + p.layout.pageBytes, length: 1, generation: big.generation }, 10],
    ['too-long', { offset: a.offset, length: 513, generation: a.generation }, 10],
  ];
  for (const [reason, ref, sender] of cases) {
    const v = own.validate(ref, sender);
    t.is(v._tag === 'Left' && v.left.reason, reason, `validate: ${reason}`);
    const d = own.accept(ref, sender, 99);
    t.is(d._tag === 'Left' && d.left.reason, reason, `accept: ${reason}`);
  }
  ok(own.accept({ offset: a.offset, length: 300, generation: a.generation }, 10, 99));
  ok(own.release({ offset: a.offset, length: 300, generation: a.generation }, 99));
  const again = own.accept({ offset: a.offset, length: 300, generation: a.generation }, 99, 10);
  t.is(again._tag === 'Left' && again.left.reason, 'stale-generation', 'a freed buffer is stale for its old descriptors');
  const freeSlot = own.validate({ offset: a.offset, length: 1, generation: a.generation + 1 }, 10);
  t.is(freeSlot._tag === 'Left' && freeSlot.left.reason, 'not-live');
  t.deepEqual(own.rejected(), { 'out-of-range': 4, misaligned: 4, 'too-long': 2, 'not-live': 1, 'stale-generation': 3, 'wrong-owner': 2 });
  t.is(own.accepted, 1);
  t.deepEqual(own.reclaim(10), { buffers: 1, bytes: big.capacityBytes });
  t.is(p.stats().bytesUsed, 0);
  t.deepEqual(p.audit(), []);
});

test('ownership - reclaim finishes a free its owner was killed in the middle of', (t) => {
  const p = pool(4 << 20);
  const a = ok(p.alloc(5, 100));
  const c = p.layout.classes[0]!;
  const unit = c.firstSlot + (a.offset - c.dataOffset) / c.sizeBytes;
  new Int32Array(p.buffer, p.layout.ownersOffset)[unit] = -5; // what free() leaves if killed after its first CAS
  t.is(p.free(5, a.offset, a.generation)._tag, 'Left');
  t.deepEqual(p.reclaim(5), { buffers: 1, bytes: 256 });
  t.is(p.stats().bytesUsed, 0);
  t.deepEqual(p.audit(), []);
  const b = ok(p.alloc(6, 100));
  t.not(b.generation, a.generation, 'the reused slot has a new generation');
});

type Op = { op: 'alloc'; owner: number; len: number } | { op: 'free'; idx: number } | { op: 'transfer'; idx: number; to: number } | { op: 'reclaim'; owner: number } | { op: 'stale'; idx: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('alloc' as const), owner: fc.integer({ min: 1, max: 4 }), len: fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 300_000 })) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('free' as const), idx: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('transfer' as const), idx: fc.nat(), to: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reclaim' as const), owner: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('stale' as const), idx: fc.nat() }) },
);

test('pool - random alloc/free/transfer/reclaim keep live buffers disjoint, stats exact, and everything comes back', (t) => {
  // Small classes and few pages so that exhaustion and the page fallback happen often.
  const layout: LayoutOptions = { classes: [{ sizeBytes: 256, slots: 6 }, { sizeBytes: 1024, slots: 4 }, { sizeBytes: 4096, slots: 3 }], pageBytes: 4096, largeBytes: 96 * 4096 };
  const buf = new ArrayBuffer(2 << 20);
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const p = ok(Pool.format(buf, layout));
      const other = ok(Pool.attach(buf)); // a second process's view: same answers
      const start = p.stats();
      let live: Array<Allocation & { owner: number }> = [];
      const dead: Array<Allocation & { owner: number }> = [];
      for (const op of ops) {
        if (op.op === 'alloc') {
          const r = p.alloc(op.owner, op.len);
          if (r._tag === 'Right') live.push({ ...r.right, owner: op.owner });
          else if (r.left.type !== 'pool-exhausted' && r.left.type !== 'alloc-too-large') return false;
        } else if (op.op === 'free' && live.length > 0) {
          const [a] = live.splice(op.idx % live.length, 1);
          if (other.free(a!.owner, a!.offset, a!.generation)._tag !== 'Right') return false;
          dead.push(a!);
        } else if (op.op === 'transfer' && live.length > 0) {
          const a = live[op.idx % live.length]!;
          if (p.transfer(a.owner, op.to, a.offset, a.generation, a.lengthBytes)._tag !== 'Right') return false;
          a.owner = op.to;
        } else if (op.op === 'reclaim') {
          const mine = live.filter((a) => a.owner === op.owner);
          const r = p.reclaim(op.owner);
          if (r.buffers !== mine.length || r.bytes !== mine.reduce((s, a) => s + a.capacityBytes, 0)) return false;
          dead.push(...mine);
          live = live.filter((a) => a.owner !== op.owner);
        } else if (op.op === 'stale' && dead.length > 0) {
          const d = dead[op.idx % dead.length]!;
          if (p.transfer(d.owner, 9, d.offset, d.generation, 1)._tag !== 'Left' || p.free(d.owner, d.offset, d.generation)._tag !== 'Left') return false;
        }
        if (!invariants(p, live)) return false;
      }
      for (let o = 1; o <= 4; o++) p.reclaim(o);
      const end = p.stats();
      return end.bytesFree === start.bytesFree && end.bytesUsed === 0 && p.audit().length === 0;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

function invariants(p: Pool, live: Array<Allocation & { owner: number }>): boolean {
  const sorted = [...live].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) if (sorted[i - 1]!.offset + sorted[i - 1]!.capacityBytes > sorted[i]!.offset) return false;
  if (p.stats().bytesUsed !== live.reduce((s, a) => s + a.capacityBytes, 0)) return false;
  return live.every((a) => {
    const info = p.inspect(a.offset, a.lengthBytes);
    return info._tag === 'Right' && info.right.owner === a.owner && info.right.generation === a.generation && info.right.capacityBytes === a.capacityBytes;
  });
}

test('pool - alloc/free cost (measured, not asserted)', (t) => {
  const p = pool(64 << 20);
  const n = 200_000;
  for (const len of [1000, 200_000]) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const a = p.alloc(1, len);
      if (a._tag === 'Right') p.free(1, a.right.offset, a.right.generation);
    }
    t.log(`alloc+free of ${len} B: ${(Number(process.hrtime.bigint() - t0) / n).toFixed(0)} ns`);
  }
  t.is(p.stats().bytesUsed, 0);
});
