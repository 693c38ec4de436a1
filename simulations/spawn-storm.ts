import type { Scenario } from '../src/sim/scenario.js';
import { burst, mixed, waitSome } from './lib.js';

/** Hundreds of spawns at once (BE, LC reservations larger than the cluster, failures), a few proc crashes. */
export default {
  name: 'spawn-storm',
  description: 'a burst of mixed procs (ok, failing, sleeping, LC beyond capacity) with a few proc crashes',
  faults: (r, nodes) => Array.from({ length: 1 + r.int(3) }, () => ({ kind: 'proc-crash' as const, atMs: r.int(400), node: nodes[r.int(nodes.length)]!, pick: r.int(1000) })),
  async workload(w) {
    const pids = await burst(w, 100 + w.ports.random.int(100), mixed(w, { sleepMsMax: 300, failRate: 0.2, lcRate: 0.3, lcMcpu: 700 }));
    await waitSome(w, pids, 5);
  },
} satisfies Scenario;
