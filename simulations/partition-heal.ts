import type { Scenario } from '../src/sim/scenario.js';

/** A random node is cut off from NATS while work runs, then healed. */
export default {
  name: 'partition-heal',
  description: 'a node loses NATS mid-run and comes back',
  async run(w) {
    const r = w.ports.random;
    const spawns = Promise.allSettled(Array.from({ length: 60 }, () => w.client.spawn({ program: 'sleep', args: [r.int(4_000)] }, { timeoutMs: 5_000 })));
    await w.ports.time.advance(200 + r.int(500));
    const victim = [...w.nodes.keys()][r.int(w.nodes.size)]!;
    w.nats.partition(victim);
    await w.during(spawns, 10_000);
    await w.ports.time.advance(1_000 + r.int(5_000));
    w.nats.partition(victim, false);
  },
} satisfies Scenario;
