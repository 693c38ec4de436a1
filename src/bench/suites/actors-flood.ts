/**
 * The mailbox flood: `messages` tells, as fast as a synchronous loop can send them, at one actor. Each
 * implementation runs in a fresh child process (node --expose-gc) so that its memory delta is not
 * blurred by the other workloads' heaps. Run directly, this file is that child:
 *
 *   node --expose-gc dist/src/bench/suites/actors-flood.js <sigma|nact> <messages> <capacity>
 *
 * Messages are small integers, which V8 stores unboxed: the heap delta is the mailbox itself, not
 * garbage from dropped messages waiting for a collection.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BenchError, MemorySampler, stopwatch, yieldLoop } from '../harness.js';

export interface FloodRun {
  heapMb: number;
  rssMb: number;
  sendMs: number;
  capacity: number;
  /** High-water mark of the mailbox; NaN for nact, whose mailbox keeps no statistics. */
  peakMessages: number;
  dropped: number;
  rejected: number;
  handled: number;
}

export type FloodImpl = 'sigma' | 'nact';

/** Memory is sampled every SAMPLE_EVERY sends (a power of two: the check is a mask). */
const SAMPLE_EVERY = 4096;
const CHILD_TIMEOUT_MS = 60_000;
const FILE = fileURLToPath(import.meta.url);

export async function floodInChild(impl: FloodImpl, messages: number, capacity: number): Promise<FloodRun> {
  const args = ['--expose-gc', FILE, impl, String(messages), String(capacity)];
  try {
    const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: CHILD_TIMEOUT_MS, maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as FloodRun;
  } catch (e) {
    throw new BenchError(`the ${impl} flood child failed (${process.execPath} ${args.join(' ')}): ${(e as { stderr?: string }).stderr ?? String(e)}`, { cause: e });
  }
}

async function floodSigma(messages: number, capacity: number): Promise<FloodRun> {
  const { pino } = await import('pino');
  const { createSystem, stateful } = await import('../../actors/index.js');
  const sys = createSystem({ name: 'bench-flood', logger: pino({ level: 'silent' }) });
  let handled = 0;
  const sink = sys.spawn(stateful(0, (n: number, _m: number) => (handled++, n + 1)), { mailbox: { capacity, overflow: 'drop-oldest' } });
  const mem = new MemorySampler();
  const sw = stopwatch();
  for (let i = 0; i < messages; i++) {
    sink.tell(i);
    if ((i & (SAMPLE_EVERY - 1)) === 0) mem.sample();
  }
  mem.sample();
  const sendMs = sw.read().wallMs;
  // The sink only runs once the loop yields; let it drain what the bound kept.
  while (sys.mailboxStats(sink)!.size > 0) {
    await yieldLoop();
    mem.sample();
  }
  const st = sys.mailboxStats(sink)!;
  if (handled + st.dropped + st.rejected !== messages) throw new BenchError(`flood lost messages: ${handled} handled, ${st.dropped} dropped, ${st.rejected} rejected of ${messages}`);
  await sys.shutdown();
  return { ...mem.peak(), sendMs, capacity: st.capacity, peakMessages: st.peak, dropped: st.dropped, rejected: st.rejected, handled };
}

async function floodNact(messages: number): Promise<FloodRun> {
  const { default: nact } = await import('nact');
  const system = nact.start();
  let handled = 0;
  const sink = nact.spawn(system, (n: number = 0, _m: number) => (handled++, n + 1));
  const mem = new MemorySampler();
  const sw = stopwatch();
  for (let i = 0; i < messages; i++) {
    nact.dispatch(sink, i);
    if ((i & (SAMPLE_EVERY - 1)) === 0) mem.sample();
  }
  mem.sample();
  const sendMs = sw.read().wallMs;
  // Draining a million setImmediate turns says nothing about memory; the peak is behind us.
  return { ...mem.peak(), sendMs, capacity: Number.POSITIVE_INFINITY, peakMessages: Number.NaN, dropped: 0, rejected: 0, handled };
}

async function main(argv: string[]): Promise<void> {
  const [impl, m, c] = argv;
  const messages = Number(m);
  const capacity = Number(c);
  if ((impl !== 'sigma' && impl !== 'nact') || !Number.isInteger(messages) || messages < 1 || !Number.isInteger(capacity) || capacity < 1) {
    process.stderr.write('usage: actors-flood.js <sigma|nact> <messages> <capacity>  (positive integers)\n');
    process.exit(2);
  }
  const r = impl === 'sigma' ? await floodSigma(messages, capacity) : await floodNact(messages);
  process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
}

if (process.argv[1] === FILE) await main(process.argv.slice(2));
