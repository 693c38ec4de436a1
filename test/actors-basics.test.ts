import test from 'ava';
import {
  Actor,
  ActorNameTakenError,
  AskTimeoutError,
  InvalidActorNameError,
  InvalidOptionError,
  stateful,
  stateless,
  type ActorRef,
  type Context,
} from '../src/actors/index.js';
import { eventually, realSystem, tick, virtualSystem } from './helpers/actors.js';
import { virtualPorts } from '../src/ports/virtual.js';

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> };

class Counter extends Actor<CounterMsg> {
  total = 0;
  receive(msg: CounterMsg): void {
    if (msg.type === 'add') this.total += msg.n;
    else msg.replyTo.tell(this.total);
  }
}

test('basics - tell then ask a class actor', async (t) => {
  const sys = realSystem();
  const c = sys.spawn(Counter, { name: 'counter' });
  for (let i = 1; i <= 100; i++) c.tell({ type: 'add', n: i });
  t.is(await c.ask<number>((replyTo) => ({ type: 'get', replyTo }), 1000), 5050);
  t.is(c.path, 'actor://local/counter');
  await sys.shutdown();
});

test('basics - stateful functional actor keeps state, async results included', async (t) => {
  const sys = realSystem();
  type M = { add: number } | { get: ActorRef<number> };
  const acc = sys.spawn(
    stateful(10, async (s: number, m: M) => {
      if ('get' in m) {
        m.get.tell(s);
        return s;
      }
      await tick();
      return s + m.add;
    }),
  );
  acc.tell({ add: 5 });
  acc.tell({ add: 7 });
  t.is(await acc.ask<number>((r) => ({ get: r }), 1000), 22);
  await sys.shutdown();
});

test('basics - ask times out with a typed error under virtual time', async (t) => {
  const { system, ports } = virtualSystem();
  const mute = system.spawn(stateless<{ replyTo: ActorRef<number> }>(() => {}));
  const p = mute.ask<number>((replyTo) => ({ replyTo }), 250);
  const caught = t.throwsAsync(p, { instanceOf: AskTimeoutError });
  await ports.time.run();
  const err = (await caught) as AskTimeoutError;
  t.is(err.type, 'ask-timeout');
  t.is(err.timeoutMs, 250);
  t.is(ports.time.nowMs(), 250);
});

test('basics - ask needs a positive finite timeout', async (t) => {
  const sys = realSystem();
  const c = sys.spawn(Counter);
  for (const bad of [0, -1, Number.NaN, Infinity]) {
    await t.throwsAsync(c.ask((replyTo) => ({ type: 'get', replyTo }), bad), { instanceOf: InvalidOptionError });
  }
  await sys.shutdown();
});

test('basics - a late reply after the timeout becomes a dead letter, not a crash', async (t) => {
  const { system, ports } = virtualSystem();
  const slow = system.spawn<{ replyTo: ActorRef<string> }>((ctx) => ({
    receive: (m) => {
      ctx.ports.timers.setTimeout(() => m.replyTo.tell('late'), 500);
    },
  }));
  const p = slow.ask<string>((replyTo) => ({ replyTo }), 100);
  const caught = t.throwsAsync(p, { instanceOf: AskTimeoutError });
  await ports.time.run();
  await caught;
  t.is(ports.time.nowMs(), 500);
  t.is(system.stats().deadLetters, 1);
});

test('basics - names are unique among siblings and validated', async (t) => {
  const sys = realSystem();
  sys.spawn(Counter, { name: 'a' });
  t.throws(() => sys.spawn(Counter, { name: 'a' }), { instanceOf: ActorNameTakenError });
  t.throws(() => sys.spawn(Counter, { name: 'bad/name' }), { instanceOf: InvalidActorNameError });
  t.throws(() => sys.spawn(Counter, { name: '$reserved' }), { instanceOf: InvalidActorNameError });
  const parent = sys.spawn<string>((ctx) => ({
    receive: () => {},
    preStart: () => {
      ctx.spawn(Counter, { name: 'a' }); // same name, different parent: fine
    },
  }), { name: 'p' });
  await tick();
  t.is(sys.refFor('actor://local/p/a').path, 'actor://local/p/a');
  t.is(sys.statusOf(sys.refFor('actor://local/p/a')), 'running');
  await sys.stop(parent);
  // A stopped child's name is free again.
  await sys.stop(sys.refFor('actor://local/a'));
  t.notThrows(() => sys.spawn(Counter, { name: 'a' }));
  await sys.shutdown();
});

test('basics - per-sender FIFO order from many senders', async (t) => {
  const sys = realSystem();
  const seen = new Map<number, number[]>();
  const sink = sys.spawn(stateless<{ from: number; seq: number }>((m) => {
    const list = seen.get(m.from) ?? [];
    list.push(m.seq);
    seen.set(m.from, list);
  }, { concurrency: 1 }));
  const senders = Array.from({ length: 8 }, (_, from) =>
    sys.spawn<number>(() => ({
      receive: (count) => {
        for (let seq = 0; seq < count; seq++) sink.tell({ from, seq });
      },
    })),
  );
  senders.forEach((s, i) => s.tell(500 + i));
  const expected = Array.from({ length: 8 }, (_, i) => 500 + i).reduce((a, b) => a + b);
  await eventually(() => [...seen.values()].reduce((a, l) => a + l.length, 0) === expected);
  await sys.shutdown();
  for (let from = 0; from < 8; from++) {
    t.deepEqual(seen.get(from), Array.from({ length: 500 + from }, (_, i) => i));
  }
});

test('basics - stateless actors overlap async handlers up to their concurrency', async (t) => {
  const { system, ports } = virtualSystem();
  let inFlight = 0;
  let peak = 0;
  const w = system.spawn(
    stateless<number>(async (ms, ctx: Context<number>) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise<void>((r) => ctx.ports.timers.setTimeout(r, ms));
      inFlight--;
    }, { concurrency: 4 }),
  );
  for (let i = 0; i < 10; i++) w.tell(10);
  await ports.time.run();
  t.is(peak, 4);
  t.is(inFlight, 0);
  t.is(ports.time.nowMs(), 30); // 10 jobs, 4 at a time, 10 ms each: three waves
});

test('basics - lifecycle hooks run in order and shutdown stops children in reverse start order', async (t) => {
  const sys = realSystem();
  const log: string[] = [];
  const node = (name: string, kids: string[]) => (ctx: Context<never>) => ({
    receive: () => {},
    preStart: () => {
      log.push(`start ${name}`);
      for (const k of kids) ctx.spawn(node(`${name}.${k}`, []), { name: k });
    },
    postStop: () => {
      log.push(`stop ${name}`);
    },
  });
  sys.spawn(node('a', ['x', 'y']), { name: 'a' });
  sys.spawn(node('b', []), { name: 'b' });
  sys.spawn(node('c', ['z']), { name: 'c' });
  await sys.shutdown();
  t.deepEqual(log, [
    'start a', 'start a.x', 'start a.y', 'start b', 'start c', 'start c.z',
    'stop c.z', 'stop c', 'stop b', 'stop a.y', 'stop a.x', 'stop a',
  ]);
  t.is(sys.stats().actors, 0);
});

test('basics - messages to a stopped actor are dead letters and tryTell says so', async (t) => {
  const sys = realSystem();
  const c = sys.spawn(Counter);
  await sys.stop(c);
  c.tell({ type: 'add', n: 1 });
  const r = c.tryTell({ type: 'add', n: 1 });
  t.is(r._tag, 'Left');
  t.is(sys.stats().deadLetters, 2);
  await sys.shutdown();
});

test('basics - scheduleRepeat ticks on virtual time and stops with the actor', async (t) => {
  const { system, ports } = virtualSystem();
  const ticks: number[] = [];
  const a = system.spawn<'tick'>((ctx) => ({
    receive: () => {
      ticks.push(ctx.ports.clock.nowMs());
    },
    preStart: () => {
      ctx.scheduleRepeat(100, 'tick');
    },
  }));
  await ports.time.run({ untilMs: 350 });
  t.deepEqual(ticks, [100, 200, 300]);
  await system.stop(a);
  await ports.time.run({ untilMs: 1000 });
  t.deepEqual(ticks, [100, 200, 300]);
  t.is(ports.time.pending, 0);
});

test('basics - aligned repeats fall on multiples of the interval past the system phase, so one process ticks once for several', async (t) => {
  const { system, ports } = virtualSystem(1, { name: 'node-7' });
  const phase = system.timerPhaseMs;
  t.true(phase >= 0 && phase < 1000);
  t.not(phase, virtualSystem(1, { name: 'node-8' }).system.timerPhaseMs, 'another name, another phase');
  await ports.time.run({ untilMs: 123 }); // started at an arbitrary moment
  const at: Record<string, number[]> = { a: [], b: [] };
  for (const k of ['a', 'b'] as const) {
    system.spawn<'tick'>((ctx) => ({
      receive: () => void at[k]!.push(ctx.ports.clock.nowMs()),
      preStart: () => void ctx.scheduleRepeat(750, 'tick', { aligned: true }),
    }));
    await ports.time.run({ untilMs: 123 + (k === 'a' ? 200 : 400) }); // b starts later than a
  }
  await ports.time.run({ untilMs: 123 + 400 + 3_000 });
  t.true(at.a!.length >= 4, JSON.stringify(at));
  for (const ms of [...at.a!, ...at.b!]) t.is((((ms - phase) % 750) + 750) % 750, 0, `${ms} is on the grid of phase ${phase}`);
  t.deepEqual(at.b, at.a!.filter((ms) => ms >= at.b![0]!), 'the later repeat fires at the same instants');
  t.true(at.a![0]! > 123 && at.a![0]! <= 123 + 750, `the first within one interval of its start: ${at.a![0]}`);
  await system.shutdown();
});

test('basics - an aligned repeat whose timer fires a little early (ms-rounded loop time) does not tick again at once', async (t) => {
  const ports = virtualPorts(1);
  // Timers on whole milliseconds, as libuv's loop time is, against a clock with fractions: a timer due
  // at 984.3 fires at 984, a little early by the clock.
  const timers = { ...ports.time, setTimeout: (fn: () => void, ms: number) => ports.time.setTimeout(fn, Math.floor(ms)), defer: (fn: () => void) => ports.time.defer(fn) };
  const { system } = virtualSystem(1, { ports: { ...ports, timers } });
  await ports.time.run({ untilMs: 100.6 });
  const at: number[] = [];
  system.spawn<'tick'>((ctx) => ({
    receive: () => void at.push(ports.time.nowMs()),
    preStart: () => void ctx.scheduleRepeat(750, 'tick', { aligned: true }),
  }));
  await ports.time.run({ untilMs: 5_000 });
  const gaps = at.slice(1).map((ms, i) => Math.round(ms - at[i]!));
  t.true(gaps.length >= 5);
  t.true(gaps.every((g) => g === 750), `gaps ${gaps.join(', ')}`);
  await system.shutdown();
});
