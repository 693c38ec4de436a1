import type { Scenario } from '../src/sim/scenario.js';
import { nemesis } from '../src/sim/faults.js';
import { burst, mixed, waitSome } from './lib.js';

/** Lossy, duplicating, reordering, slow links and short partitions between nodes and NATS. */
export default {
  name: 'message-chaos',
  description: 'message delay, drop, duplication and reordering on node links, with short partitions',
  faults: (r, nodes) => nemesis(r, nodes, { kinds: ['net', 'net', 'net', 'partition'], count: 3 + r.int(4), windowMs: 5_000, durationMsMin: 300, durationMsMax: 3_000 }),
  async workload(w) {
    const spec = mixed(w, { sleepMsMax: 800, lcRate: 0.2, dedicatedRate: 0.2 });
    const pids = await burst(w, 60, spec, 10_000);
    await w.ports.time.advance(1_500);
    pids.push(...(await burst(w, 60, spec, 10_000)));
    await waitSome(w, pids, 3);
  },
} satisfies Scenario;
