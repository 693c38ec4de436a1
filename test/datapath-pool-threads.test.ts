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

/**
 * Two parties on one pool: the holder allocates, hands on (transfer) and frees buffers of owner 7 over
 * and over, while the staler frees and transfers stale descriptors of the same slots (owner 7, the
 * generations they had before): what Endpoint.closeDestination does with its ring of recent sends while
 * the node's channel frees one of them. A stale descriptor must never disturb the buffer's current holder.
 */
const STALE_SOURCE = `
import { Pool } from ${JSON.stringify(POOL_URL)};
export function party(buffer, counter, role, iterations, stale) {
  Atomics.add(counter, 1, 1);
  for (let spins = 0; Atomics.load(counter, 1) < 2 && spins < 1e9; spins++);
  const startedAt = Atomics.load(counter, 0);
  const p = Pool.attach(buffer).right;
  let rejected = 0, staleTaken = 0;
  for (let i = 0; i < iterations; i++) {
    Atomics.add(counter, 0, 1);
    if (role === 'staler') {
      const s = stale[i % stale.length];
      if (p.free(7, s.offset, s.generation)._tag === 'Right') staleTaken++;
      if (p.transfer(7, 9, s.offset, s.generation, 1)._tag === 'Right') staleTaken++;
      continue;
    }
    const a = p.alloc(7, 100);
    if (a._tag === 'Left') { rejected++; continue; }
    if (p.transfer(7, 8, a.right.offset, a.right.generation, 100)._tag === 'Left') { rejected++; continue; }
    if (p.free(8, a.right.offset, a.right.generation)._tag === 'Left') rejected++;
  }
  return { rejected, staleTaken, startedAt, endedAt: Atomics.load(counter, 0) };
}
`;

test('pool threads - a stale free or transfer never disturbs the buffer its owner holds again (no leaked buffer)', async (t) => {
  const buffer = new SharedArrayBuffer(1 << 20);
  const formatted = Pool.format(buffer, { classes: [{ sizeBytes: 256, slots: 4 }], pageBytes: 4096, largeBytes: 4 * 4096 });
  if (formatted._tag === 'Left') throw formatted.left;
  const p = formatted.right;
  // Every slot once, freed: descriptors of them that are stale from now on.
  const stale = Array.from({ length: 4 }, () => p.alloc(7, 100)).map((a) => (a._tag === 'Right' ? a.right : t.fail('alloc') as never));
  for (const s of stale) p.free(7, s.offset, s.generation);
  const counter = new Int32Array(new SharedArrayBuffer(8));
  const iterations = 1_000_000;
  const src = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { party } = await import('data:text/javascript,' + encodeURIComponent(workerData.source));
    parentPort.postMessage(party(workerData.buffer, workerData.counter, workerData.role, workerData.iterations, workerData.stale));
  `;
  const run = (role: string): Promise<HammerResult & { staleTaken: number }> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { source: STALE_SOURCE, buffer, counter, role, iterations, stale: stale.map(({ offset, generation }) => ({ offset, generation })) } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const [staler, holder] = await Promise.all([run('staler'), run('holder')]);
  t.log({ staler, holder });
  t.true(staler.endedAt - staler.startedAt > iterations, 'the two ran at the same time');
  t.is(staler.staleTaken, 0, 'no stale descriptor freed or moved a buffer');
  t.is(holder.rejected, 0, "every alloc, transfer and free of the holder's own buffers succeeded");
  t.is(p.unitsLive(), 0, 'nothing left allocated');
  t.deepEqual(p.audit(), []);
});
