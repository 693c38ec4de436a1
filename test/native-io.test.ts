import test from 'ava';
import { createServer, connect, type Socket } from 'node:net';
import pino from 'pino';
import { BusyPoll, READS_PER_TURN, type BusyPollPorts } from '../src/datapath/busy-poll.js';
import { encodeFrame, FRAME_BYTES, SocketLink } from '../src/datapath/frames.js';
import { homePin } from '../src/host/attach.js';
import { cpuAffinity, currentCpu, NativeError, nativeStatus, setCpuAffinity, socketFd, socketIo, type SocketIo } from '../src/native/index.js';
import { CpuHomes } from '../src/node/cpu-homes.js';

const native = nativeStatus();
const maybe = native.available ? test.serial : test.serial.skip;
const quiet = pino({ level: 'silent' });

async function socketPair(): Promise<{ mine: Socket; theirs: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const mine = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => mine.once('connect', r));
  const theirs = await accepted;
  return { mine, theirs, close: () => (mine.destroy(), theirs.destroy(), server.close()) };
}

/** Stops libuv reading the socket (pause() alone lets it read up to the high-water mark): only recvInto reads it then. */
const stopReading = (s: Socket): void => void (s as unknown as { _handle: { readStop(): number } })._handle.readStop();

/** Frame i carries i as its request id, so order is checkable at the far end. */
const frameNo = (i: number): Buffer => encodeFrame({ dstEp: 1, srcEp: 2, offset: 0, length: 1, generation: 1, flags: 0, requestId: BigInt(i) });
const numbersIn = (frames: Buffer): number[] => Array.from({ length: frames.length / FRAME_BYTES }, (_, k) => Number(frames.readBigUInt64LE(k * FRAME_BYTES + 24)));

test('cpu homes - least-loaded CPU first, the same home when asked again, freed CPUs reused, none on one CPU', (t) => {
  const homes = new CpuHomes([2, 0, 1]);
  t.deepEqual(['a', 'b', 'c', 'd'].map((h) => homes.take(h)), [0, 1, 2, 0]);
  t.is(homes.take('b'), 1, 'asked again');
  homes.release('b');
  homes.release('b'); // twice: no effect
  t.is(homes.take('e'), 1, 'the CPU with fewest hosts');
  t.deepEqual(homes.load(), { 0: 2, 1: 1, 2: 1 });
  t.is(new CpuHomes([3]).take('a'), undefined);
  t.is(new CpuHomes([]).take('a'), undefined);
});

maybe('native - CPU affinity of this thread: read, pin to one CPU (and run there), restore; bad sets refused', (t) => {
  const all = cpuAffinity();
  t.true(all.length >= 1);
  t.true(all.includes(currentCpu()));
  const one = all[all.length - 1]!;
  try {
    setCpuAffinity([one]);
    t.deepEqual(cpuAffinity(), [one]);
    t.is(currentCpu(), one, 'moved there at once');
  } finally {
    setCpuAffinity(all);
  }
  t.deepEqual(cpuAffinity(), all);
  for (const bad of [[], [-1], [0.5], [1 << 20]]) t.throws(() => setCpuAffinity(bad), { instanceOf: NativeError }, JSON.stringify(bad));
  t.deepEqual(cpuAffinity(), all, 'a refused call changes nothing');
});

maybe('native - homePin pins to the home and back; no home, or one outside the mask, pins nothing', (t) => {
  const all = cpuAffinity();
  t.deepEqual(homePin(undefined, quiet), {});
  t.deepEqual(homePin(1023, quiet), {}, 'not a CPU this process may use');
  if (all.length < 2) return t.pass('one CPU: nothing to pin');
  const home = all[1]!;
  const ports = homePin(home, quiet);
  try {
    ports.pin!();
    t.deepEqual(cpuAffinity(), [home]);
    ports.unpin!();
    t.deepEqual(cpuAffinity(), all);
  } finally {
    setCpuAffinity(all);
  }
});

maybe('native - sendBytes and recvInto: bytes across, -1 when there is nothing, 0 at end of stream, errors typed', async (t) => {
  const io = socketIo()!;
  const { mine, theirs, close } = await socketPair();
  try {
    stopReading(theirs);
    stopReading(mine);
    const a = socketFd(mine);
    const b = socketFd(theirs);
    t.is(io.recv(b, Buffer.alloc(16)), -1, 'nothing yet');
    t.is(io.send(a, Buffer.from('hello')), 5);
    const into = Buffer.alloc(16);
    let n = -1;
    for (let i = 0; i < 100 && n < 0; i++) {
      n = io.recv(b, into);
      if (n < 0) await new Promise((r) => setTimeout(r, 5));
    }
    t.is(into.subarray(0, n).toString(), 'hello');
    mine.end();
    let eof = -1;
    for (let i = 0; i < 100 && eof < 0; i++) {
      eof = io.recv(b, into);
      if (eof < 0) await new Promise((r) => setTimeout(r, 5));
    }
    t.is(eof, 0, 'end of stream');
    const bad = t.throws(() => io.send(1 << 30, Buffer.from('x'))) as Error & { code?: string };
    t.is(bad.code, 'EBADF');
    t.throws(() => io.recv(b, new Uint8Array(0)), undefined, 'an empty buffer is refused');
  } finally {
    close();
  }
});

maybe('native - a link writes through the fd when Node has nothing queued, and queues behind what the kernel did not take, in order', async (t) => {
  const real = socketIo()!;
  let nativeSends = 0;
  const io: SocketIo = { send: (fd, bytes) => (nativeSends++, real.send(fd, bytes)), recv: real.recv };
  const { mine, theirs, close } = await socketPair();
  try {
    theirs.pause(); // the peer reads nothing yet: the kernel's buffers fill, then Node's queue
    const link = new SocketLink(mine, { io, backlogBytesMax: 256 << 20 });
    const BATCH = 4096;
    const BATCHES = 256; // 32 MiB of frames: more than loopback's buffers hold
    let queuedInNode = false;
    for (let k = 0; k < BATCHES; k++) {
      const frames = Buffer.concat(Array.from({ length: BATCH }, (_, i) => frameNo(k * BATCH + i)));
      t.true(link.write(frames));
      await new Promise((r) => setImmediate(r));
      queuedInNode ||= mine.writableLength > 0;
    }
    t.true(nativeSends > 0, 'written through the fd');
    t.true(queuedInNode, 'and, once the kernel was full, through Node');
    const got: number[] = [];
    const peer = new SocketLink(theirs);
    peer.onFrames((f) => got.push(...numbersIn(f)));
    theirs.resume();
    for (let i = 0; i < 400 && got.length < BATCH * BATCHES; i++) await new Promise((r) => setTimeout(r, 25));
    t.is(got.length, BATCH * BATCHES);
    t.true(got.every((n, i) => n === i), 'every frame, in the order written');
  } finally {
    close();
  }
});

maybe('native - a busy-polling link reads the fd on spinning turns; what it read is delivered in whole frames', async (t) => {
  const c = { now: 0, queue: [] as Array<() => void> };
  const ports: BusyPollPorts = { nowMs: () => c.now, immediate: (fn) => void c.queue.push(fn), relax: () => {} };
  const poll = new BusyPoll(1000, ports);
  const { mine, theirs, close } = await socketPair();
  try {
    const link = new SocketLink(mine, { io: socketIo()!, poll });
    stopReading(mine); // only the poll's turns read
    const got: number[] = [];
    link.onFrames((f) => got.push(...numbersIn(f)));
    const frames = Buffer.concat([0, 1, 2].map(frameNo));
    theirs.write(frames.subarray(0, 40)); // a frame and a piece of the next
    await new Promise((r) => setTimeout(r, 20));
    poll.poke();
    c.queue.splice(0).forEach((fn) => fn());
    t.deepEqual(got, [0], 'the whole frame; the piece waits');
    theirs.write(frames.subarray(40));
    await new Promise((r) => setTimeout(r, 20));
    c.queue.splice(0).forEach((fn) => fn());
    t.deepEqual(got, [0, 1, 2]);
    c.queue.splice(0).forEach((fn) => fn());
    t.is(c.queue.length, 1, 'still spinning: nothing read and the window is open');
    t.true(poll.stats().turns >= READS_PER_TURN, 'the empty turn tried every read');
    link.close();
    c.queue.splice(0).forEach((fn) => fn());
    t.is(poll.stats().turns, READS_PER_TURN + 1, 'a closed link is no longer read (one empty turn, one yield)');
  } finally {
    close();
  }
});

test('a link whose native I/O fails once drops it and goes on through Node, losing nothing', async (t) => {
  let calls = 0;
  const failing: SocketIo = {
    send: () => {
      calls++;
      throw Object.assign(new Error('send on fd: Socket operation on non-socket'), { code: 'ENOTSOCK' });
    },
    recv: () => {
      calls++;
      throw Object.assign(new Error('recv on fd: Socket operation on non-socket'), { code: 'ENOTSOCK' });
    },
  };
  const { mine, theirs, close } = await socketPair();
  try {
    const link = new SocketLink(mine, { io: failing });
    const got: number[] = [];
    new SocketLink(theirs).onFrames((f) => got.push(...numbersIn(f)));
    for (let i = 0; i < 3; i++) {
      t.true(link.write(frameNo(i)));
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 100 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    t.deepEqual(got, [0, 1, 2]);
    t.is(calls, 1, 'tried once, then left to Node');
  } finally {
    close();
  }
});
