import test from 'ava';
import fc from 'fast-check';
import type { NameRecord } from '../src/control/protocol/index.js';
import { Endpoint } from '../src/datapath/endpoint.js';
import { linkPair } from '../src/datapath/frames.js';
import { Hub } from '../src/datapath/hub.js';
import { Pool } from '../src/datapath/pool.js';
import { callId, parseId, responseId } from '../src/datapath/request-id.js';
import { CALL_TIMEOUT_TICK_MS, ProcData } from '../src/datapath/proc-data.js';
import { realTimers, virtualPorts } from '../src/ports/index.js';
import { BufferConsumedError, CallTimeoutError, CrossNodeTargetError, RemoteHandlerError, UnknownTargetError } from '../src/proc/data.js';
import { silent } from './helpers/actors.js';

/**
 * The proc author's data-path API (ProcData) over a real pool and the real hub, in one process
 * (in-process links stand for the host sockets; test/datapath-procs-*.test.ts runs it across processes).
 * After every test the pool is empty again: no path of the API leaks a buffer.
 */
function world() {
  const buf = new ArrayBuffer(16 << 20);
  const pool = Pool.format(buf);
  if (pool._tag === 'Left') throw pool.left;
  const hub = new Hub();
  hub.attachPool('r', pool.right);
  const names = new Map<string, number>();
  const lookup = async (key: string): Promise<NameRecord | undefined> => {
    if (key === 'r.far') return { realm: 'r', name: 'far', pid: 'q', actorPath: 'y', node: 'n2', endpoint: 77 };
    const ep = names.get(key);
    return ep === undefined ? undefined : { realm: 'r', name: key.slice(2), pid: 'p', actorPath: 'x', node: 'n1', endpoint: ep };
  };
  const procs: ProcData[] = [];
  const proc = (id: number, name?: string): ProcData => {
    const [mine, hubSide] = linkPair();
    const r = hub.attach({ realm: 'r', endpoint: id }, hubSide);
    if (r._tag === 'Left') throw r.left;
    const p = new ProcData({ endpoint: new Endpoint({ id, pool: pool.right, link: mine, timers: realTimers }), node: 'n1', realm: 'r', timers: realTimers, lookup, log: silent });
    if (name !== undefined) names.set(`r.${name}`, id);
    procs.push(p);
    return p;
  };
  const used = (): number => pool.right.stats().bytesUsed;
  return { pool: pool.right, proc, used, close: () => procs.forEach((p) => p.close()) };
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 5_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error(`never happened: ${what}`);
};

test('request ids - call ids round-trip and a response keeps the reply-to and sequence', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0x7fff_ffff }), fc.integer({ min: 1, max: 0x7fff_ffff }), fc.boolean(), (ep, seq, error) => {
      const id = callId(ep, seq);
      const p = parseId(id);
      const r = parseId(responseId(id, error));
      return !p.oneWay && !p.response && p.replyTo === ep && p.seq === seq && r.response && r.error === error && r.replyTo === ep && r.seq === seq;
    }),
  );
  t.true(parseId(0n).oneWay);
  t.throws(() => callId(0, 1), { instanceOf: RangeError });
  t.throws(() => callId(1, 0), { instanceOf: RangeError });
});

test('proc data - call, zero-copy echo, forward down a chain to the original caller; the pool is empty afterwards', async (t) => {
  const w = world();
  const client = w.proc(10);
  w.proc(11, 'echo').serve((m) => m);
  w.proc(12, 'last').serve((m) => `last got ${new TextDecoder().decode(m.bytes)}`);
  const first = w.proc(13, 'first');
  first.serve(async (m) => {
    m.bytes[0] = 'X'.charCodeAt(0);
    await first.forward('last', m);
  });
  t.is(new TextDecoder().decode(await client.call('echo', 'hello')), 'hello');
  const big = client.alloc(300_000);
  big.bytes.fill(9);
  t.is(await client.callWith('echo', big, (a) => a.length === 300_000 && a.every((b) => b === 9)), true);
  t.is(new TextDecoder().decode(await client.call('first', 'abc')), 'last got Xbc');
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 70_000 }), async (bytes) => {
      const back = await client.call({ node: 'n1', endpoint: 11 }, bytes);
      return back.length === bytes.length && back.every((b, i) => b === bytes[i]);
    }),
    { numRuns: 50 },
  );
  await until(() => w.used() === 0, 'every buffer back in the pool');
  t.is(w.used(), 0);
  w.close();
});

test('proc data - typed failures: unknown name, another node, a throwing handler, no handler, a timeout, a buffer sent twice', async (t) => {
  const w = world();
  const client = w.proc(20);
  w.proc(21, 'thrower').serve(() => {
    throw new Error('bad input');
  });
  w.proc(22, 'mute');
  const held: Array<() => void> = [];
  w.proc(23, 'stuck').serve(() => new Promise<undefined>((r) => held.push(() => r(undefined))));
  await t.throwsAsync(client.call('nobody', 'x'), { instanceOf: UnknownTargetError });
  await t.throwsAsync(client.send({ node: 'n2', endpoint: 5 }, 'x'), { instanceOf: CrossNodeTargetError });
  await t.throwsAsync(client.call('thrower', 'x'), { instanceOf: RemoteHandlerError, message: /bad input/ });
  await t.throwsAsync(client.call('mute', 'x'), { instanceOf: RemoteHandlerError, message: /no onData handler/ });
  await t.throwsAsync(client.call('stuck', 'x', { timeoutMs: 50 }), { instanceOf: CallTimeoutError });
  held.forEach((r) => r()); // the late answer is counted and freed, not delivered
  const b = client.alloc(10);
  await client.send('mute', b);
  await t.throwsAsync(client.send('mute', b), { instanceOf: BufferConsumedError });
  t.is(new TextDecoder().decode(await client.call('thrower', 'x').catch((e: Error) => new TextEncoder().encode(e.name))), 'RemoteHandlerError', 'the service still answers');
  await until(() => w.used() === 0, 'every buffer back in the pool');
  t.is(w.used(), 0);
  w.close();
});

test('proc data - a name whose endpoint did not answer is resolved again at its next call (it may have moved)', async (t) => {
  const w = world();
  const client = w.proc(40);
  const held: Array<() => void> = [];
  // Never answers (a stuck endpoint, or a dead one nothing announced): cached by the first call, which
  // times out; then the name moves to a proc that answers.
  w.proc(42, 'stuck-first').serve(() => new Promise<undefined>((r) => held.push(() => r(undefined))));
  await t.throwsAsync(client.call('stuck-first', 'x', { timeoutMs: 50 }), { instanceOf: CallTimeoutError });
  w.proc(43, 'stuck-first').serve((m) => m);
  t.is(new TextDecoder().decode(await client.call('stuck-first', 'moved', { timeoutMs: 1_000 })), 'moved', 'the moved name is found');
  held.forEach((r) => r());
  await until(() => w.used() === 0, 'every buffer back in the pool');
  t.is(w.used(), 0);
  w.close();
});

test('proc data - retain keeps a buffer past its handler until released; an exhausted pool is a typed error', async (t) => {
  const w = world();
  const client = w.proc(30);
  const kept: Array<{ release(): void }> = [];
  w.proc(31, 'keeper').serve((m) => {
    kept.push(m.retain());
    return 'kept';
  });
  await client.call('keeper', new Uint8Array(5000));
  await until(() => w.used() === 8192, 'the retained 8 KiB-class buffer is the only one in use');
  kept.forEach((k) => k.release());
  await until(() => w.used() === 0, 'released');
  const error = await t.throwsAsync(async () => {
    for (;;) client.alloc(1 << 20);
  });
  t.is((error as { type?: string }).type, 'pool-exhausted');
  t.is(w.pool.reclaim(30).buffers > 0, true);
  t.is(w.used(), 0);
  w.close();
});

test('proc data - without a node-to-node channel a target on another node fails typed, by name and by address, and nothing is sent or leaked', async (t) => {
  const w = world();
  const near = w.proc(40);
  await t.throwsAsync(near.call('far', 'x'), { instanceOf: CrossNodeTargetError, message: /node n2/ });
  const b = near.alloc(5);
  await t.throwsAsync(near.send({ node: 'n2', endpoint: 78 }, b), { instanceOf: CrossNodeTargetError, message: /node n2/ });
  b.release();
  t.is(w.used(), 0);
  w.close();
});

test('proc data - call timeouts come from one ticker: each call fails between its timeout and two ticks later, answered calls never, and the ticker stops when nothing waits', async (t) => {
  const { time } = virtualPorts(3);
  const buf = Pool.format(new ArrayBuffer(1 << 20));
  if (buf._tag === 'Left') throw buf.left;
  const [a, b] = linkPair();
  const lookup = async (): Promise<NameRecord> => ({ realm: 'r', name: 's', pid: 'p', actorPath: 'x', node: 'n1', endpoint: 2 });
  const client = new ProcData({ endpoint: new Endpoint({ id: 1, pool: buf.right, link: a, timers: time }), node: 'n1', realm: 'r', timers: time, lookup, log: silent });
  const server = new ProcData({ endpoint: new Endpoint({ id: 2, pool: buf.right, link: b, timers: time }), node: 'n1', realm: 'r', timers: time, lookup, log: silent });
  const held: Array<() => void> = [];
  server.serve((m) => (new TextDecoder().decode(m.bytes) === 'now' ? m : new Promise<undefined>((r) => held.push(() => r(undefined)))));
  const failedAt: Record<string, number> = {};
  const timing = (timeoutMs: number): Promise<void> =>
    client.call('s', 'hold', { timeoutMs }).then(
      () => t.fail(`the ${timeoutMs} ms call was answered`),
      (e: unknown) => {
        t.true(e instanceof CallTimeoutError, String(e));
        failedAt[timeoutMs] = time.nowMs();
      },
    );
  const calls = [timing(30), timing(75), timing(75), timing(200)];
  await time.advance(5);
  t.is(new TextDecoder().decode(await client.call('s', 'now', { timeoutMs: 10 })), 'now', 'an answered call does not time out');
  calls.push(timing(40)); // made 5 ms later, in the middle of a tick
  await time.run({ untilMs: 1_000 });
  await Promise.all(calls);
  for (const [ms, at] of [[30, failedAt[30]], [75, failedAt[75]], [200, failedAt[200]], [40, failedAt[40]! - 5]] as const) {
    t.true(at! >= ms && at! <= ms + 2 * CALL_TIMEOUT_TICK_MS, `the ${ms} ms call failed after ${at} ms`);
  }
  t.is(time.pending, 0, 'no timer left once no call waits');
  held.forEach((r) => r());
  client.close();
  server.close();
});
