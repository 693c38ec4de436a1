import test, { type ExecutionContext } from 'ava';
import { ClosedError, DisconnectedError, InvalidArgumentError, KeyExistsError, NatsPortError, NoRespondersError, SlowConsumerError, TimeoutError, WrongRevisionError } from '../src/nats/errors.js';
import type { Bus, BusStatus, KvChange, Msg } from '../src/nats/types.js';
import { realWorld, simWorld, stopSharedServer, type NatsWorld } from './helpers/nats-server.js';

/**
 * One contract, run against a real nats-server and against the simulated NATS on virtual time: the
 * simulator may only be trusted where it behaves like the real thing. Where it knowingly differs,
 * src/sim/nats.ts says so; nothing here depends on those differences. The simulator's fault
 * injection and the server launcher have tests of their own at the end ("sim only", "server").
 */

test.after.always(stopSharedServer);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));
let seq = 0;
const fresh = (p: string): string => `${p}${process.pid}x${seq++}`;

/**
 * Reads a single-consumer iterable in steps without ending it (leaving a for-await loop would: a
 * reader that leaves gives the subscription up, as with nats.js).
 */
function reader<T>(it: AsyncIterable<T>): { take(n: number): Promise<T[]> } {
  const i = it[Symbol.asyncIterator]();
  return {
    async take(n) {
      const out: T[] = [];
      while (out.length < n) {
        const r = await i.next();
        if (r.done === true) break;
        out.push(r.value);
      }
      return out;
    },
  };
}

/** Takes n items, then leaves (ending the iterable). */
async function take<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  if (n === 0) return out;
  for await (const x of it) {
    out.push(x);
    if (out.length === n) break;
  }
  return out;
}

/** Polls `cond` in the world's time until it holds or `boundMs` passed (a generous liveness bound). */
async function until(w: NatsWorld, cond: () => boolean | Promise<boolean>, boundMs = 10_000): Promise<boolean> {
  for (let waited = 0; waited <= boundMs; waited += 25) {
    if (await cond()) return true;
    await w.sleep(25);
  }
  return false;
}

type Case = (t: ExecutionContext, w: NatsWorld) => Promise<void>;
const cases: [string, Case][] = [];
const contract = (name: string, fn: Case): void => void cases.push([name, fn]);

contract('subjects with * and > wildcards; headers travel', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const root = fresh('orders');
  const star = b!.subscribe(`${root}.*`);
  const rest = b!.subscribe(`${root}.>`);
  await b!.flush();
  a!.publish(`${root}.new`, enc('1'), { headers: { 'X-Trace': 't1' } });
  a!.publish(`${root}.eu.new`, enc('2'));
  a!.publish(`other.${root}`, enc('x'));
  const s = await take(star, 1);
  t.deepEqual(s.map((m) => dec(m.data)), ['1']);
  t.is(s[0]!.headers?.['X-Trace'], 't1');
  t.deepEqual((await take(rest, 2)).map((m) => [m.subject, dec(m.data)]), [[`${root}.new`, '1'], [`${root}.eu.new`, '2']]);
});

contract('a queue group delivers each message to exactly one member; a plain subscriber gets all', async (t, w) => {
  const [a, b, c] = await w.clients('a', 'b', 'c');
  const subject = fresh('work.');
  const members = [b!.subscribe(subject, { queue: 'q' }), c!.subscribe(subject, { queue: 'q' }), c!.subscribe(subject, { queue: 'q' })];
  const all = b!.subscribe(subject);
  const got: string[] = [];
  for (const m of members) void (async () => { for await (const x of m) got.push(dec(x.data)!); })();
  await b!.flush();
  await c!.flush();
  for (let i = 0; i < 30; i++) a!.publish(subject, enc(String(i)));
  const everything = await take(all, 30);
  t.true(await until(w, () => got.length >= 30));
  await w.sleep(50);
  t.deepEqual([...got].sort((x, y) => Number(x) - Number(y)), Array.from({ length: 30 }, (_, i) => String(i)));
  t.is(everything.length, 30);
  members.forEach((m) => m.unsubscribe());
});

contract('request/reply with headers, no responders, timeout', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const subject = fresh('svc.');
  const sub = b!.subscribe(subject);
  void (async () => { for await (const m of sub) m.respond(enc(`re:${dec(m.data)}`), { headers: { 'X-Echo': m.headers?.['X-Q'] ?? '' } }); })();
  await b!.flush();
  const reply = await a!.request(subject, enc('ping'), { timeoutMs: 5_000, headers: { 'X-Q': 'q1' } });
  t.is(dec(reply.data), 're:ping');
  t.is(reply.headers?.['X-Echo'], 'q1');
  const none = await t.throwsAsync(a!.request(fresh('nobody.'), enc('?'), { timeoutMs: 5_000 }), { instanceOf: NoRespondersError });
  t.is(none?.type, 'no-responders');
  const muteSubject = fresh('mute.');
  const mute = b!.subscribe(muteSubject); // subscribed, never answers
  await b!.flush();
  const late = await t.throwsAsync(a!.request(muteSubject, enc('?'), { timeoutMs: 200 }), { instanceOf: TimeoutError });
  t.is(late?.type, 'timeout');
  sub.unsubscribe();
  mute.unsubscribe();
});

contract('a subscription is bounded: overflow is dropped and counted (or ends it with SlowConsumerError)', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const statuses: BusStatus[] = [];
  b!.onStatus((s) => statuses.push(s));
  const subject = fresh('flood.');
  const dropping = b!.subscribe(subject, { pendingMax: 5 });
  const failing = b!.subscribe(subject, { pendingMax: 5, overflow: 'error' });
  await b!.flush();
  for (let i = 0; i < 20; i++) a!.publish(subject, enc(String(i)));
  await a!.flush();
  t.true(await until(w, () => dropping.pending + dropping.dropped === 20));
  t.is(dropping.pending, 5);
  t.is(dropping.dropped, 15);
  t.deepEqual((await take(dropping, 5)).map((m) => dec(m.data)), ['0', '1', '2', '3', '4']);
  const err = await failing.closed;
  t.true(err instanceof SlowConsumerError);
  t.deepEqual(await take(failing, 1), []); // ended: the loop just exits
  t.true(await until(w, () => statuses.some((s) => s.type === 'slow-consumer' && s.subject === subject)));
});

contract('a subscription has one reader; bad input is refused with InvalidArgumentError', async (t, w) => {
  const [a] = await w.clients('a');
  const sub = a!.subscribe(fresh('one.'));
  sub[Symbol.asyncIterator]();
  t.throws(() => sub[Symbol.asyncIterator](), { instanceOf: InvalidArgumentError });
  sub.unsubscribe();
  t.throws(() => a!.publish('bad..subject', enc('x')), { instanceOf: InvalidArgumentError });
  t.throws(() => a!.publish('wild.*', enc('x')), { instanceOf: InvalidArgumentError });
  t.throws(() => a!.subscribe('a.>.b'), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(a!.kv('bad bucket'), { instanceOf: InvalidArgumentError });
  const kv = await a!.kv(fresh('inputs'));
  await t.throwsAsync(kv.put('.leading', enc('x')), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(kv.update('k', enc('x'), 0), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(a!.request('svc', enc('x'), { timeoutMs: -1 }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(a!.stream(fresh('S'), { subjects: [] }), { instanceOf: InvalidArgumentError });
});

contract('KV: create-if-absent, CAS, increasing revisions, delete, purge, keys', async (t, w) => {
  const [a] = await w.clients('a');
  const kv = await a!.kv(fresh('contract'));
  const r1 = await kv.create('k', enc('v1'));
  const exists = await t.throwsAsync(kv.create('k', enc('again')), { instanceOf: KeyExistsError });
  t.is(exists?.type, 'key-exists');
  const r2 = await kv.update('k', enc('v2'), r1);
  t.true(r2 > r1);
  const stale = await t.throwsAsync(kv.update('k', enc('stale'), r1), { instanceOf: WrongRevisionError });
  t.is(stale?.type, 'wrong-revision');
  t.deepEqual(await kv.get('k').then((e) => e && [e.key, dec(e.value), e.revision]), ['k', 'v2', r2]);
  t.is(await kv.get('never'), null);
  const r3 = await kv.put('procs.p1', enc('o'));
  t.true(r3 > r2);
  await kv.put('procs.p2', enc('o'));
  t.deepEqual((await kv.keys()).sort(), ['k', 'procs.p1', 'procs.p2']);
  t.deepEqual((await kv.keys('procs.>')).sort(), ['procs.p1', 'procs.p2']);
  await t.throwsAsync(kv.delete('k', r1), { instanceOf: WrongRevisionError });
  await kv.delete('k', r2);
  t.is(await kv.get('k'), null);
  t.deepEqual((await kv.keys()).sort(), ['procs.p1', 'procs.p2']);
  const r4 = await kv.create('k', enc('reborn')); // create after delete works
  t.true(r4 > r3);
  await kv.purge('procs.p1');
  t.is(await kv.get('procs.p1'), null);
  await kv.create('procs.p1', enc('after purge'));
  t.is(dec((await kv.get('procs.p1'))!.value), 'after purge');
});

contract('KV: clients opening one new bucket at the same instant all get it, and share it', async (t, w) => {
  const clients = await w.clients('k1', 'k2', 'k3', 'k4', 'k5', 'k6');
  const name = fresh('raced');
  const kvs = await Promise.all(clients.map((c) => c!.kv(name)));
  await kvs[0]!.put('k', enc('v'));
  for (const kv of kvs) t.is(dec((await kv.get('k'))?.value ?? null), 'v');
});

contract('KV watch: history, latest (with delete markers) and updates, by key filter, in revision order', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const name = fresh('watched');
  const kv = await a!.kv(name, { history: 3 });
  await kv.put('procs.x', enc('0'));
  await kv.put('procs.x', enc('1'));
  await kv.put('procs.y', enc('y'));
  await kv.delete('procs.y');
  await kv.put('other', enc('-'));
  const kvb = await b!.kv(name);
  const history = await kvb.watch({ key: 'procs.>', include: 'history' });
  const latest = await kvb.watch({ key: 'procs.>', include: 'latest' });
  const updates = await kvb.watch({ key: 'procs.*' });
  await kv.put('procs.x', enc('2'));
  await kv.put('other', enc('--'));
  await kv.delete('procs.x');
  // caughtUp: false for replayed entries but the last, which ends the initial state.
  const row = (e: KvChange) => [e.key, e.operation, dec(e.value), e.caughtUp];
  const h = await take(history, 6);
  t.deepEqual(h.map(row), [
    ['procs.x', 'PUT', '0', false],
    ['procs.x', 'PUT', '1', false],
    ['procs.y', 'PUT', 'y', false],
    ['procs.y', 'DEL', null, true],
    ['procs.x', 'PUT', '2', true],
    ['procs.x', 'DEL', null, true],
  ]);
  t.true(h.every((e, i) => i === 0 || e.revision > h[i - 1]!.revision));
  t.deepEqual((await take(latest, 4)).map(row), [
    ['procs.x', 'PUT', '1', false],
    ['procs.y', 'DEL', null, true],
    ['procs.x', 'PUT', '2', true],
    ['procs.x', 'DEL', null, true],
  ]);
  t.deepEqual((await take(updates, 2)).map(row), [
    ['procs.x', 'PUT', '2', true],
    ['procs.x', 'DEL', null, true],
  ]);
});

contract('KV watch stop() ends the reader loop', async (t, w) => {
  const [a] = await w.clients('a');
  const kv = await a!.kv(fresh('stopped'));
  const watch = await kv.watch({});
  const loop = (async () => {
    let n = 0;
    for await (const _ of watch) n++;
    return n;
  })();
  await kv.put('k', enc('1'));
  t.true(await until(w, async () => (await kv.get('k')) !== null));
  await w.sleep(100);
  watch.stop();
  t.is(await loop, 1);
  t.is(await watch.closed, null);
});

contract('KV bucket TTL: a key not renewed disappears, and can then be created again', async (t, w) => {
  const [a] = await w.clients('a');
  const kv = await a!.kv(fresh('leases'), { ttlMs: 1_000 });
  const rev = await kv.create('lease', enc('me'));
  t.not(await kv.get('lease'), null);
  t.true(await until(w, async () => (await kv.get('lease')) === null, 15_000));
  t.deepEqual(await kv.keys(), []);
  const next = await kv.create('lease', enc('next holder'));
  t.true(next > rev); // revisions stay monotonic across expiry: fencing tokens keep working
});

contract('stream: msgId dedup, info, ordered read from a sequence and by filter, live follow', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const name = fresh('EVENTS');
  const root = fresh('ev');
  const s = await a!.stream(name, { subjects: [`${root}.>`] });
  const p1 = await s.publish(`${root}.x`, enc('1'), { msgId: 'm1' });
  const p2 = await s.publish(`${root}.y`, enc('2'), { msgId: 'm2' });
  const again = await s.publish(`${root}.x`, enc('1 again'), { msgId: 'm1' });
  t.deepEqual([p1.duplicate, p2.duplicate, again.duplicate], [false, false, true]);
  t.is(again.seq, p1.seq);
  await s.publish(`${root}.x`, enc('3'), { headers: { 'X-K': 'v' } });
  t.deepEqual(await s.info(), { messages: 3, firstSeq: 1, lastSeq: 3 });
  await t.throwsAsync(s.publish('elsewhere.x', enc('?')), { instanceOf: InvalidArgumentError });
  const sb = await b!.stream(name, { subjects: ['ignored.>'] }); // binds: an existing stream keeps its config
  const fromTwo = sb.read({ fromSeq: 2 });
  const two = await take(fromTwo, 2);
  t.deepEqual(two.map((m) => [m.seq, dec(m.data)]), [[2, '2'], [3, '3']]);
  t.is(two[1]!.headers?.['X-K'], 'v');
  const onlyX = sb.read({ filter: `${root}.x` });
  const live = sb.read({ fromSeq: 4 });
  await s.publish(`${root}.x`, enc('4'));
  t.deepEqual((await take(onlyX, 3)).map((m) => [m.seq, dec(m.data)]), [[1, '1'], [3, '3'], [4, '4']]);
  t.deepEqual((await take(live, 1)).map((m) => m.seq), [4]);
  await t.throwsAsync(b!.stream(fresh('OVERLAP'), { subjects: [`${root}.x`] }), { instanceOf: InvalidArgumentError });
});

contract('stream subjects are ordinary subjects: core publishes are stored, stored messages reach subscribers', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const root = fresh('cap');
  const s = await a!.stream(fresh('CAP'), { subjects: [`${root}.>`] });
  const sub = b!.subscribe(`${root}.>`);
  await b!.flush();
  a!.publish(`${root}.core`, enc('c'));
  await a!.flush();
  t.true(await until(w, async () => (await s.info()).messages === 1));
  await s.publish(`${root}.js`, enc('j'));
  t.deepEqual((await take(sub, 2)).map((m) => dec(m.data)), ['c', 'j']);
});

contract('durable consumer: acked once, nak and ack-wait redeliver, readers share it, work queue forgets acked', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const root = fresh('jobs');
  const s = await a!.stream(fresh('JOBS'), { subjects: [`${root}.>`], retention: 'workqueue' });
  for (let i = 1; i <= 4; i++) await s.publish(`${root}.r1`, enc(String(i)));
  const c = await s.consumer('workers', { ackWaitMs: 1_000 });
  const first = c.consume({ pullMax: 10 });
  const r1 = reader(first);
  const got = await r1.take(4);
  t.deepEqual(got.map((m) => [m.seq, m.deliveryCount]), [[1, 1], [2, 1], [3, 1], [4, 1]]);
  got[0]!.ack();
  got[1]!.ack();
  got[2]!.nak();
  // 3 comes back at once (nak), 4 once its ack wait is over; both on their second delivery.
  const again = await r1.take(2);
  t.deepEqual(again.map((m) => [m.seq, m.deliveryCount]), [[3, 2], [4, 2]]);
  again.forEach((m) => m.ack());
  t.true(await until(w, async () => (await s.info()).messages === 0)); // a work queue forgets acked messages
  first.stop();
  t.is(await first.closed, null);
  // Two readers, in two connections, on one durable: each message reaches one of them.
  const cb = await (await b!.stream(s.name, { subjects: [`${root}.>`] })).consumer('workers');
  const seen: number[] = [];
  for (const it of [c.consume({ pullMax: 2 }), cb.consume({ pullMax: 2 })]) {
    void (async () => {
      for await (const m of it) {
        seen.push(m.seq);
        m.ack();
      }
    })();
  }
  for (let i = 5; i <= 10; i++) await s.publish(`${root}.r2`, enc(String(i)));
  t.true(await until(w, async () => seen.length >= 6 && (await s.info()).messages === 0));
  await w.sleep(1_500); // past the ack wait: nothing comes twice
  t.deepEqual([...seen].sort((x, y) => x - y), [5, 6, 7, 8, 9, 10]);
});

contract('drain hands over what arrived, then closes; a closed bus refuses work with ClosedError', async (t, w) => {
  const [a, b] = await w.clients('a', 'b');
  const subject = fresh('drain.');
  const sub = b!.subscribe(subject);
  await b!.flush();
  for (let i = 0; i < 5; i++) a!.publish(subject, enc(String(i)));
  await a!.flush();
  t.true(await until(w, () => sub.pending === 5));
  const statuses: BusStatus[] = [];
  b!.onStatus((s) => statuses.push(s));
  await b!.drain();
  const rest: Msg[] = [];
  for await (const m of sub) rest.push(m);
  t.is(rest.length, 5);
  t.is(await b!.closed, null);
  t.is(await sub.closed, null);
  t.throws(() => b!.publish(subject, enc('x')), { instanceOf: ClosedError });
  await t.throwsAsync(b!.request(subject, enc('x'), { timeoutMs: 100 }), { instanceOf: ClosedError });
  await t.throwsAsync(b!.kv(fresh('late')), { instanceOf: ClosedError });
  t.true(await until(w, () => statuses.some((s) => s.type === 'closed')));
});

for (const [name, fn] of cases) {
  test(`real - ${name}`, async (t) => {
    const w = await realWorld();
    try {
      await fn(t, w);
    } finally {
      await w.stop();
    }
  });
  test(`sim - ${name}`, async (t) => {
    const w = simWorld(11);
    try {
      await fn(t, w);
    } finally {
      await w.stop();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// sim only: the simulator's faults, on virtual time (exact times are fine to assert here: they are
// computed, not measured).

test('sim only - a partitioned client is cut off both ways, sees disconnect/reconnect, and heals', async (t) => {
  const w = simWorld(3, { latencyMs: 1, jsTimeoutMs: 2_000 });
  const [a, b] = (await w.clients('a', 'b')) as [Bus, Bus];
  const statuses: string[] = [];
  b.onStatus((s) => statuses.push(s.type));
  const sub = b.subscribe('svc');
  void (async () => { for await (const m of sub) m.respond(m.data); })();
  const kvb = await b.kv('cut');
  await b.flush();
  t.is(dec((await a.request('svc', enc('1'), { timeoutMs: 50 })).data), '1');
  w.sim.partition('b');
  // The server dropped b's interest: nobody answers. b's own calls go nowhere and time out.
  t.is((await t.throwsAsync(a.request('svc', enc('2'), { timeoutMs: 50 })))?.name, 'NoRespondersError');
  const t0 = w.ports.time.nowMs();
  await t.throwsAsync(kvb.put('k', enc('lost')), { instanceOf: TimeoutError });
  t.is(w.ports.time.nowMs() - t0, 2_000); // exactly jsTimeoutMs of virtual time
  await t.throwsAsync(b.request('svc', enc('3'), { timeoutMs: 50 }), { instanceOf: TimeoutError });
  await t.throwsAsync(b.flush(), { instanceOf: DisconnectedError });
  w.sim.partition('b', false);
  await b.flush();
  t.is(dec((await a.request('svc', enc('4'), { timeoutMs: 50 })).data), '4');
  t.deepEqual(statuses, ['disconnect', 'reconnect']);
  await w.stop();
});

test('sim only - server down: everyone is cut off, JetStream state survives the restart', async (t) => {
  const w = simWorld(4, { latencyMs: 1, jsTimeoutMs: 1_000 });
  const [a] = (await w.clients('a')) as [Bus];
  const kv = await a.kv('durable');
  await kv.put('k', enc('before'));
  w.sim.down = true;
  await t.throwsAsync(kv.get('k'), { instanceOf: TimeoutError });
  w.sim.down = false;
  t.is(dec((await kv.get('k'))!.value), 'before');
  await w.stop();
});

test('sim only - link faults: delay is exact, drop loses, duplicate doubles, all counted', async (t) => {
  const w = simWorld(5, { latencyMs: 1 });
  const [a, b] = (await w.clients('a', 'b')) as [Bus, Bus];
  const sub = b.subscribe('f.>');
  const r = reader(sub);
  await b.flush();
  w.sim.setFaults('b', { delayMs: 50 });
  const sent = w.ports.time.nowMs();
  a.publish('f.delay', enc('d'));
  await r.take(1);
  t.is(w.ports.time.nowMs() - sent, 1 + 1 + 50); // a's hop, then b's delayed hop
  w.sim.setFaults('b', { duplicateRate: 1 });
  a.publish('f.dup', enc('x'));
  t.deepEqual((await r.take(2)).map((m) => m.subject), ['f.dup', 'f.dup']);
  w.sim.setFaults('b', undefined);
  w.sim.setFaults('a', { dropRate: 1 });
  a.publish('f.lost', enc('?'));
  w.sim.setFaults('a', undefined);
  a.publish('f.after', enc('!'));
  t.deepEqual((await r.take(1)).map((m) => m.subject), ['f.after']);
  t.is(w.sim.network.lost.core, 1);
  await w.stop();
});

test('sim only - jitter keeps a link FIFO unless reorder is on', async (t) => {
  async function order(reorder: boolean): Promise<number[]> {
    const w = simWorld(6, { latencyMs: 1, faults: { jitterMs: 20, reorder } });
    const [a, b] = (await w.clients('a', 'b')) as [Bus, Bus];
    const sub = b.subscribe('seq');
    await b.flush();
    for (let i = 0; i < 20; i++) a.publish('seq', enc(String(i)));
    const got = (await reader(sub).take(20)).map((m) => Number(dec(m.data)));
    await w.stop();
    return got;
  }
  const fifo = Array.from({ length: 20 }, (_, i) => i);
  t.deepEqual(await order(false), fifo);
  const shuffled = await order(true);
  t.notDeepEqual(shuffled, fifo);
  t.deepEqual([...shuffled].sort((x, y) => x - y), fifo);
});

test('sim only - a lost answer: the write happened, the caller timed out (the ambiguity clients must handle)', async (t) => {
  const w = simWorld(7, { latencyMs: 1, jsTimeoutMs: 500 });
  const [a] = (await w.clients('a')) as [Bus];
  const kv = await a.kv('ambiguous');
  let dropNext = true;
  w.sim.network.hook = (e) => (e.kind === 'js-api' && e.direction === 'down' && dropNext ? ((dropNext = false), { drop: true }) : undefined);
  await t.throwsAsync(kv.create('lease', enc('me')), { instanceOf: TimeoutError });
  t.is(dec((await kv.get('lease'))!.value), 'me');
  await t.throwsAsync(kv.create('lease', enc('me again')), { instanceOf: KeyExistsError });
  await w.stop();
});

test('sim only - a watch cut off by a partition catches up in order after the heal', async (t) => {
  const w = simWorld(8, { latencyMs: 1 });
  const [a, b] = (await w.clients('a', 'b')) as [Bus, Bus];
  const kv = await a.kv('names', { history: 5 });
  const watch = reader(await (await b.kv('names')).watch({ key: 'svc.>' }));
  await kv.put('svc.x', enc('1'));
  t.deepEqual((await watch.take(1)).map((e) => dec(e.value)), ['1']);
  w.sim.partition('b');
  await kv.put('svc.x', enc('2'));
  await kv.put('svc.y', enc('3'));
  await w.sleep(1_000);
  w.sim.partition('b', false);
  t.deepEqual((await watch.take(2)).map((e) => [e.key, dec(e.value)]), [['svc.x', '2'], ['svc.y', '3']]);
  await w.stop();
});

test('sim only - a lost ack makes a durable consumer redeliver', async (t) => {
  const w = simWorld(9, { latencyMs: 1 });
  const [a] = (await w.clients('a')) as [Bus];
  const s = await a.stream('Q', { subjects: ['q.>'] });
  await s.publish('q.1', enc('job'));
  const r = reader((await s.consumer('c', { ackWaitMs: 300 })).consume());
  const [m] = await r.take(1);
  w.sim.network.hook = (e) => (e.kind === 'js-api' && e.direction === 'up' ? { drop: true } : undefined);
  m!.ack();
  w.sim.network.hook = undefined;
  const [again] = await r.take(1);
  t.deepEqual([again!.seq, again!.deliveryCount], [1, 2]);
  await w.stop();
});

test('sim only - the same seed replays the same run, faults included; another seed differs', async (t) => {
  async function run(seed: number): Promise<string[]> {
    const { virtualPorts } = await import('../src/ports/index.js');
    const { SimNats } = await import('../src/sim/nats.js');
    const ports = virtualPorts(seed);
    const sim = new SimNats(ports, { latencyMs: 1, faults: { jitterMs: 3, dropRate: 0.1, duplicateRate: 0.1 } });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => sim.connect(n)) as [Bus, Bus, Bus];
    const trace: string[] = [];
    for (const [bus, n] of [[b, 'b1'], [b, 'b2'], [c, 'c1']] as const) {
      const sub = bus.subscribe('work.>', { queue: 'workers' });
      void (async () => { for await (const m of sub) trace.push(`${ports.time.nowMs().toFixed(3)} ${n} ${dec(m.data)}`); })();
    }
    for (let i = 0; i < 60; i++) ports.time.setTimeout(() => a.publish(`work.${i % 3}`, enc(String(i))), 5 + i);
    await ports.time.run({ untilMs: 500 });
    return trace;
  }
  const first = await run(42);
  t.true(first.length > 30);
  t.deepEqual(await run(42), first);
  t.notDeepEqual(await run(43), first);
});

test('sim only - after many overwrites and evictions the store still answers right (its index compacts)', async (t) => {
  const w = simWorld(10, { latencyMs: 0 });
  const [a] = (await w.clients('a')) as [Bus];
  const kv = await a.kv('churn');
  for (let i = 0; i < 10_000; i++) await kv.put(`k${i % 10}`, enc(String(i)));
  const latest = await take(await kv.watch({ include: 'latest' }), 10);
  t.deepEqual(latest.map((e) => [e.key, dec(e.value)]).sort(), Array.from({ length: 10 }, (_, k) => [`k${k}`, String(9_990 + k)]));
  const s = await a.stream('CHURN', { subjects: ['churn.>'], msgsMax: 100 });
  for (let i = 0; i < 10_000; i++) await s.publish('churn.x', enc(String(i)));
  t.deepEqual(await s.info(), { messages: 100, firstSeq: 9_901, lastSeq: 10_000 });
  t.deepEqual((await take(s.read(), 100)).map((m) => m.seq), Array.from({ length: 100 }, (_, i) => 9_901 + i));
  await w.stop();
});

// ---------------------------------------------------------------------------------------------
// server: the launcher of the real binary.

test('server - port 0 picks a free port; stop() ends the process and removes the temporary store', async (t) => {
  const { startNatsServer } = await import('../src/nats/server.js');
  const { existsSync } = await import('node:fs');
  const s = await startNatsServer({ port: 0 });
  t.true(s.port > 0);
  t.true(existsSync(s.dataDir));
  const bus = (await import('../src/nats/real.js')).connectBus({ servers: [s.url], name: 'probe' });
  await (await bus).close();
  await s.stop();
  t.false(existsSync(s.dataDir));
  t.false(alive(s.pid));
});

test('server - a missing binary is a typed error naming the package to install', async (t) => {
  const { startNatsServer } = await import('../src/nats/server.js');
  const e = await t.throwsAsync(startNatsServer({ binary: '/nonexistent/nats-server' }), { instanceOf: NatsPortError });
  t.is(e?.type, 'server-missing');
  t.regex(e!.message, /apt-get install nats-server/);
});

test('server - no orphans: when the process that started it is killed -9, the server goes too', async (t) => {
  const { spawn } = await import('node:child_process');
  const script = `import { startNatsServer } from ${JSON.stringify(new URL('../src/nats/server.js', import.meta.url).href)}; const s = await startNatsServer(); console.log(s.pid); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  t.true(alive(pid));
  child.kill('SIGKILL');
  let gone = false;
  for (let i = 0; i < 200 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gone = !alive(pid);
  }
  t.true(gone);
});

test('server - a restart on the same port and store: the client reconnects by itself, KV state and subscriptions survive', async (t) => {
  const { startNatsServer } = await import('../src/nats/server.js');
  const { connectBus } = await import('../src/nats/real.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dataDir = mkdtempSync(join(tmpdir(), 'sigma-nats-restart-'));
  let s = await startNatsServer({ dataDir });
  const bus = await connectBus({ servers: [s.url], name: 'survivor', reconnectWaitMs: 100, jsTimeoutMs: 1_000 });
  const statuses: string[] = [];
  bus.onStatus((x) => statuses.push(x.type));
  const kv = await bus.kv('restart');
  const rev = await kv.put('k', enc('kept'));
  const sub = bus.subscribe('still.here');
  const r = reader(sub);
  await s.stop();
  for (let i = 0; i < 100 && !statuses.includes('disconnect'); i++) await new Promise((r) => setTimeout(r, 20));
  await t.throwsAsync(bus.flush(), { instanceOf: DisconnectedError });
  s = await startNatsServer({ dataDir, port: s.port });
  const wrote = async (): Promise<boolean> => kv.put('k2', enc('after')).then(() => true, () => false);
  let ok = false;
  for (let i = 0; i < 100 && !ok; i++) ok = await wrote();
  t.true(ok);
  t.is((await kv.get('k'))?.revision, rev);
  bus.publish('still.here', enc('yes'));
  t.deepEqual((await r.take(1)).map((m) => dec(m.data)), ['yes']);
  t.true(statuses.includes('disconnect') && statuses.includes('reconnect'));
  await bus.close();
  await s.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
