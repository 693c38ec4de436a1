import { openSync, readSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { hostDataPath } from '../../host/datapath/host-datapath.js';
import { BenchError } from '../harness.js';

/**
 * What the `datapath` suite says to its procs (through the node's data path: `client.dataPathCall`, a
 * JSON string) and the rules the procs share. Payloads of a measured request are filled with a byte in
 * [FILL_MIN, FILL_MAX], so a payload starting with '{' is always a command.
 */
export type ProcCommand =
  /** `detail`: also each round trip's start and the client host's run-queue wait during it (the tail analysis). */
  | { op: 'latency'; sizeBytes: number; count: number; warmup: number; detail?: boolean }
  | { op: 'throughput'; sizeBytes: number; window: number; durationMs: number }
  | { op: 'cpu' }
  /** Sets the busy-poll window of the proc's host, µs (the `bpfevent` transport measures with it at 0). */
  | { op: 'busy-poll'; windowUs: number }
  | { op: 'forge'; dstEp: number; spoofEp: number; periodMs: number; poolBytes: number }
  | { op: 'forge-stop' }
  /** The host's garbage collections since `sinceUs` (µs of CLOCK_MONOTONIC). */
  | { op: 'gcs'; sinceUs: number }
  /** The echo: from `on` on, note each request's arrival (µs of CLOCK_MONOTONIC) and its host's run-queue wait so far (µs); off answers the notes. */
  | { op: 'trace'; on: boolean };

/** Every forged descriptor names this length, which no honest request uses: a delivery of one is recognisable. */
export const FORGED_LENGTH_BYTES = 77;
export const FILL_MIN = 1;
export const FILL_MAX = 100;
const BRACE = 0x7b;

export const fillFor = (seq: number): number => FILL_MIN + (seq % (FILL_MAX - FILL_MIN + 1));

export function isCommand(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes.length < 4096 && bytes[0] === BRACE;
}

/** CPU time of this (host) process in µs. */
export function procCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** `busy-poll`: sets the window of this host's busy poll; answers with the window it had and its stats. */
export function setHostBusyPoll(windowUs: number): string {
  const poll = hostDataPath()?.poll;
  if (poll === undefined) throw new BenchError('this host has no data path to poll');
  const before = poll.windowUs;
  poll.setWindow(windowUs);
  return JSON.stringify({ windowUs: before, poll: poll.stats() });
}

/**
 * µs of CLOCK_MONOTONIC: one clock all processes on the machine share (the tail analysis lines events up
 * across them). performance.now() counts the same clock from this process's start, so the offset is
 * taken once and a reading allocates nothing (it runs per round trip in the tail analysis).
 */
const MONO_ORIGIN_US = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
export const monoUs = (): number => MONO_ORIGIN_US + performance.now() * 1000;

/** One garbage collection of this host: start (µs of CLOCK_MONOTONIC), duration and V8's kind (1 scavenge, 2/4 mark-compact/incremental, 8 weak callbacks, 16 minor mark-compact). */
export interface GcEvent {
  startUs: number;
  durationUs: number;
  kind: number;
}
/** GC events kept per host (a ring): a latency phase of a quick run sees a few hundred at most. */
const GC_EVENTS_MAX = 4096;
const gcEvents: GcEvent[] = [];
let gcObserver: PerformanceObserver | undefined;

/** Starts recording this host's garbage collections (idempotent; a PerformanceObserver costs nothing between GCs). */
export function recordGcs(): void {
  if (gcObserver !== undefined) return;
  gcObserver = new PerformanceObserver((list) => {
    // performance.now() and CLOCK_MONOTONIC differ by a constant offset within one process.
    const offsetUs = monoUs() - performance.now() * 1000;
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      gcEvents.push({ startUs: Math.round(e.startTime * 1000 + offsetUs), durationUs: Math.round(e.duration * 1000), kind });
      if (gcEvents.length > GC_EVENTS_MAX) gcEvents.shift();
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

export function gcsSince(sinceUs: number): GcEvent[] {
  return gcEvents.filter((g) => g.startUs + g.durationUs >= sinceUs);
}

/**
 * µs this host's main thread has waited on a run queue so far: runnable, but another task had its CPU
 * (/proc/thread-self/schedstat, second field, ns). Read with pread on a file kept open, a few µs.
 * Undefined where there is no schedstat (not Linux, CONFIG_SCHED_INFO off).
 */
export function runQueueWaitUs(): number | undefined {
  if (schedstatFd === undefined) {
    try {
      schedstatFd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      schedstatFd = -1;
    }
  }
  if (schedstatFd < 0) return undefined;
  const n = readSync(schedstatFd, schedstatBuf, 0, schedstatBuf.length, 0);
  // The second of three decimal fields, parsed in place: no strings (this runs per round trip).
  let at = schedstatBuf.indexOf(SPACE) + 1;
  let ns = 0;
  for (; at > 0 && at < n && schedstatBuf[at] !== SPACE; at++) ns = ns * 10 + (schedstatBuf[at]! - DIGIT_0);
  return ns / 1000;
}
const SPACE = 0x20;
const DIGIT_0 = 0x30;
let schedstatFd: number | undefined;
const schedstatBuf = Buffer.alloc(128);
