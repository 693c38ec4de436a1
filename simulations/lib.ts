import type { SpecInput } from '../src/proc/spec.js';
import type { World } from '../src/sim/world.js';

/**
 * Workload pieces the scenarios share. Every draw comes from the world's PRNG, so a seed fixes the
 * workload; the fault schedule has a PRNG of its own.
 */

/** Spawns `n` procs made by `spec`, all at once; resolves with the pids accepted (refusals are fine). */
export async function burst(w: World, n: number, spec: () => SpecInput, withinMs = 20_000, timeoutMs = 5_000): Promise<string[]> {
  const all = await w.during(Promise.allSettled(Array.from({ length: n }, () => w.client.spawn(spec(), { timeoutMs }))), withinMs);
  return all.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}

/** Waits for some of `pids` to exit (waitExit is checked against what the procs reported). */
export async function waitSome(w: World, pids: readonly string[], every: number, withinMs = 20_000): Promise<void> {
  const chosen = pids.filter((_, i) => i % every === 0);
  await w.during(Promise.allSettled(chosen.map((p) => w.client.waitExit(p, { timeoutMs: withinMs }))), withinMs);
}

/** A mixed proc: mostly short sleepers, some failing, some LC reservations of `lcMcpu`. */
export function mixed(w: World, o: { sleepMsMax: number; failRate?: number; lcRate?: number; lcMcpu?: number; realm?: string; dedicatedRate?: number }): () => SpecInput {
  const r = w.ports.random;
  return () => {
    const x = r.next();
    // A dedicated proc gets a host of its own (so a proc started twice shows as two hosts).
    const realm = { ...(o.realm === undefined ? {} : { realm: o.realm }), ...((o.dedicatedRate ?? 0) > 0 && r.next() < o.dedicatedRate! ? { dedicated: true } : {}) };
    if (x < (o.failRate ?? 0.1)) return { program: 'fail', ...realm };
    if (x < (o.failRate ?? 0.1) + (o.lcRate ?? 0)) return { program: 'sleep', args: [r.int(o.sleepMsMax)], lc: true, mcpu: o.lcMcpu ?? 500, ...realm };
    return { program: 'sleep', args: [r.int(o.sleepMsMax)], ...realm };
  };
}

/** Spawns `n` procs one every `everyMs` (a steady trickle, so some always arrive mid-fault). */
export async function trickle(w: World, n: number, everyMs: number, spec: () => SpecInput, timeoutMs = 5_000): Promise<string[]> {
  const all = Array.from({ length: n }, (_, i) => new Promise<string>((resolve, reject) => w.ports.time.setTimeout(() => w.client.spawn(spec(), { timeoutMs }).then(resolve, reject), i * everyMs)));
  const settled = await w.during(Promise.allSettled(all), n * everyMs + timeoutMs + 1_000);
  return settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
}
