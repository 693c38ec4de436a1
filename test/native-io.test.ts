import test from 'ava';
import type { Socket } from 'node:net';
import pino from 'pino';
import { encodeFrame, FRAME_BYTES, SocketLink } from '../src/datapath/frames.js';
import { homePin } from '../src/datapath/busy-poll-real.js';
import { cpuAffinity, currentCpu, NativeError, nativeStatus, setCpuAffinity, socketFd, socketIo, type SocketIo } from '../src/native/index.js';
import { CpuHomes } from '../src/node/datapath/cpu-homes.js';
import { socketPair } from './helpers/sockets.js';

const native = nativeStatus();
const maybe = native.available ? test.serial : test.serial.skip;
const quiet = pino({ level: 'silent' });

/** Stops libuv reading the socket (pause() alone lets it read up to the high-water mark). */
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

// Pinning needs two CPUs to pin between: on one, the test is skipped, not passed.
const twoCpus = native.available && cpuAffinity().length >= 2;
(twoCpus ? test.serial : test.serial.skip)('native - homePin pins to the home and back; no home, or one outside the mask, pins nothing', (t) => {
  const all = cpuAffinity();
  t.deepEqual(homePin(undefined, quiet), {});
  t.deepEqual(homePin(1023, quiet), {}, 'not a CPU this process may use');
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

maybe('native - sendBytes: bytes across, -1 once the kernel holds no more, errors typed', async (t) => {
  const io = socketIo()!;
  const { mine, theirs, close } = await socketPair();
  try {
    stopReading(theirs); // nothing drains the far end: the kernel's buffers fill
    const fd = socketFd(mine);
    t.is(io.send(fd, Buffer.from('hello')), 5);
    const chunk = Buffer.alloc(64 << 10);
    let full = false;
    for (let i = 0; i < 4096 && !full; i++) full = io.send(fd, chunk) === -1; // at most 256 MiB
    t.true(full, 'EAGAIN is -1, not an exception');
    const bad = t.throws(() => io.send(1 << 30, Buffer.from('x'))) as Error & { code?: string };
    t.is(bad.code, 'EBADF');
    t.throws(() => io.send(fd, 'x' as unknown as Uint8Array), undefined, 'not a Uint8Array: refused');
  } finally {
    close();
  }
});

maybe('native - a link writes through the fd when Node has nothing queued, and queues behind what the kernel did not take, in order', async (t) => {
  const real = socketIo()!;
  let nativeSends = 0;
  const io: SocketIo = { send: (fd, bytes) => (nativeSends++, real.send(fd, bytes)) };
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

test('a link whose native I/O fails once drops it and goes on through Node, losing nothing', async (t) => {
  let calls = 0;
  const failing: SocketIo = {
    send: () => {
      calls++;
      throw Object.assign(new Error('send on fd: Socket operation on non-socket'), { code: 'ENOTSOCK' });
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

test('a link over an inherited fd reads into one reused buffer: frames cut anywhere by the stream arrive whole and in order', async (t) => {
  const { spawn } = await import('node:child_process');
  const { mine, theirs, close } = await socketPair();
  t.teardown(close);
  // The child echoes what its SocketLink.overFd(3) hands it — copied, as the buffer is reused by the next read.
  const frames = JSON.stringify(new URL('../src/datapath/frames.js', import.meta.url).href);
  const script = `const { SocketLink } = await import(${frames});
    const link = SocketLink.overFd(3);
    link.onFrames((f) => link.write(Buffer.from(f)));
    link.onClose(() => process.exit(0));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit', socketFd(theirs)] });
  const exited = new Promise((r) => child.once('exit', r));
  theirs.destroy(); // the child holds its own copy
  const count = 20_000;
  const got: number[] = [];
  let partial = Buffer.alloc(0);
  const done = new Promise<void>((resolve) =>
    mine.on('data', (d: Buffer) => {
      const all = Buffer.concat([partial, d]);
      const whole = all.length - (all.length % FRAME_BYTES);
      got.push(...numbersIn(all.subarray(0, whole)));
      partial = Buffer.from(all.subarray(whole));
      if (got.length >= count) resolve();
    }),
  );
  // Writes of 1-2999 bytes, one a loop turn, so reads are small and cut frames at every offset, and a
  // read often overwrites where the last one's cut frame lay in the reused buffer.
  const stream = Buffer.concat(Array.from({ length: count }, (_, i) => frameNo(i)));
  for (let at = 0, step = 1; at < stream.length; at += step, step = 1 + ((step * 37) % 2999)) {
    mine.write(stream.subarray(at, Math.min(stream.length, at + step)));
    await new Promise((r) => setImmediate(r));
  }
  await done;
  t.is(got.length, count);
  t.true(got.every((n, i) => n === i), 'every frame intact and in order');
  mine.end();
  await exited;
});
