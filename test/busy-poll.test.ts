import test from 'ava';
import { BusyPoll, BUSY_POLL_US_MAX, PIN_LINGER_MS, type BusyPollPorts } from '../src/datapath/busy-poll.js';
import { encodeFrame, FRAME_BYTES, isCallRequest, SocketLink } from '../src/datapath/frames.js';
import { callId, responseId } from '../src/datapath/request-id.js';
import { realBusyPollPorts } from '../src/datapath/busy-poll-real.js';
import { decodeToHost } from '../src/host/protocol.js';
import { socketPair } from './helpers/sockets.js';

/** A hand-cranked loop: time moves only when the test says, immediates run one turn at a time. */
function crank(): BusyPollPorts & { now: number; queue: Array<() => void>; relaxed: number; turn(): void } {
  const c = {
    now: 0,
    queue: [] as Array<() => void>,
    relaxed: 0,
    nowMs: () => c.now,
    immediate: (fn: () => void) => void c.queue.push(fn),
    relax: () => void c.relaxed++,
    turn: () => c.queue.splice(0).forEach((fn) => fn()),
  };
  return c;
}

test('busy poll - a poke keeps the loop turning for the window, yielding every turn, then stops', (t) => {
  const c = crank();
  const poll = new BusyPoll(50, c);
  poll.poke();
  t.is(c.queue.length, 1);
  for (let i = 0; i < 4; i++) {
    c.now += 0.01; // 10 µs a turn
    c.turn();
    t.is(c.queue.length, 1, `still spinning at ${c.now * 1000} µs`);
  }
  c.now = 0.06; // past the window
  c.turn();
  t.is(c.queue.length, 0);
  t.deepEqual(poll.stats(), { windows: 1, turns: 4, pins: 0, pinned: false, currentUs: 25 }, 'nothing came in the window: the next one is half');
  t.is(c.relaxed, 4);
});

test('busy poll - pokes while spinning extend the window without a second loop', (t) => {
  const c = crank();
  const poll = new BusyPoll(50, c);
  poll.poke();
  c.now = 0.04;
  poll.poke(); // window now ends at 90 µs
  poll.poke();
  t.is(c.queue.length, 1);
  c.now = 0.08;
  c.turn();
  t.is(c.queue.length, 1);
  c.now = 0.09;
  c.turn();
  t.is(c.queue.length, 0);
  poll.poke(); // a later one starts again
  t.is(poll.stats().windows, 2);
});

test('busy poll - windows that catch nothing shrink to an eighth; one that catches traffic doubles back', (t) => {
  const c = crank();
  const poll = new BusyPoll(200, c);
  const idleWindow = (): void => {
    poll.poke();
    c.now += 1; // far past any window
    c.turn();
    c.now += 1; // and nothing for a long while after it
  };
  for (const expected of [100, 50, 25, 25]) {
    idleWindow();
    t.is(poll.stats().currentUs, expected);
  }
  poll.poke();
  c.now += 0.01;
  poll.poke(); // traffic while spinning: 25 -> 50, and the window runs 50 µs from here
  t.is(poll.stats().currentUs, 50);
  c.now += 0.045;
  c.turn();
  t.is(c.queue.length, 1, 'still spinning 45 µs after the second poke');
  c.now += 0.01;
  c.turn();
  t.is(c.queue.length, 0);
  t.is(poll.stats().currentUs, 50, 'a window that caught traffic does not shrink');
  for (let i = 0; i < 4; i++) {
    c.now += 1;
    poll.poke();
    poll.poke();
    c.now += 1;
    c.turn();
  }
  t.is(poll.stats().currentUs, 200, 'and productive ones grow back to the configured window, no further');
});

test('busy poll - traffic just after a window ended restores the whole window (a ping-pong slower than a shrunken window)', (t) => {
  const c = crank();
  const poll = new BusyPoll(200, c);
  for (let i = 0; i < 3; i++) {
    poll.poke();
    c.now += 1;
    c.turn();
    c.now += 1;
  }
  t.is(poll.stats().currentUs, 25, 'shrunk by idle windows');
  // A ping-pong with 60 µs between messages: the 25 µs window ends before each one comes.
  poll.poke();
  c.now += 0.03;
  c.turn();
  t.is(c.queue.length, 0, 'the 25 µs window ended');
  c.now += 0.03;
  poll.poke(); // 30 µs after the end: within the configured 200 µs, a near miss
  t.is(poll.stats().currentUs, 200);
  c.now += 0.06;
  c.turn();
  t.is(c.queue.length, 1, 'now the window spans the gap');
  poll.poke();
  t.is(poll.stats().windows, 5, 'and the next message was caught without a new window');
});

/** Cranked ports with a pin, an unpin and timers the test fires. */
function pinnable(): ReturnType<typeof crank> & { calls: string[]; timers: Array<{ fn: () => void; ms: number; live: boolean }> } {
  const c = crank();
  const calls: string[] = [];
  const timers: Array<{ fn: () => void; ms: number; live: boolean }> = [];
  return Object.assign(c, {
    calls,
    timers,
    pin: () => void calls.push('pin'),
    unpin: () => void calls.push('unpin'),
    later: (fn: () => void, ms: number) => {
      const timer = { fn, ms, live: true };
      timers.push(timer);
      return () => void (timer.live = false);
    },
  });
}

test('busy poll - a window that catches traffic pins home; the pin lasts until the loop idled PIN_LINGER_MS', (t) => {
  const c = pinnable();
  const poll = new BusyPoll(100, c);
  poll.poke(); // a lone message
  c.now += 1;
  c.turn();
  t.deepEqual(c.calls, [], 'a lone message never pins');
  c.now += 1;
  poll.poke();
  c.now += 0.01;
  poll.poke(); // the answer came while spinning: a ping-pong
  t.deepEqual(c.calls, ['pin']);
  c.now += 1;
  c.turn();
  t.is(c.timers.length, 1);
  t.is(c.timers[0]!.ms, PIN_LINGER_MS);
  t.deepEqual(c.calls, ['pin'], 'still pinned once the window ended');
  poll.poke();
  c.now += 0.01;
  poll.poke(); // another ping-pong within the linger: no second pin, the unpin is called off
  t.false(c.timers[0]!.live);
  t.deepEqual(c.calls, ['pin']);
  c.now += 1;
  c.turn();
  t.is(c.timers.length, 2);
  c.timers[1]!.fn(); // idle for the linger
  t.deepEqual(c.calls, ['pin', 'unpin']);
  t.deepEqual(poll.stats().pins, 1);
  t.false(poll.stats().pinned);
  poll.poke();
  c.now += 0.01;
  poll.poke();
  poll.stop();
  t.deepEqual(c.calls, ['pin', 'unpin', 'pin', 'unpin'], 'stop() unpins at once');
});

test('busy poll - window 0 never spins; stop() ends a window; bad windows are refused', (t) => {
  const c = crank();
  const off = new BusyPoll(0, c);
  off.poke();
  t.is(c.queue.length, 0);
  const on = new BusyPoll(100, c);
  on.poke();
  on.stop();
  c.turn();
  t.is(c.queue.length, 0);
  on.setWindow(0);
  on.poke();
  t.is(c.queue.length, 0);
  for (const bad of [-1, BUSY_POLL_US_MAX + 1, Number.NaN, Infinity]) t.throws(() => new BusyPoll(bad, c), { instanceOf: RangeError });
});

test.serial('busy poll - the real ports spin the real loop and stop', async (t) => {
  const poll = new BusyPoll(BUSY_POLL_US_MAX, realBusyPollPorts);
  // A window is 10 ms: on a loaded machine this process may be descheduled for all of one (a CI run saw
  // no turn), so a few windows are tried; the loop must turn in one of them.
  const WINDOWS_TRIED_MAX = 20;
  let s = poll.stats();
  for (let i = 0; i < WINDOWS_TRIED_MAX && s.turns === 0; i++) {
    poll.poke();
    await new Promise((r) => setTimeout(r, 50));
    s = poll.stats();
    t.is(s.windows, i + 1, 'one window per poke after the last one ended');
  }
  t.true(s.turns > 0, 'the loop turned while a window lasted');
  await new Promise((r) => setTimeout(r, 5));
  t.is(poll.stats().turns, s.turns, 'and not after it');
});

test('busy poll - a link pokes on reads and on call requests it writes, not on sends or answers', async (t) => {
  const frame = (requestId: bigint): Buffer => encodeFrame({ dstEp: 7, srcEp: 9, offset: 0, length: 1, generation: 1, flags: 0, requestId });
  const call = callId(9, 5);
  t.true(isCallRequest(frame(call), 0));
  t.false(isCallRequest(frame(0n), 0));
  t.false(isCallRequest(frame(responseId(call, false)), 0));
  t.false(isCallRequest(frame(responseId(call, true)), 0));

  const { mine, theirs, close } = await socketPair();
  let pokes = 0;
  const poll = { poke: () => void pokes++ } as unknown as BusyPoll;
  const link = new SocketLink(mine, { poll });
  const peer = new SocketLink(theirs);
  t.true(link.write(frame(0n)));
  t.true(link.write(frame(responseId(call, false))));
  t.is(pokes, 0);
  t.true(link.write(Buffer.concat([frame(call), frame(0n)])));
  t.is(pokes, 1, 'a call with a credit return after it');
  const got = new Promise<void>((r) => link.onFrames(() => r()));
  peer.write(frame(0n));
  await got;
  t.is(pokes, 2);
  t.is(FRAME_BYTES, 32);
  link.close();
  peer.close();
  close();
});

test('busy poll - the host protocol refuses a dp-attach with a bad window (or without its fds)', (t) => {
  const base = { t: 'dp-attach', node: 'n', hostEp: 3, poolFd: 4, socketFd: 5, poolBytes: 1 << 20, mode: 'bpf' };
  t.truthy(decodeToHost(base));
  for (const socketFd of [undefined, -1, '5']) t.is(decodeToHost({ ...base, socketFd }), undefined, `socket fd ${String(socketFd)}`);
  t.truthy(decodeToHost({ ...base, busyPollUs: 50 }));
  for (const busyPollUs of [-1, 1.5, BUSY_POLL_US_MAX + 1, '50']) t.is(decodeToHost({ ...base, busyPollUs }), undefined, String(busyPollUs));
  t.truthy(decodeToHost({ ...base, homeCpu: 1 }));
  for (const homeCpu of [-1, 0.5, 1024, '1']) t.is(decodeToHost({ ...base, homeCpu }), undefined, `home ${String(homeCpu)}`);
});
