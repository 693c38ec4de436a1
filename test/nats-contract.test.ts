import test from 'ava';
import { NatsPortError } from '../src/nats/errors.js';
import { connectBus } from '../src/nats/real.js';
import { startNatsServer, type NatsServer } from '../src/nats/server.js';
import type { Bus, KvEntry } from '../src/nats/types.js';
import { SeededRandom, realClock, realTimers } from '../src/ports/index.js';
import { SimNats } from '../src/sim/nats.js';

/**
 * One set of cases, run against a real nats-server and against the simulator's NATS: the simulator
 * may only be trusted where it behaves like the real thing.
 */
interface Impl {
  name: string;
  clients(): Promise<[Bus, Bus]>;
}

let server: NatsServer | undefined;
const open: Bus[] = [];

const impls: Impl[] = [
  {
    name: 'real',
    async clients() {
      server ??= await startNatsServer();
      const a = await connectBus({ servers: [server.url], name: 'a' });
      const b = await connectBus({ servers: [server.url], name: 'b' });
      open.push(a, b);
      return [a, b];
    },
  },
  {
    name: 'sim',
    async clients() {
      const sim = new SimNats({ clock: realClock, timers: realTimers, random: new SeededRandom(7) });
      return [sim.connect('a'), sim.connect('b')];
    },
  },
];

test.after.always(async () => {
  for (const b of open) await b.close();
  await server?.stop();
});

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
const settle = () => new Promise((r) => setTimeout(r, 50));
let seq = 0;
const fresh = (p: string) => `${p}${seq++}`;

async function collect<T>(it: AsyncIterable<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) {
    out.push(x);
    if (out.length === n) break;
  }
  return out;
}

for (const impl of impls) {
  test.serial(`${impl.name} - subjects with * and > wildcards`, async (t) => {
    const [a, b] = await impl.clients();
    const star = b.subscribe('orders.*');
    const rest = b.subscribe('orders.>');
    await settle();
    a.publish('orders.new', enc('1'));
    a.publish('orders.eu.new', enc('2'));
    a.publish('other.new', enc('x'));
    t.deepEqual((await collect(star, 1)).map((m) => dec(m.data)), ['1']);
    t.deepEqual((await collect(rest, 2)).map((m) => dec(m.data)), ['1', '2']);
    star.unsubscribe();
    rest.unsubscribe();
  });

  test.serial(`${impl.name} - a queue group delivers each message to exactly one member`, async (t) => {
    const [a, b] = await impl.clients();
    const subject = fresh('work.');
    const members = [b.subscribe(subject, { queue: 'q' }), b.subscribe(subject, { queue: 'q' })];
    const got: string[] = [];
    for (const m of members) void (async () => { for await (const x of m) got.push(dec(x.data)!); })();
    await settle();
    for (let i = 0; i < 20; i++) a.publish(subject, enc(String(i)));
    for (let i = 0; i < 100 && got.length < 20; i++) await settle();
    t.deepEqual([...got].sort((x, y) => Number(x) - Number(y)), Array.from({ length: 20 }, (_, i) => String(i)));
    members.forEach((m) => m.unsubscribe());
  });

  test.serial(`${impl.name} - request/reply, no responders, timeout`, async (t) => {
    const [a, b] = await impl.clients();
    const subject = fresh('svc.');
    const sub = b.subscribe(subject);
    void (async () => { for await (const m of sub) m.respond(enc(`re:${dec(m.data)}`)); })();
    await settle();
    t.is(dec((await a.request(subject, enc('ping'), { timeoutMs: 2000 })).data), 're:ping');
    const none = await t.throwsAsync(a.request(fresh('nobody.'), enc('?'), { timeoutMs: 2000 }), { instanceOf: NatsPortError });
    t.is(none?.type, 'no-responders');
    const muteSubject = fresh('mute.');
    const mute = b.subscribe(muteSubject); // a subscriber that never answers
    await settle();
    const late = await t.throwsAsync(a.request(muteSubject, enc('?'), { timeoutMs: 100 }), { instanceOf: NatsPortError });
    t.is(late?.type, 'timeout');
    sub.unsubscribe();
    mute.unsubscribe();
  });

  test.serial(`${impl.name} - KV create, CAS, revisions, delete, keys`, async (t) => {
    const [a] = await impl.clients();
    const kv = await a.kv(fresh('contract'));
    const r1 = await kv.create('k', enc('v1'));
    t.is((await t.throwsAsync(kv.create('k', enc('again')), { instanceOf: NatsPortError }))?.type, 'key-exists');
    const r2 = await kv.update('k', enc('v2'), r1);
    t.true(r2 > r1);
    t.is((await t.throwsAsync(kv.update('k', enc('stale'), r1), { instanceOf: NatsPortError }))?.type, 'wrong-revision');
    t.is(dec((await kv.get('k'))!.value), 'v2');
    await kv.put('other', enc('o'));
    t.deepEqual((await kv.keys()).sort(), ['k', 'other']);
    await kv.delete('k');
    t.is(await kv.get('k'), null);
    t.deepEqual(await kv.keys(), ['other']);
    // Not in the contract: create right after delete of the same key, which nats.js 3 on 2.9 can leave
    // pending forever. The control plane never relies on it (the lease releases with a marker).
  });

  test.serial(`${impl.name} - KV watch: history first when asked, then updates in order`, async (t) => {
    const [a, b] = await impl.clients();
    const name = fresh('watched');
    const kv = await a.kv(name);
    await kv.put('x', enc('0'));
    const seen: KvEntry[] = [];
    let wake: () => void = () => {};
    const grew = () => new Promise<void>((r) => (wake = r));
    const until = async (n: number, ms: number) => {
      const deadline = Date.now() + ms;
      while (seen.length < n && Date.now() < deadline) await Promise.race([grew(), new Promise((r) => setTimeout(r, 100))]);
    };
    // Write only once the watch is live (its history entry arrived): a bucket keeps one revision per
    // key, so a watcher that starts late sees only the latest values. A watch that delivers nothing
    // within its bound (nats.js's consumer can stall under load) is made again, as a caller would.
    let w = await (await b.kv(name)).watch({ includeHistory: true });
    for (let attempt = 1; ; attempt++) {
      const mine = w;
      void (async () => { for await (const e of mine) { seen.push(e); wake(); } })();
      await until(1, 5_000);
      if (seen.length > 0 || attempt === 3) break;
      mine.stop();
      w = await (await b.kv(name)).watch({ includeHistory: true });
    }
    await kv.put('x', enc('1'));
    await kv.put('y', enc('2'));
    await kv.delete('x');
    await until(4, 10_000);
    w.stop();
    t.deepEqual(seen.map((e) => [e.key, e.operation, dec(e.value)]), [['x', 'PUT', '0'], ['x', 'PUT', '1'], ['y', 'PUT', '2'], ['x', 'DEL', null]]);
    t.true(seen.every((e, i) => i === 0 || e.revision > seen[i - 1]!.revision));
  });

  test.serial(`${impl.name} - KV bucket TTL: an unrenewed key disappears`, async (t) => {
    const [a] = await impl.clients();
    const kv = await a.kv(fresh('leases'), { ttlMs: 1000 });
    await kv.create('lease', enc('me'));
    t.not(await kv.get('lease'), null);
    let gone = false;
    for (let i = 0; i < 60 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = (await kv.get('lease')) === null;
    }
    t.true(gone);
    await kv.create('lease', enc('next holder')); // the lapsed lease can be taken
  });
}

test.serial('sim only - a partitioned client is cut off both ways, and healing restores it; all on virtual time', async (t) => {
  const { virtualPorts } = await import('../src/ports/index.js');
  const ports = virtualPorts(3);
  const sim = new SimNats(ports, { latencyMs: 2 });
  const [a, b] = [sim.connect('a'), sim.connect('b')];
  const sub = b.subscribe('svc');
  void (async () => { for await (const m of sub) m.respond(m.data); })();
  const ok = a.request('svc', enc('1'), { timeoutMs: 50 });
  await ports.time.run({ untilMs: 100 });
  t.is(dec((await ok).data), '1');
  sim.partition('b');
  const cut = a.request('svc', enc('2'), { timeoutMs: 50 });
  const failed = t.throwsAsync(cut, { instanceOf: NatsPortError });
  await ports.time.run({ untilMs: 200 });
  t.is((await failed)?.type, 'no-responders');
  sim.partition('b', false);
  const healed = a.request('svc', enc('3'), { timeoutMs: 50 });
  await ports.time.run({ untilMs: 300 });
  t.is(dec((await healed).data), '3');
  t.is(ports.time.nowMs(), 300);
  sub.unsubscribe();
});
