import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { Hub } from '../src/datapath/hub.js';
import { Pool } from '../src/datapath/pool.js';
import type { HammerResult } from './datapath-pool-threads.test.js';

/**
 * The pool across real processes: a memfd mapped (MAP_SHARED) by the parent and two children, exposed to
 * JS as an external, non-shared ArrayBuffer by the native addon. Checks that Atomics on such a buffer are
 * real atomic instructions between processes: a counter hammered with Atomics.add loses nothing while the
 * same counter hammered with plain `++` does lose increments (proof the processes really overlapped), and
 * the slab hammer (alloc/transfer/free with stamps) never hands a buffer to two processes.
 */

/** What this test needs from src/native: create a memfd of a size, and map an fd (an inherited one in a child). */
interface Mapping {
  memfd(sizeBytes: number): number;
  map(fd: number, sizeBytes: number): ArrayBuffer;
  /** The module a child imports to get the same functions. */
  moduleUrl: string;
}

const NATIVE_JS = new URL('../src/native/index.js', import.meta.url);

async function loadMapping(): Promise<Mapping | undefined> {
  if (!existsSync(fileURLToPath(NATIVE_JS))) return undefined;
  const m = (await import(NATIVE_JS.href)) as Record<string, unknown>;
  const memfd = m['memfdCreate'];
  const map = m['mapFd'];
  const status = m['nativeStatus'] as (() => { available: boolean }) | undefined;
  if (typeof memfd !== 'function' || typeof map !== 'function' || status?.().available !== true) return undefined;
  return { memfd: memfd as Mapping['memfd'], map: map as Mapping['map'], moduleUrl: NATIVE_JS.href };
}

const mapping = await loadMapping();
const HAMMER = (() => {
  const src = readFileSync(new URL('./datapath-pool-threads.test.js', import.meta.url), 'utf8');
  const m = /export const HAMMER_SOURCE = `([\s\S]*?)`;/.exec(src);
  if (m === null) throw new Error('hammer source not found in datapath-pool-threads.test.js');
  return m[1]!.replace('${JSON.stringify(POOL_URL)}', JSON.stringify(new URL('../src/datapath/pool.js', import.meta.url).href));
})();

function child(script: string, fd: number, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const cp = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', fd], env: { ...process.env, ...env } });
    let out = '';
    cp.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    cp.on('error', reject);
    cp.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited with ${code}`))));
  });
}

/** Skipped (and says why in its title) until src/native exports memfdCreate and mapFd. */
const maybe = (title: string, fn: (t: ExecutionContext) => Promise<void>): void => {
  if (mapping === undefined) test.skip(`${title} [needs src/native memfdCreate/mapFd]`, fn);
  else test(title, fn);
};

maybe('pool processes - Atomics on a memfd mapping are atomic across processes: nothing lost, nothing double-allocated', async (t) => {
  const m = mapping!;
  const sizeBytes = 16 << 20;
  const fd = m.memfd(sizeBytes);
  const buffer = m.map(fd, sizeBytes);
  t.false(buffer instanceof SharedArrayBuffer, 'an external ArrayBuffer, not a SharedArrayBuffer');
  const formatted = Pool.format(buffer, { classes: [{ sizeBytes: 256, slots: 6 }, { sizeBytes: 1024, slots: 5 }, { sizeBytes: 4096, slots: 4 }], pageBytes: 4096, largeBytes: 160 * 4096 });
  if (formatted._tag === 'Left') throw formatted.left;
  const p = formatted.right;
  const cell = p.alloc(999, 16); // the shared counters live in the pool itself
  if (cell._tag === 'Left') throw cell.left;
  const counter = new Int32Array(buffer, cell.right.offset, 4);
  const before = p.stats();
  const prelude = `const n = await import(${JSON.stringify(m.moduleUrl)}); const buffer = n.mapFd(3, ${sizeBytes}); const c = new Int32Array(buffer, ${cell.right.offset}, 4);`;

  // 1. Plain increments from two processes lose updates (when they overlap: tried up to 3 times on a busy
  //    machine); Atomics.add never does.
  const increments = 5_000_000;
  const race = async (slot: number, op: string): Promise<number> => {
    const script = `${prelude} Atomics.add(c, 1, 1); for (let s = 0; Atomics.load(c, 1) % 2 !== 0 && s < 1e9; s++); for (let i = 0; i < ${increments}; i++) ${op};`;
    Atomics.store(counter, 1, 0);
    Atomics.store(counter, slot, 0);
    await Promise.all([child(script, fd, {}), child(script, fd, {})]);
    t.log(`${op}: ${Atomics.load(counter, slot)} of ${2 * increments}`);
    return Atomics.load(counter, slot);
  };
  let plain = 2 * increments;
  for (let attempt = 0; attempt < 3 && plain === 2 * increments; attempt++) plain = await race(2, 'c[2]++');
  t.true(plain < 2 * increments, 'plain ++ lost increments: the processes really ran at the same time');
  t.is(await race(3, 'Atomics.add(c, 3, 1)'), 2 * increments, 'Atomics.add lost none');

  // 2. The slab hammer from two processes.
  Atomics.store(counter, 0, 0);
  Atomics.store(counter, 1, 0);
  const iterations = 200_000;
  const script = `${prelude} const { hammer } = await import('data:text/javascript,' + encodeURIComponent(process.env.HAMMER));
    process.stdout.write(JSON.stringify(hammer(buffer, c, Number(process.env.ME), ${iterations}, Number(process.env.ME) * 7919, 2)));`;
  const results = (await Promise.all([1, 2].map((me) => child(script, fd, { HAMMER, ME: String(me) })))).map((s) => JSON.parse(s) as HammerResult);
  t.log(results);
  t.is(Atomics.load(counter, 0), 2 * iterations);
  t.true(results.some((r) => r.endedAt - r.startedAt > iterations), 'the processes overlapped');
  for (const r of results) {
    t.is(r.torn, 0, 'no buffer held by two processes at once');
    t.is(r.rejected, 0);
  }
  t.deepEqual(p.stats(), before, 'the free space came back');
  t.deepEqual(p.audit(), []);
  p.free(999, cell.right.offset, cell.right.generation);
});

/** A child running one Endpoint: the pool on fd 3 (memfd), its hub link on fd 4 (one end of a socketpair). */
function endpointChild(m: Mapping, fd: number, sizeBytes: number, endpoint: number, body: string): { exited: Promise<string>; link: Socket } {
  const mod = (rel: string): string => JSON.stringify(new URL(rel, import.meta.url).href);
  const script = `
    const n = await import(${JSON.stringify(m.moduleUrl)});
    const { Pool } = await import(${mod('../src/datapath/pool.js')});
    const { Endpoint } = await import(${mod('../src/datapath/endpoint.js')});
    const { SocketLink } = await import(${mod('../src/datapath/frames.js')});
    const { realTimers } = await import(${mod('../src/ports/index.js')});
    const pool = Pool.attach(n.mapFd(3, ${sizeBytes}));
    if (pool._tag === 'Left') throw pool.left;
    const link = SocketLink.overFd(4); // as a proc host opens its inherited connection
    const ep = new Endpoint({ id: Number(process.env.EP), pool: pool.right, link, timers: realTimers });
    ${body}`;
  const cp = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', fd, 'pipe'], env: { ...process.env, EP: String(endpoint) } });
  let out = '';
  cp.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<string>((resolve, reject) => cp.on('exit', (code, sig) => (code === 0 || sig === 'SIGTERM' ? resolve(out) : reject(new Error(`child exited with ${code}`)))));
  return { exited, link: cp.stdio[4] as Socket };
}

maybe('pool processes - two proc hosts exchange descriptors through the hub over socketpairs, sharing one memfd pool', async (t) => {
  const m = mapping!;
  const sizeBytes = 8 << 20;
  const fd = m.memfd(sizeBytes);
  const formatted = Pool.format(m.map(fd, sizeBytes));
  if (formatted._tag === 'Left') throw formatted.left;
  const pool = formatted.right;
  const hub = new Hub();
  hub.attachPool('a', pool);
  const echo = endpointChild(m, fd, sizeBytes, 2, `ep.onMessage((q) => { const b = q.take(); void ep.sendBuffer(1, b, q.lengthBytes); });`);
  t.is(hub.attachSocket({ realm: 'a', endpoint: 2 }, echo.link)._tag, 'Right');
  const ping = endpointChild(m, fd, sizeBytes, 1, `
    let pong = () => {};
    let seen = 0;
    ep.onMessage((q) => { if (Buffer.from(q.bytes).readUInt32LE(0) === seen) seen++; q.release(); pong(); });
    const round = async (n) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const got = new Promise((r) => (pong = r));
        const b = Buffer.alloc(16); b.writeUInt32LE(i % 5000, 0);
        const r = await ep.send(2, b, { timeoutMs: 10000 });
        if (r._tag === 'Left') throw r.left;
        await got;
      }
      return Number(process.hrtime.bigint() - t0) / n / 1000;
    };
    await round(5000);
    seen = 0;
    const us = await round(5000);
    process.stdout.write(JSON.stringify({ us, seen }));
    ep.close();
    process.exit(0);`);
  t.is(hub.attachSocket({ realm: 'a', endpoint: 1 }, ping.link)._tag, 'Right');
  const result = JSON.parse(await ping.exited) as { us: number; seen: number };
  t.log(`hub round trip, 16 B, ping and echo in two processes, hub in a third: ${result.us.toFixed(1)} µs`);
  t.is(result.seen, 5000, 'every pong came back, in order, with its payload');
  echo.link.destroy();
  await echo.exited.catch(() => '');
  // The ping process exits right after its last pong, so a credit return still travelling to it may
  // find its endpoint gone: that is teardown, not loss. Every other reason must stay at zero.
  const { 'unknown-dst': _teardown, ...dropped } = hub.stats().dropped;
  t.deepEqual(Object.values(dropped).reduce((a, b) => a + b, 0), 0, JSON.stringify(hub.stats().dropped));
  t.is(pool.stats().bytesUsed, 0, 'every buffer was released by the processes themselves');
  t.deepEqual([pool.reclaim(1), pool.reclaim(2)], [{ buffers: 0, bytes: 0 }, { buffers: 0, bytes: 0 }]);
  t.deepEqual(pool.audit(), []);
  hub.close();
});
