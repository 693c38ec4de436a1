import test from 'ava';
import { CreditGate, CreditReturner } from '../src/datapath/credits.js';
import { virtualPorts } from '../src/ports/index.js';

test('credits - a fast sender and a slow receiver: in-flight never exceeds the bound and everything arrives', async (t) => {
  const { time } = virtualPorts(1);
  const inFlightMax = 8;
  const gate = new CreditGate(time, { inFlightMax });
  const queue: number[] = []; // the receiver's socket
  const returner = new CreditReturner(time, (_src, n) => time.setTimeout(() => gate.grant(2, n), 1), { batch: 3, flushDelayMs: 5 });
  let sent = 0;
  let consumed = 0;
  let maxInFlight = 0;
  const total = 200;
  // The sender: as fast as credits allow.
  const sender = (async () => {
    for (let i = 0; i < total; i++) {
      const c = await gate.acquire(2, 10_000);
      if (c._tag === 'Left') throw c.left;
      queue.push(i);
      sent++;
      maxInFlight = Math.max(maxInFlight, sent - consumed);
    }
  })();
  // The receiver: one message every 10 ms.
  const tick = (): void => {
    const m = queue.shift();
    if (m !== undefined) {
      if (m !== consumed) throw new Error(`out of order: ${m} after ${consumed}`);
      consumed++;
      returner.consumed(1);
    }
    if (consumed < total) time.setTimeout(tick, 10);
  };
  time.setTimeout(tick, 10);
  await time.run();
  await sender;
  t.is(consumed, total);
  t.true(maxInFlight <= inFlightMax, `max in flight ${maxInFlight}`);
  t.is(maxInFlight, inFlightMax, 'the sender did run ahead up to the bound');
  t.is(gate.inFlight(2), 0, 'every credit came back (the flush timer returned the last partial batch)');
  t.is(returner.returned, total);
});

test('credits - tryAcquire fails fast with a typed error; acquire waits, times out, or is refused when too many wait', async (t) => {
  const { time } = virtualPorts(2);
  const gate = new CreditGate(time, { inFlightMax: 2, waitersMax: 2 });
  t.is(gate.tryAcquire(5)._tag, 'Right');
  t.is(gate.tryAcquire(5)._tag, 'Right');
  const none = gate.tryAcquire(5);
  t.is(none._tag === 'Left' && none.left.type, 'credits-exhausted');
  t.regex(none._tag === 'Left' ? none.left.message : '', /wait for the receiver/);
  t.is(gate.tryAcquire(6)._tag, 'Right', 'windows are per destination');

  const order: string[] = [];
  const w1 = gate.acquire(5, 100).then((r) => order.push(`w1:${r._tag}`));
  const w2 = gate.acquire(5, 50).then((r) => order.push(`w2:${r._tag === 'Left' ? r.left.type : 'Right'}`));
  const w3 = await gate.acquire(5, 100);
  t.is(w3._tag === 'Left' && w3.left.type, 'credit-waiters-full');
  await time.advance(60); // w2 times out
  gate.grant(5, 1); // w1 gets it
  await time.run();
  await Promise.all([w1, w2]);
  t.deepEqual(order, ['w2:credit-timeout', 'w1:Right']);
  t.is(gate.inFlight(5), 2);
  t.is(gate.tryAcquire(5)._tag, 'Left');

  // Waiters are served first-come first-served, and tryAcquire does not overtake them.
  const got: number[] = [];
  const a = gate.acquire(5, 1000).then(() => got.push(1));
  const b = gate.acquire(5, 1000).then(() => got.push(2));
  gate.grant(5, 1);
  t.is(gate.tryAcquire(5)._tag, 'Left', 'no overtaking a waiter');
  gate.grant(5, 1);
  await Promise.all([a, b]);
  t.deepEqual(got, [1, 2]);

  gate.grant(5, 10); // more than in flight: clamped and counted
  t.is(gate.inFlight(5), 0);
  t.is(gate.stats().overGrants, 8);
  t.is(gate.stats().timeouts, 1);
});

test('credits - closing a destination fails its waiters; the window table is bounded', async (t) => {
  const { time } = virtualPorts(3);
  const gate = new CreditGate(time, { inFlightMax: 1, windowsMax: 2 });
  t.is(gate.tryAcquire(1)._tag, 'Right');
  const waiting = gate.acquire(1, 1000);
  gate.close(1);
  const r = await waiting;
  t.is(r._tag === 'Left' && r.left.type, 'credit-window-closed');
  t.is(gate.tryAcquire(2)._tag, 'Right');
  t.is(gate.tryAcquire(3)._tag, 'Right');
  const full = gate.tryAcquire(4);
  t.is(full._tag, 'Left', 'two busy windows: a third destination is refused');
  gate.grant(2, 1);
  t.is(gate.tryAcquire(4)._tag, 'Right', 'an idle window is forgotten to make room');
  t.throws(() => new CreditGate(time, { inFlightMax: 0 }), { message: /inFlightMax/ });
});

test('credits - the returner batches per source and flushes stragglers after the delay', async (t) => {
  const { time } = virtualPorts(4);
  const sent: Array<[number, number, number]> = [];
  const r = new CreditReturner(time, (src, n) => sent.push([time.nowMs(), src, n]), { batch: 4, flushDelayMs: 2 });
  for (let i = 0; i < 9; i++) r.consumed(7);
  r.consumed(8);
  t.deepEqual(sent, [[0, 7, 4], [0, 7, 4]]);
  t.is(r.pending(7), 1);
  await time.run();
  t.deepEqual(sent.slice(2), [[2, 7, 1], [2, 8, 1]]);
  t.is(r.returned, 10);
});

test('credits - flushTo returns what is owed to a source once half a batch is pending, and the flush timer goes with it', async (t) => {
  const { time } = virtualPorts(5);
  const sent: Array<[number, number, number]> = [];
  const r = new CreditReturner(time, (src, n) => sent.push([time.nowMs(), src, n]), { batch: 8, flushDelayMs: 5 });
  r.consumed(7, 3);
  r.flushTo(7); // 3 < 8 / 2: not worth a frame of its own yet
  t.deepEqual(sent, []);
  r.consumed(7);
  r.flushTo(9); // nothing owed there
  r.flushTo(7);
  t.deepEqual(sent, [[0, 7, 4]]);
  t.is(r.pending(7), 0);
  await time.run();
  t.deepEqual(sent, [[0, 7, 4]], 'no straggler flush: the timer was cancelled with the last pending source');
  r.consumed(7, 2);
  r.consumed(8, 4);
  r.flushTo(8);
  await time.run();
  t.deepEqual(sent.slice(1), [[0, 8, 4], [5, 7, 2]], "another source's credits still flush after the delay");
  t.is(r.returned, 10);
});
