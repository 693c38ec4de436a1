import test from 'ava';
import { Worker } from 'node:worker_threads';
import { Pool } from '../src/datapath/pool.js';

/**
 * Real concurrency on one pool: worker threads on a SharedArrayBuffer hammer alloc/transfer/free. Each
 * worker stamps every buffer it gets and checks the stamp before freeing it, so a buffer handed to two
 * holders at once shows up as a torn stamp. (The same code runs across processes over a memfd mapping
 * in datapath-pool-processes.test.ts once the native addon provides the mapping.)
 */

const POOL_URL = new URL('../src/datapath/pool.js', import.meta.url).href;

/** The hammer, as a module source: used by worker threads here and by child processes elsewhere. */
export const HAMMER_SOURCE = `
import { Pool } from ${JSON.stringify(POOL_URL)};
export function hammer(buffer, counter, me, iterations, seed, parties) {
  // counter[0]: operations done by everyone; counter[1]: a start barrier (spin, bounded: no Atomics.wait
  // on the non-shared buffer of a memfd mapping).
  Atomics.add(counter, 1, 1);
  for (let spins = 0; Atomics.load(counter, 1) < parties && spins < 1e9; spins++);
  const startedAt = Atomics.load(counter, 0);
  const attached = Pool.attach(buffer);
  if (attached._tag === 'Left') throw attached.left;
  const p = attached.right;
  const held = [];
  let x = seed >>> 0 || 1;
  const rnd = (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
  let torn = 0, exhausted = 0, rejected = 0;
  const check = (h) => {
    const v = new DataView(buffer, h.offset, h.len);
    if (v.getUint32(0, true) !== h.stamp || v.getUint32(h.len - 4, true) !== h.stamp) torn++;
  };
  for (let i = 0; i < iterations; i++) {
    Atomics.add(counter, 0, 1);
    if (held.length < 8 && rnd(3) !== 0) {
      const len = rnd(50) === 0 ? 70000 + rnd(200000) : 8 + rnd(3000);
      const a = p.alloc(me, len);
      if (a._tag === 'Left') { exhausted++; continue; }
      const stamp = ((me << 20) ^ i) >>> 0;
      const v = new DataView(buffer, a.right.offset, len);
      v.setUint32(0, stamp, true);
      v.setUint32(len - 4, stamp, true);
      held.push({ offset: a.right.offset, generation: a.right.generation, len, stamp, owner: me });
    } else if (held.length > 0) {
      const h = held.splice(rnd(held.length), 1)[0];
      check(h);
      if (rnd(2) === 0) {
        // hand it to our second identity and back: ownership transfer under contention
        if (p.transfer(h.owner, me + 1000, h.offset, h.generation, h.len)._tag === 'Left') rejected++;
        else h.owner = me + 1000;
      }
      if (p.free(h.owner, h.offset, h.generation)._tag === 'Left') rejected++;
    }
  }
  for (const h of held) { check(h); if (p.free(h.owner, h.offset, h.generation)._tag === 'Left') rejected++; }
  return { torn, exhausted, rejected, startedAt, endedAt: Atomics.load(counter, 0) };
}
`;

export interface HammerResult {
  torn: number;
  exhausted: number;
  rejected: number;
  /** The shared operation counter when this party started and ended: others' progress in between shows overlap. */
  startedAt: number;
  endedAt: number;
}

function runWorker(buffer: SharedArrayBuffer, counter: Int32Array, me: number, iterations: number, parties: number): Promise<HammerResult> {
  const src = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { hammer } = await import('data:text/javascript,' + encodeURIComponent(workerData.source));
    parentPort.postMessage(hammer(workerData.buffer, workerData.counter, workerData.me, workerData.iterations, workerData.me * 7919, workerData.parties));
  `;
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { source: HAMMER_SOURCE, buffer, counter, me, iterations, parties } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('pool threads - concurrent alloc/transfer/free never hands a buffer to two holders and loses nothing', async (t) => {
  const buffer = new SharedArrayBuffer(16 << 20);
  // Few slots per class so that the threads fight over the same free lists and pages.
  const formatted = Pool.format(buffer, { classes: [{ sizeBytes: 256, slots: 6 }, { sizeBytes: 1024, slots: 5 }, { sizeBytes: 4096, slots: 4 }], pageBytes: 4096, largeBytes: 160 * 4096 });
  if (formatted._tag === 'Left') throw formatted.left;
  const p = formatted.right;
  const before = p.stats();
  const counter = new Int32Array(new SharedArrayBuffer(8));
  const workers = 3;
  const iterations = 200_000;
  const results = await Promise.all(Array.from({ length: workers }, (_, i) => runWorker(buffer, counter, i + 1, iterations, workers)));
  t.log(results);
  t.is(Atomics.load(counter, 0), workers * iterations, 'no lost increments');
  t.true(results.some((r) => r.endedAt - r.startedAt > iterations), 'the workers really ran at the same time');
  t.true(results.some((r) => r.exhausted > 0), 'the pool ran dry at times (the exhausted paths raced too)');
  for (const r of results) {
    t.is(r.torn, 0, 'no buffer was held by two workers at once');
    t.is(r.rejected, 0, 'every free/transfer of an owned buffer succeeded');
  }
  t.is(p.stats().anomalies, 0);
  t.deepEqual(p.stats(), before, 'the free space came back');
  t.deepEqual(p.audit(), []);
});
