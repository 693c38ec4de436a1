import test from 'ava';
import { MailboxFullError, Mailbox, InvalidOptionError, stateless, stateful, type ActorRef } from '../src/actors/index.js';
import { realSystem, virtualSystem } from './helpers/actors.js';

const FLOOD = 1_000_000;

test('mailbox - ring keeps FIFO across growth and wrap-around', (t) => {
  const m = new Mailbox<number>({ capacity: 1000 });
  const out: number[] = [];
  let next = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 37; i++) m.push(next++);
    for (let i = 0; i < 30; i++) out.push(m.shift()!);
  }
  out.push(...m.drain());
  t.deepEqual(out, Array.from({ length: next }, (_, i) => i));
  t.is(m.rejected, 0);
});

test('mailbox - options are validated', (t) => {
  t.throws(() => new Mailbox({ capacity: 0 }), { instanceOf: InvalidOptionError });
  t.throws(() => new Mailbox({ capacity: 1.5 }), { instanceOf: InvalidOptionError });
  t.throws(() => new Mailbox({ overflow: 'grow' as never }), { instanceOf: InvalidOptionError });
});

test('mailbox - reject policy: a flood is refused with a typed error and memory stays bounded', async (t) => {
  const { system, ports } = virtualSystem();
  let handled = 0;
  const slow = system.spawn(stateless<number>(() => {
    handled++;
  }, { concurrency: 1 }), { mailbox: { capacity: 1000, overflow: 'reject' } });
  let refused = 0;
  let firstError: unknown;
  for (let i = 0; i < FLOOD; i++) {
    const r = slow.tryTell(i);
    if (r._tag === 'Left') {
      refused++;
      firstError ??= r.left;
    }
  }
  t.throws(() => slow.tell(-1), { instanceOf: MailboxFullError });
  await ports.time.run();
  const stats = system.mailboxStats(slow)!;
  t.true(firstError instanceof MailboxFullError);
  t.is(stats.peak, 1000);
  t.is(handled, 1000);
  t.is(refused, FLOOD - 1000);
  t.is(stats.rejected, refused + 1);
});

test('mailbox - drop-oldest policy: the newest messages survive and drops are counted', async (t) => {
  const { system, ports } = virtualSystem();
  const seen: number[] = [];
  const slow = system.spawn(stateless<number>((n) => {
    seen.push(n);
  }, { concurrency: 1 }), { mailbox: { capacity: 500, overflow: 'drop-oldest' } });
  for (let i = 0; i < FLOOD; i++) slow.tell(i);
  await ports.time.run();
  const stats = system.mailboxStats(slow)!;
  t.is(stats.peak, 500);
  t.is(stats.dropped, FLOOD - 500);
  t.deepEqual(seen, Array.from({ length: 500 }, (_, i) => FLOOD - 500 + i));
});

test('mailbox - a flood between two actors: receiver mailbox never exceeds its capacity', async (t) => {
  const sys = realSystem();
  let received = 0;
  const sink = sys.spawn(stateful(0, (n: number) => {
    received++;
    return n + 1;
  }), { mailbox: { capacity: 256, overflow: 'drop-oldest' } });
  const source = sys.spawn<{ count: number; done: ActorRef<true> }>(() => ({
    receive: (m) => {
      for (let i = 0; i < m.count; i++) sink.tell(i);
      m.done.tell(true);
    },
  }));
  await source.ask<true>((done) => ({ count: 200_000, done }), 10_000);
  const stats = sys.mailboxStats(sink)!;
  await sys.shutdown();
  t.is(stats.peak, 256);
  t.is(received + stats.dropped + stats.size, 200_000);
});
