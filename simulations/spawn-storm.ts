import type { Scenario } from '../src/sim/scenario.js';

/** Hundreds of spawns at once, a mix of programs picked by the seed. */
export default {
  name: 'spawn-storm',
  description: 'a burst of mixed function procs (ok, failing, sleeping)',
  async run(w) {
    const r = w.ports.random;
    const spec = () => (r.next() < 0.2 ? { program: 'fail' } : { program: 'sleep', args: [r.int(300)] });
    await w.during(Promise.allSettled(Array.from({ length: 100 + r.int(100) }, () => w.client.spawn(spec(), { timeoutMs: 5_000 }))), 20_000);
  },
} satisfies Scenario;
