import { hostDataPath } from '../../host/datapath/host-datapath.js';
import { BenchError } from '../harness.js';

/**
 * What the `datapath` suite says to its procs (through the node's data path: `client.dataPathCall`, a
 * JSON string) and the rules the procs share. Payloads of a measured request are filled with a byte in
 * [FILL_MIN, FILL_MAX], so a payload starting with '{' is always a command.
 */
export type ProcCommand =
  | { op: 'latency'; sizeBytes: number; count: number; warmup: number }
  | { op: 'throughput'; sizeBytes: number; window: number; durationMs: number }
  | { op: 'cpu' }
  /** Sets the busy-poll window of the proc's host, µs (the `bpfevent` transport measures with it at 0). */
  | { op: 'busy-poll'; windowUs: number }
  | { op: 'forge'; dstEp: number; spoofEp: number; periodMs: number; poolBytes: number }
  | { op: 'forge-stop' };

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
