import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SigmaClient } from '../../client/client.js';
import { ForkHostLauncher } from '../../node/host-process.js';
import { HostCgroups } from '../../node/sandbox/cgroups.js';
import { HostSandbox } from '../../node/sandbox/host-sandbox.js';
import { median, percentile } from '../harness.js';

/** mkdtemp makes 0700 directories; realm uids need to pass through to the programs. */
const TRAVERSE_ONLY = 0o711;
const PROC_TYPES = fileURLToPath(new URL('../../proc/types.js', import.meta.url));
/** Every process reads CLOCK_MONOTONIC the same: one clock for stamps taken in different processes. */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Programs that return the monotonic clock at their first line, each a module no host has loaded yet. */
export function stampPrograms(dir: string, count: number): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, TRAVERSE_ONLY);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
  const src = `import { FunctionProc } from ${JSON.stringify(PROC_TYPES)};\nexport default class Stamp extends FunctionProc { run() { return Number(process.hrtime.bigint()) / 1e6; } }\n`;
  const programs: Record<string, string> = {};
  for (const name of ['stamp', ...Array.from({ length: count }, (_, i) => `cold-${i}`)]) writeFileSync((programs[name] = join(dir, `${name}.js`)), src);
  return programs;
}

/** Spawn to the proc's first line, through the control plane (the exit carries the stamp: waiting costs nothing here). */
export async function startMs(client: SigmaClient, program: string): Promise<number> {
  const t0 = monoMs();
  const pid = await client.spawn({ program });
  const st = await client.waitExit(pid, { timeoutMs: 30_000 });
  if (st.kind !== 'ok' || typeof st.data !== 'number') throw new Error(`${program} ended ${st.kind}: ${st.message}`);
  return st.data - t0;
}

/** A proc host from fork to ready, p50 over `count` starts: confined (wrapper, uid, Landlock, seccomp, cgroup) or plain. */
export async function hostPrewarmMs(dataDir: string, sandboxed: boolean, count: number): Promise<number> {
  const launcher = sandboxed
    ? new ForkHostLauncher({ sandbox: new HostSandbox({ dataDir, natsUrls: [], programs: [] }), cgroups: new HostCgroups(`bench-${process.pid}`) })
    : new ForkHostLauncher();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = monoMs();
    const h = await launcher.start(`prewarm-${i}`, 'bench', { limits: { memMb: 512, mcpu: 1000, pidsMax: 256 } });
    times.push(monoMs() - t0);
    await new Promise<void>((r) => {
      h.onExit(() => r());
      h.kill();
    });
  }
  return median(times);
}

/**
 * An LC service's call latency as a proc of its realm sees it, p99, with nothing else running and
 * then while a proc of another realm spins every core (BE, as an ordinary tenant would run it).
 */
export interface Latencies {
  p50Us: number;
  p99Us: number;
}

export async function noisyNeighbour(client: SigmaClient, calls: number): Promise<{ quiet: Latencies; noisy: Latencies }> {
  const echo = await client.spawn({ program: 'echo', name: 'echo', lc: true, mcpu: 1000, memMb: 256 });
  await client.waitStart(echo, { timeoutMs: 20_000 });
  const probe = async (): Promise<Latencies> => {
    const pid = await client.spawn({ program: 'nn-caller', args: ['echo', calls, 0], lc: true, mcpu: 100, memMb: 128 });
    const st = await client.waitExit(pid, { timeoutMs: 120_000 });
    if (st.kind !== 'ok') throw new Error(`the probe ended ${st.kind}: ${st.message}`);
    const rtts = st.data as number[];
    return { p50Us: percentile(rtts, 50), p99Us: percentile(rtts, 99) };
  };
  await probe(); // warm: the caller's host, the echo's name in its cache
  const quiet = await probe();
  // Long enough to cover the probe; evicted right after it.
  const spinner = await client.spawn({ program: 'spinner', args: [availableParallelism(), 10 * 60_000], realm: 'noisy' });
  await client.waitStart(spinner, { timeoutMs: 20_000 });
  await new Promise((r) => setTimeout(r, 500)); // its threads are up
  const noisy = await probe();
  await client.evict(spinner, { graceMs: 0 }).catch(() => {});
  await client.evict(echo, { graceMs: 0 }).catch(() => {});
  return { quiet, noisy };
}
